"""Where liability snapshot files live: raw uploads and tree files, stored by SHA-256 through
Django's storage API (the "liabilities" alias: a local directory, or S3-compatible object
storage), and a local cache of tree files so proofs are read with a few positioned reads.

Names are content addresses (``raw/<sha256>.csv``, ``trees/<sha256>.mst``): a file is written
once and never changed, so a retried job finds its file already there and any machine can
check what it read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages

CHUNK = 1 << 20


@dataclass(frozen=True)
class Stored:
    name: str
    sha256: str
    size: int


class TooLarge(Exception):
    pass


def storage() -> Storage:
    return storages["liabilities"]


def _put(name: str, path: Path) -> None:
    store = storage()
    if store.exists(name):  # same name, same bytes: written by an earlier attempt
        return
    with path.open("rb") as handle:
        saved = store.save(name, File(handle))
    if saved != name:  # a racing writer got there first under the same content address
        store.delete(saved)


def save_raw(chunks: Iterable[bytes], max_size: int | None = None) -> Stored:
    """Store an upload (streamed: never whole in memory) as ``raw/<sha256>.csv``; raise
    TooLarge past ``max_size`` bytes, leaving nothing behind."""
    limit = settings.LIABILITY_MAX_UPLOAD if max_size is None else max_size
    digest = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(dir=spool_dir(), delete=True) as spool:
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"larger than {limit} bytes")
            digest.update(chunk)
            spool.write(chunk)
        spool.flush()
        name = f"raw/{digest.hexdigest()}.csv"
        _put(name, Path(spool.name))
    return Stored(name, digest.hexdigest(), size)


def save_tree(path: Path) -> Stored:
    """Store a built tree file as ``trees/<sha256>.mst`` and keep it in the local cache."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    sha = digest.hexdigest()
    name = f"trees/{sha}.mst"
    _put(name, path)
    cached = cache_path(sha)
    if not cached.exists():
        if _same_device(path, cached.parent):
            # FileExistsError: cached meanwhile by another worker, with the same bytes.
            with contextlib.suppress(FileExistsError):
                os.link(path, cached)
        else:
            _copy(path, cached)
    return Stored(name, sha, size)


def open_raw(name: str):
    """The stored upload, as a binary file to iterate by line."""
    return storage().open(name, "rb")


def cache_path(sha256: str) -> Path:
    directory = Path(settings.LIABILITY_CACHE_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{sha256}.mst"


def local_tree(name: str, sha256: str) -> Path:
    """A local path holding the tree file ``name``, fetched once into the cache and checked
    against its SHA-256 (a corrupt or substituted download is never used)."""
    cached = cache_path(sha256)
    if cached.exists():
        return cached
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=cached.parent, delete=False) as out:
        try:
            with storage().open(name, "rb") as source:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            os.unlink(out.name)
            raise
    if digest.hexdigest() != sha256:
        os.unlink(out.name)
        raise OSError(f"tree file {name} does not match its SHA-256")
    os.replace(out.name, cached)
    return cached


def spool_dir() -> Path:
    """Local scratch space for uploads and builds (never shared between machines)."""
    directory = Path(settings.VAR_DIR) / "spool"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _same_device(path: Path, directory: Path) -> bool:
    return path.stat().st_dev == directory.stat().st_dev


def _copy(source: Path, target: Path) -> None:
    with (
        tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out,
        source.open("rb") as handle,
    ):
        while chunk := handle.read(CHUNK):
            out.write(chunk)
    os.replace(out.name, target)
