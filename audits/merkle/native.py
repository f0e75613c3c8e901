"""The builder's fast path: the same pipeline with its per-record loops in C.

Used by ``build_tree`` when the optional ``_mstnative`` module has been compiled
(``python -m audits.merkle.build_native``). The pure-Python builder stays the reference:
every account the C code does not handle, and every error, goes through the same Python
functions, and tests check that both paths write identical files.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

from .format import AMOUNT_LEN, HASH_LEN, Asset, MerkleError
from .treefile import Layout, TreeInfo, pack_header

try:
    from . import _mstnative as _c  # type: ignore[attr-defined]
except ImportError:  # not compiled here: build_tree uses the pure-Python path
    _c = None


def available() -> bool:
    """True when the compiled accelerator can be imported."""
    return _c is not None


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
    """Build the tree file at ``path`` in one process with the C accelerator."""
    from .builder import _careful_record, _check_ids, _ids_of, _pwrite_all

    assert _c is not None
    clock = time.perf_counter
    t0 = clock()
    rsize = HASH_LEN + AMOUNT_LEN * k
    records = bytearray()
    seen: set[Any] = set()
    n = 0
    it = iter(accounts)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of new tuples, no cycles: collections would only walk them
    try:
        while chunk := list(islice(it, chunk_size)):
            _check_ids(_ids_of(chunk), seen)  # first, as on the pure path
            part = bytearray(len(chunk) * rsize)
            start = 0
            while (odd := _c.ingest(chunk, start, k, part)) is not None:
                # An input shape C does not take: Python records it or names the problem.
                part[odd * rsize : (odd + 1) * rsize] = _careful_record(chunk[odd], k)
                start = odd + 1
            records += part
            n += len(chunk)
            del chunk, part
    finally:
        if gc_was_enabled:
            gc.enable()
    if n == 0:
        raise MerkleError(None, "accounts", "empty snapshot: no accounts, so no tree")
    t1 = clock()
    leaf_count = 1 << (n - 1).bit_length()
    records += bytes((leaf_count - n) * rsize)
    with memoryview(records) as view:
        _c.pads(pad_secret, 0, leaf_count - n, k, view[n * rsize :])
    t2 = clock()
    _c.sort(records, rsize)
    t3 = clock()
    lay = Layout(k, leaf_count, len(meta))
    upper = bytearray(lay.file_size - lay.level_offset(1))
    try:
        root = _c.levels(records, leaf_count, k, upper)
    except OverflowError as exc:
        height, j = exc.args
        raise MerkleError(
            None, f"sums[{j}]", f"subtotal of asset {j} at height {height} >= 2**128"
        ) from None
    root_hash = root[:HASH_LEN]
    root_sums = [
        int.from_bytes(root[o : o + AMOUNT_LEN], "big") for o in range(HASH_LEN, rsize, AMOUNT_LEN)
    ]
    _write(path, lay, pack_header(lay, n, root_hash, root_sums, meta), records, upper, _pwrite_all)
    if timings is not None:
        timings.update(ingest=t1 - t0, pad=t2 - t1, sort=t3 - t2, hash=clock() - t3)
    return TreeInfo(root_hash, tuple(root_sums), leaf_count, n, k, snapshot, assets)


def _write(path: str, lay: Layout, header: bytes, level0: Sequence[int], upper, pwrite) -> None:
    """Write the file under a temporary name and rename it into place when complete."""
    part_path = f"{path}.partial-{os.getpid()}"
    fd = os.open(part_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        pwrite(fd, header, 0)
        pwrite(fd, level0, lay.level_offset(0))
        pwrite(fd, upper, lay.level_offset(1))
    except BaseException:
        os.close(fd)
        os.unlink(part_path)
        raise
    os.close(fd)
    os.replace(part_path, path)
