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
from concurrent.futures import ThreadPoolExecutor
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
    # C hashes a chunk without the GIL on this thread while the main thread checks its ids.
    hasher = ThreadPoolExecutor(max_workers=1)
    try:
        while chunk := list(islice(it, chunk_size)):
            part = bytearray(len(chunk) * rsize)
            hashing = hasher.submit(_c.ingest, chunk, 0, k, part)
            try:
                _check_ids(_ids_of(chunk), seen)  # a duplicate is reported first, as in Python
            finally:
                odd = hashing.result()
            while odd is not None:
                # An input shape C does not take: Python records it or names the problem.
                part[odd * rsize : (odd + 1) * rsize] = _careful_record(chunk[odd], k)
                odd = _c.ingest(chunk, odd + 1, k, part)
            records += part
            n += len(chunk)
            del chunk, part
    finally:
        hasher.shutdown()
        if gc_was_enabled:
            gc.enable()
    if n == 0:
        raise MerkleError(None, "accounts", "empty snapshot: no accounts, so no tree")
    t1 = clock()
    leaf_count = 1 << (n - 1).bit_length()
    records += bytes((leaf_count - n) * rsize)
    pads = leaf_count - n
    half = pads // 2
    with memoryview(records) as view, ThreadPoolExecutor(max_workers=2) as pool:
        # Two halves on two threads: the C code hashes without the GIL.
        done = [
            pool.submit(_c.pads, pad_secret, 0, half, k, view[n * rsize : (n + half) * rsize]),
            pool.submit(_c.pads, pad_secret, half, pads - half, k, view[(n + half) * rsize :]),
        ]
        for future in done:
            future.result()
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
