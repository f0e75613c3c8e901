"""The builder's fast path: the same tree with its per-record work in C.

Used by ``build_tree`` and ``build_tree_from_records`` when the optional ``_mstnative``
module has been compiled (``python -m audits.core.merkle.build_native``). The pure-Python builder
stays the reference: every account the C code does not take, and every error message, goes
through the same Python functions, and tests check that both paths write identical files.

The C ``Builder`` keeps each account as its leaf record plus its id (for the duplicate
check), then pads, sorts and writes level 0 straight into the memory-mapped tree file;
``levels`` hashes the rest of the tree into the same mapping.
"""

from __future__ import annotations

import gc
import mmap
import os
import time
from collections.abc import Iterable
from typing import Any

from . import format as _format
from .format import AMOUNT_LEN, HASH_LEN, Asset, MerkleError
from .records import as_bytes, encode_account, record_error, take, truncated
from .treefile import Layout, TreeInfo, pack_header

try:
    from . import _mstnative as _c  # type: ignore[attr-defined]
except ImportError:  # not compiled here: the pure-Python builder runs
    _c = None


# The C Builder's limit on assets per tree; wider trees (none in practice) use pure Python.
MAX_K = 4096


def available(k: int = 1) -> bool:
    """True when the compiled accelerator can be imported and takes ``k`` assets."""
    return _c is not None and k <= MAX_K


# Bits of the C sort keys and id fingerprints. Always 64 except in tests, which lower it so
# that ties and fingerprint collisions (the rare paths) happen on every build.
KEY_BITS = 64


def _new_builder(k: int) -> Any:
    assert _c is not None
    # Seeds the id fingerprints, so nobody can line up colliding ids in advance. The id
    # length limit is read at each build (tests lower it to reach it without 4 GiB ids).
    seed = int.from_bytes(os.urandom(8), "big")
    return _c.Builder(k, seed, KEY_BITS, _format.MAX_ID_BYTES)


def _first_duplicate(builder: Any) -> None:
    """Raise for the first id that repeats an earlier one, if any."""
    dup = builder.duplicate()
    if dup is not None:
        raise MerkleError(dup[1].decode("utf-8"), "id", "duplicate account id")


def build(
    accounts: Iterable[Any],
    k: int,
    pad_secret: bytes,
    path: str,
    *,
    meta: bytes,
    snapshot: str,
    assets: tuple[Asset, ...],
    chunk_size: int,
    timings: dict[str, float] | None,
) -> TreeInfo:
    """Build the tree file at ``path`` from (account_id, nonce, balances) tuples."""
    t0 = time.perf_counter()
    builder = _new_builder(k)
    it = iter(accounts)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of new tuples, no cycles: collections would only walk them
    try:
        while True:
            chunk, source_error = take(it, chunk_size)
            start = 0
            while (odd := builder.feed_tuples(chunk, start)) is not None:
                # A shape C does not take: Python checks it, and feeds it as a record if legal.
                try:
                    record = encode_account(chunk[odd], k)
                except MerkleError:
                    _first_duplicate(builder)  # a repeat earlier in the stream comes first
                    raise
                builder.feed_records(record)  # one whole record: always taken
                start = odd + 1
            if source_error is not None:
                _first_duplicate(builder)
                raise source_error
            if not chunk:
                break
            del chunk
    finally:
        if gc_was_enabled:
            gc.enable()
    return _finish(builder, k, pad_secret, path, meta, snapshot, assets, t0, timings)


def build_records(
    chunks: Iterable[Any],
    k: int,
    pad_secret: bytes,
    path: str,
    *,
    meta: bytes,
    snapshot: str,
    assets: tuple[Asset, ...],
    timings: dict[str, float] | None,
) -> TreeInfo:
    """Build the tree file at ``path`` from an account record stream (see records.py)."""
    t0 = time.perf_counter()
    builder = _new_builder(k)
    pending: list[bytes] = []  # a partial record, in pieces
    have, need = 0, 0
    for number, raw in enumerate(chunks):
        try:
            chunk = as_bytes(raw, number)
        except MerkleError:
            _first_duplicate(builder)
            raise
        have += len(chunk)
        pending.append(chunk)
        if have < need:  # the record in progress is still incomplete: do not copy it again
            continue
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        used, error, need = builder.feed_records(data)
        if error is not None:
            _first_duplicate(builder)
            raise record_error(builder.count, *error)
        rest = data[used:]
        pending, have = ([rest], len(rest)) if rest else ([], 0)
    if have:
        _first_duplicate(builder)
        raise truncated(builder.count)
    return _finish(builder, k, pad_secret, path, meta, snapshot, assets, t0, timings)


def _finish(
    builder: Any,
    k: int,
    pad_secret: bytes,
    path: str,
    meta: bytes,
    snapshot: str,
    assets: tuple[Asset, ...],
    t0: float,
    timings: dict[str, float] | None,
) -> TreeInfo:
    """Check ids, then pad, sort and hash into the file, renamed into place when complete."""
    assert _c is not None
    clock = time.perf_counter
    t1 = clock()
    _first_duplicate(builder)
    n = builder.count
    if n == 0:
        raise MerkleError(None, "accounts", "empty snapshot: no accounts, so no tree")
    t2 = clock()
    leaf_count = 1 << (n - 1).bit_length()
    lay = Layout(k, leaf_count, len(meta))
    rsize = HASH_LEN + AMOUNT_LEN * k
    part_path = f"{path}.partial-{os.getpid()}"
    fd = os.open(part_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        # Blocks reserved up front: on a full disk this raises OSError, where stores into a
        # sparse mapping would kill the process with SIGBUS.
        os.posix_fallocate(fd, 0, lay.file_size)
        with (
            mmap.mmap(fd, lay.file_size) as mapped,
            memoryview(mapped) as view,
            view[lay.level_offset(0) : lay.level_offset(1)] as level0,
            view[lay.level_offset(1) :] as upper,
        ):
            builder.finish(pad_secret, leaf_count, level0)
            t3 = clock()
            try:
                root = _c.levels(level0, leaf_count, k, upper)
            except OverflowError as exc:
                height, j = exc.args
                raise MerkleError(
                    None, f"sums[{j}]", f"subtotal of asset {j} at height {height} >= 2**128"
                ) from None
            root_hash = root[:HASH_LEN]
            root_sums = [
                int.from_bytes(root[o : o + AMOUNT_LEN], "big")
                for o in range(HASH_LEN, rsize, AMOUNT_LEN)
            ]
            header = pack_header(lay, n, root_hash, root_sums, meta)
            view[: len(header)] = header
    except BaseException:
        os.close(fd)
        os.unlink(part_path)
        raise
    os.close(fd)
    os.replace(part_path, path)
    if timings is not None:
        timings.update(ingest=t1 - t0, ids=t2 - t1, pad_sort=t3 - t2, hash=clock() - t3)
    return TreeInfo(root_hash, tuple(root_sums), leaf_count, n, k, snapshot, assets)
