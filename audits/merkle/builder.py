"""Streaming, multi-process builder of ``por-mst-v1`` tree files.

The build runs in three phases, each split across forked workers that share files, not
pickled objects: (A) hash and pack accounts chunk by chunk into an unsorted leaf file,
(B) sort leaves by account hash, one first-byte range per worker, straight into level 0 of
the tree file, (C) hash disjoint subtrees per worker, then the few top nodes in the parent.
"""

from __future__ import annotations

import gc
import json
import mmap
import os
import pickle
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from itertools import compress, islice, pairwise
from operator import itemgetter
from typing import Any

from .format import (
    ACCOUNT_PREFIX,
    AMOUNT_LEN,
    AMOUNT_LIMIT,
    HASH_LEN,
    LEAF_TAG,
    NODE_TAG,
    NONCE_LEN,
    PAD_PREFIX,
    Asset,
    MerkleError,
    _sha256,
    account_hash,
    check_account,
    u128,
)
from .treefile import Layout, TreeInfo, pack_header

Account = tuple[str, bytes, Sequence[int]]

CHUNK = 1 << 20  # accounts read from the stream per ingest round
_SERIAL_BELOW = 1 << 14  # forking costs more than it saves on small trees
_MAX_WRITE = 1 << 30


def default_workers() -> int:
    """Number of CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view[:_MAX_WRITE], offset)
        view, offset = view[n:], offset + n


def _run_parallel(tasks: Sequence[Callable[[], Any]]) -> None:
    """Run tasks[0] here and the others in forked children; re-raise the first error."""
    if len(tasks) == 1 or not hasattr(os, "fork"):
        for task in tasks:
            task()
        return
    children = []
    for task in tasks[1:]:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never return into the caller's stack
            os.close(r)
            code = 0
            try:
                task()
            except BaseException as exc:
                code = 1
                try:
                    data = pickle.dumps(exc)
                except Exception:
                    data = pickle.dumps(MerkleError(None, "worker", repr(exc)))
                _write_pipe(w, data)
            finally:
                os._exit(code)
        os.close(w)
        children.append((pid, r))
    error: BaseException | None = None
    try:
        tasks[0]()
    except BaseException as exc:
        error = exc
    for pid, r in children:
        data = _read_pipe(r)
        _, status = os.waitpid(pid, 0)
        if status and error is None:
            # Our own forked child wrote this; it is not untrusted input.
            error = (
                pickle.loads(data)  # noqa: S301
                if data
                else MerkleError(None, "worker", f"worker died (wait status {status})")
            )
    if error is not None:
        raise error


def _write_pipe(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.close(fd)


def _read_pipe(fd: int) -> bytes:
    chunks = []
    while block := os.read(fd, 1 << 16):
        chunks.append(block)
    os.close(fd)
    return b"".join(chunks)


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    return [(n * p // parts, n * (p + 1) // parts) for p in range(parts)]


# ACCOUNT_PREFIX || u32be(len) for the id lengths seen in practice, saving a to_bytes per account.
_ID_PREFIX = [ACCOUNT_PREFIX + n.to_bytes(4, "big") for n in range(256)]


def _ingest(chunk: list[Any], k: int, fd: int, offset: int) -> None:
    """Hash and pack accounts into leaf records account_hash|balances."""
    sha, idp = _sha256, _ID_PREFIX
    try:
        # Shape checks run in C over the whole part; amounts are range-checked for free by
        # to_bytes (negative or >= 2**128 raises). Anything unusual takes the careful path,
        # which names the offending account or, for legal oddities (long ids), just works.
        nonce_lens = set(map(len, map(itemgetter(1), chunk)))
        count_lens = set(map(len, map(itemgetter(2), chunk)))
        if chunk and (nonce_lens != {NONCE_LEN} or count_lens != {k}):
            raise ValueError("shape")
        if k == 1:
            out = [
                sha(b"".join((idp[len(idb := aid.encode())], idb, nonce))).digest()
                + bals[0].to_bytes(16, "big")
                for aid, nonce, bals in chunk
            ]
        else:
            out = [
                sha(b"".join((idp[len(idb := aid.encode())], idb, nonce))).digest()
                + b"".join([b.to_bytes(16, "big") for b in bals])
                for aid, nonce, bals in chunk
            ]
    except Exception:
        out = [_careful_record(acc, k) for acc in chunk]
    _pwrite_all(fd, b"".join(out), offset)


def _ids_then(chunk: list[Any], seen: set[Any], task: Callable[[], Any]) -> None:
    """Check the chunk's ids for duplicates, then run this process's share of the ingest."""
    try:
        ids = list(map(itemgetter(0), chunk))
    except (TypeError, IndexError, KeyError):
        ids = []  # a malformed account: _ingest names it
    _check_ids(ids, seen)
    task()


def _careful_record(acc: Any, k: int) -> bytes:
    if not isinstance(acc, tuple | list) or len(acc) != 3:
        raise MerkleError(repr(acc)[:80], "account", "expected (account_id, nonce, balances)")
    check_account(acc[0], acc[1], acc[2], k)
    return account_hash(acc[0], bytes(acc[1])) + b"".join(u128(b) for b in acc[2])


def _pads(secret: bytes, lo: int, hi: int, k: int, fd: int, offset: int) -> None:
    sha, pre, zeros = _sha256, PAD_PREFIX + secret, bytes(AMOUNT_LEN * k)
    recs = [sha(pre + i.to_bytes(8, "big")).digest() + zeros for i in range(lo, hi)]
    _pwrite_all(fd, b"".join(recs), offset)


def _check_ids(ids: list[Any], seen: set[Any]) -> None:
    """Reject an id repeated within this chunk or seen in an earlier one."""
    new = set(ids)
    if len(new) != len(ids):
        local: set[Any] = set()
        for i in ids:
            if i in local:
                raise MerkleError(str(i), "id", "duplicate account id")
            local.add(i)
    if seen and not seen.isdisjoint(new):
        first = next(i for i in ids if i in seen)
        raise MerkleError(str(first), "id", "duplicate account id")
    seen |= new


def _sort_bucket(src: mmap.mmap, mask: bytes, rsize: int, fd: int, offset: int) -> None:
    # compress() walks the byte mask in C, so each worker touches only its own records.
    offs = compress(range(0, len(mask) * rsize, rsize), mask)
    recs = [src[o : o + rsize] for o in offs]
    recs.sort()
    _pwrite_all(fd, b"".join(recs), offset)


def _subtree(fd: int, lay: Layout, level: int, start: int, count: int) -> tuple[bytes, list[int]]:
    """Hash the subtree over records [start, start+count) of ``level``; write its levels."""
    k, size = lay.k, lay.record_size(level)
    blob = os.pread(fd, count * size, lay.level_offset(level) + start * size)
    rng = range(0, count * size, size)
    sha, frm = _sha256, int.from_bytes
    if level == 0:
        # Level 0 holds account_hash|balances; the leaf hash is computed here, not stored.
        # A node's payload hash|sums is exactly what its parent's message embeds.
        pay = [
            sha(LEAF_TAG + blob[o : o + size]).digest() + blob[o + HASH_LEN : o + size] for o in rng
        ]
    else:
        pay = [blob[o : o + size] for o in rng]
    cols = []
    for j in range(k):
        s = HASH_LEN + AMOUNT_LEN * j  # both record kinds: 32-byte hash, then amounts
        cols.append([frm(blob[o + s : o + s + AMOUNT_LEN], "big") for o in rng])
    del blob
    msize = 1 + 2 * lay.node_record
    while count > 1:
        half = count >> 1
        parts = [NODE_TAG] * (3 * half)
        parts[1::3] = pay[0::2]
        parts[2::3] = pay[1::2]
        msg = b"".join(parts)
        hashes = [sha(msg[o : o + msize]).digest() for o in range(0, half * msize, msize)]
        del msg, parts
        cols = [[a + b for a, b in zip(c[0::2], c[1::2], strict=True)] for c in cols]
        try:
            if k == 1:
                pay = [h + s.to_bytes(16, "big") for h, s in zip(hashes, cols[0], strict=True)]
            else:
                packed = [[s.to_bytes(16, "big") for s in c] for c in cols]
                pay = [b"".join(t) for t in zip(hashes, *packed, strict=True)]
        except OverflowError:
            j = next(j for j, c in enumerate(cols) if max(c) >= AMOUNT_LIMIT)
            raise MerkleError(
                None, f"sums[{j}]", f"subtotal of asset {j} at height {level + 1} >= 2**128"
            ) from None
        level, start, count = level + 1, start >> 1, half
        _pwrite_all(fd, b"".join(pay), lay.level_offset(level) + start * lay.node_record)
    return pay[0][:HASH_LEN], [c[0] for c in cols]


def _check_params(k: int, pad_secret: bytes, assets: Sequence[Asset] | None) -> tuple[Asset, ...]:
    if not isinstance(k, int) or k < 1:
        raise MerkleError(None, "k", f"need at least one asset, got {k!r}")
    if not isinstance(pad_secret, bytes) or len(pad_secret) < 16:
        raise MerkleError(None, "pad_secret", "must be at least 16 random bytes")
    if assets is None:
        return tuple(Asset(f"asset{j}", 0) for j in range(k))
    assets = tuple(assets)
    if len(assets) != k:
        raise MerkleError(None, "assets", f"expected {k} assets, got {len(assets)}")
    for a in assets:
        if not a.code or not 0 <= a.decimals <= 255:
            raise MerkleError(None, "assets", f"bad asset {a!r}")
    return assets


def build_tree(
    accounts: Iterable[Account],
    k: int,
    pad_secret: bytes,
    path: str | os.PathLike[str],
    *,
    snapshot: str = "",
    assets: Sequence[Asset] | None = None,
    workers: int | None = None,
    chunk_size: int = CHUNK,
    timings: dict[str, float] | None = None,
) -> TreeInfo:
    """Build the tree file at ``path`` from a stream of (account_id, nonce, balances).

    ``workers=None`` uses every available CPU for large inputs and none extra for small ones.
    Raises MerkleError on bad input; an empty stream is an error (see docs/proof-format.md).
    If ``timings`` is given, the wall time of each phase is stored in it (for benchmarks).
    """
    clock = time.perf_counter
    t0 = clock()
    assets = _check_params(k, pad_secret, assets)
    path = os.fspath(path)
    auto = workers is None
    nworkers = default_workers() if workers is None else max(1, workers)
    unsorted = f"{path}.unsorted-{os.getpid()}"
    part_path = f"{path}.partial-{os.getpid()}"
    rsize = HASH_LEN + AMOUNT_LEN * k
    ufd = os.open(unsorted, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    ofd = -1
    # Chunks hold a million tuples each; with the cyclic GC on, every few thousand new
    # accounts would trigger a collection that walks them all. Nothing here makes cycles.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        os.unlink(unsorted)  # anonymous scratch: vanishes with the descriptor
        # Phase A: ingest the stream chunk by chunk.
        it, n = iter(accounts), 0
        seen: set[Any] = set()
        while chunk := list(islice(it, chunk_size)):
            os.ftruncate(ufd, (n + len(chunk)) * rsize)
            w = 1 if auto and len(chunk) < _SERIAL_BELOW else nworkers
            # The parent also checks ids for duplicates, so it takes the smaller share.
            cuts = [0] + [len(chunk) * (2 * p + 1) // (2 * w) for p in range(1, w)] + [len(chunk)]
            tasks: list[Callable[[], Any]] = [
                partial(_ingest, chunk[lo:hi], k, ufd, (n + lo) * rsize)
                for lo, hi in pairwise(cuts)
            ]
            tasks[0] = partial(_ids_then, chunk, seen, tasks[0])
            _run_parallel(tasks)
            n += len(chunk)
        del seen, chunk
        if n == 0:
            raise MerkleError(None, "accounts", "empty snapshot: no accounts, so no tree")
        t1 = clock()
        leaf_count = 1 << (n - 1).bit_length()
        w = 1 if auto and leaf_count < _SERIAL_BELOW else nworkers
        os.ftruncate(ufd, leaf_count * rsize)
        _run_parallel(
            [
                partial(_pads, pad_secret, lo, hi, k, ufd, (n + lo) * rsize)
                for lo, hi in _split(leaf_count - n, w)
            ]
        )
        meta = json.dumps(
            {
                "snapshot": snapshot,
                "assets": [{"code": a.code, "decimals": a.decimals} for a in assets],
            },
            separators=(",", ":"),
        ).encode()
        lay = Layout(k, leaf_count, len(meta))
        t2 = clock()
        ofd = os.open(part_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(ofd, lay.file_size)
        # Phase B: sort by account hash; worker j takes first bytes in [256j/w, 256(j+1)/w).
        with mmap.mmap(ufd, leaf_count * rsize, prot=mmap.PROT_READ) as src:
            firsts = src[0 : leaf_count * rsize : rsize]
            bucket = bytes(b * w // 256 for b in range(256))
            ids = firsts.translate(bucket)
            tasks, start = [], 0
            for j in range(w):
                mask = firsts.translate(bytes(int(bucket[b] == j) for b in range(256)))
                off = lay.level_offset(0) + start * rsize
                tasks.append(partial(_sort_bucket, src, mask, rsize, ofd, off))
                start += ids.count(j)
            _run_parallel(tasks)
            del firsts, ids, tasks
        os.close(ufd)
        ufd = -1
        t3 = clock()
        # Phase C: hash 2**t disjoint subtrees in parallel, then the top levels here.
        t = min(w.bit_length() - 1, lay.height)
        span = leaf_count >> t
        _run_parallel([partial(_subtree, ofd, lay, 0, p * span, span) for p in range(1 << t)])
        root_hash, root_sums = _subtree(ofd, lay, lay.height - t, 0, 1 << t)
        os.pwrite(ofd, pack_header(lay, n, root_hash, root_sums, meta), 0)
        os.close(ofd)
        ofd = -1
        os.replace(part_path, path)
        if timings is not None:
            timings.update(ingest=t1 - t0, pad=t2 - t1, sort=t3 - t2, hash=clock() - t3)
    finally:
        if gc_was_enabled:
            gc.enable()
        if ufd >= 0:
            os.close(ufd)
        if ofd >= 0:
            os.close(ofd)
            os.unlink(part_path)
    return TreeInfo(root_hash, tuple(root_sums), leaf_count, n, k, snapshot, assets)
