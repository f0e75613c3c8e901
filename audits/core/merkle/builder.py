"""Streaming, multi-process builder of ``por-mst-v1`` tree files.

The build runs in three phases, each split across forked workers that share files, not
pickled objects: (A) hash and pack accounts chunk by chunk into an unsorted leaf file (a list
is split between the parent and the workers; a stream is pipelined: workers hash chunk i
while the parent pulls chunk i+1), (B) sort leaves by account hash, one first-byte range per
worker, straight into level 0 of the tree file, (C) hash disjoint subtrees per worker, then
the few top nodes in the parent.

Hot loops keep per-record Python work to a slice, a hash and a digest: records are sorted as
latin-1 str (memcmp fast path), levels travel as one bytes blob of ``hash || sums`` records
(a node's message is then the tag plus one slice), and sums are added column-wise with map.
"""

from __future__ import annotations

import codecs
import gc
import json
import mmap
import os
import pickle
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from itertools import compress, pairwise, repeat
from operator import add, itemgetter
from typing import Any, Literal

from . import native
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
    checked_account,
    u128,
)
from .records import decode_records, take
from .treefile import Layout, TreeInfo, pack_header

Account = tuple[str, bytes, Sequence[int]]

CHUNK = 1 << 20  # accounts read from the stream per ingest round
_SERIAL_BELOW = 1 << 14  # forking costs more than it saves on small trees
_MAX_WRITE = 1 << 30
_BIG: Literal["big"] = "big"
_SLAB = 1 << 20  # records per slab where a whole level's Python objects would be too many


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
    children = [_fork(task) for task in tasks[1:]]
    error: BaseException | None = None
    try:
        tasks[0]()
    except BaseException as exc:
        error = exc
    _join(children, error)


def _fork(task: Callable[[], Any]) -> tuple[int, int]:
    """Start ``task`` in a forked child; returns (pid, read end of its error pipe)."""
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
    return pid, r


def _join(children: Sequence[tuple[int, int]], error: BaseException | None = None) -> None:
    """Wait for every child; raise ``error`` if given, else the first child's error.

    With ``error`` given the children's work is moot (their shares come later in the
    stream), so they are stopped rather than waited for: a refused build ends at once.
    """
    if error is not None:
        _stop(children)
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


def _stop(children: Sequence[tuple[int, int]]) -> None:
    """SIGKILL our own forked workers. Not yet reaped, so each pid is still theirs (a worker
    that has exited is a zombie, which takes the signal without error)."""
    for pid, _ in children:
        os.kill(pid, signal.SIGKILL)


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


def _ingest_cuts(n: int, w: int) -> list[int]:
    """Boundaries of the w ingest shares; share 0 runs in the parent.

    The parent also checks every id for duplicates (about a fifth of the per-account work),
    so it takes 3/4 of an even share and the forked workers split the rest evenly.
    """
    if w == 1:
        return [0, n]
    first = n * 3 // (4 * w)
    return [0] + [first + (n - first) * p // (w - 1) for p in range(w)]


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


def _ids_then(chunk: list[Any], k: int, seen: set[Any], task: Callable[[], Any]) -> None:
    """Check the chunk's ids for duplicates, then run this process's share of the ingest."""
    _check_ids(chunk, k, seen)
    task()


def _careful_record(acc: Any, k: int) -> bytes:
    account_id, nonce, balances = checked_account(acc, k)
    return account_hash(account_id, nonce) + b"".join(u128(b) for b in balances)


def _pads(secret: bytes, lo: int, hi: int, k: int, fd: int, offset: int) -> None:
    sha, pre, zeros = _sha256, PAD_PREFIX + secret, bytes(AMOUNT_LEN * k)
    hashes = [sha(pre + i.to_bytes(8, "big")).digest() for i in range(lo, hi)]
    if hashes:  # records are hash | zero balances: the zeros go in as the join separator
        _pwrite_all(fd, zeros.join(hashes) + zeros, offset)


def _check_ids(chunk: list[Any], k: int, seen: set[Any]) -> None:
    """Reject an id repeated within this chunk or seen in an earlier one; add the chunk's ids.

    The common case is one set operation. If it finds a repeat, or cannot run (an account
    that is not a tuple, an unhashable id), the chunk is walked in order, each account
    checked in full before its id is looked up: the error is then the first problem in
    stream order, an account's own fault before its repeat, as the compiled builder reports.
    """
    try:
        ids = list(map(itemgetter(0), chunk))
        new = set(ids)
        clean = len(new) == len(ids) and seen.isdisjoint(new)
    except Exception:  # any malformed account: the walk below names it
        clean = False
    if clean:
        seen |= new
        return
    for acc in chunk:
        account_id = checked_account(acc, k)[0]
        if account_id in seen:
            raise MerkleError(account_id, "id", "duplicate account id")
        seen.add(account_id)


def _sort_bucket(src: mmap.mmap, mask: bytes, rsize: int, fd: int, offset: int) -> None:
    """Sort this worker's records (those whose mask byte is 1) and write them at ``offset``."""
    # Records are sorted as latin-1 str, not bytes: list.sort has a memcmp fast path for
    # one-byte-per-char str (no rich-compare dispatch), about 2.5x faster than on bytes,
    # and latin-1 maps every byte to the char of the same value, so the order is the same.
    recs: list[str] = []
    for lo in range(0, len(mask), _SLAB):  # decoded a slab at a time to bound memory
        text = codecs.latin_1_decode(src[lo * rsize : (lo + _SLAB) * rsize])[0]
        # compress() walks the byte mask in C, so each worker touches only its own records.
        offs = compress(range(0, len(text), rsize), mask[lo : lo + _SLAB])
        recs.extend([text[o : o + rsize] for o in offs])
    recs.sort()
    _pwrite_all(fd, "".join(recs).encode("latin-1"), offset)


def _interleave(width: int, *columns: list[bytes]) -> list[bytes]:
    """[c0[0], c1[0], ..., c0[1], c1[1], ...]: slice assignment fills it in C, no loop."""
    out = [b""] * (width * len(columns[0]))
    for i, col in enumerate(columns):
        out[i::width] = col
    return out


def _leaf_level(blob: bytes, k: int) -> tuple[bytes, list[list[int]]]:
    """Payloads ``leaf_hash || balances`` (one blob) and balance columns of level 0."""
    sha, size = _sha256, HASH_LEN + AMOUNT_LEN * k
    pays: list[bytes] = []
    cols: list[list[int]] = [[] for _ in range(k)]
    # A slab at a time, so the per-leaf objects of a 10M-account tree never coexist.
    for lo in range(0, len(blob), _SLAB * size):
        rng = range(lo, min(len(blob), lo + _SLAB * size), size)
        # Level 0 holds account_hash|balances; the leaf hash is computed here, not stored.
        hashes = [sha(LEAF_TAG + blob[o : o + size]).digest() for o in rng]
        amounts = [blob[o + HASH_LEN : o + size] for o in rng]
        pays.append(b"".join(_interleave(2, hashes, amounts)))
        for col, part in zip(cols, _columns(amounts, k), strict=True):
            col.extend(part)
    return b"".join(pays), cols


def _columns(amounts: list[bytes], k: int) -> list[list[int]]:
    """Per-asset integer columns of packed ``u128 * k`` amounts."""
    if k == 1:
        return [list(map(int.from_bytes, amounts, repeat(_BIG)))]
    frm = int.from_bytes
    return [
        [frm(a[s : s + AMOUNT_LEN], "big") for a in amounts]
        for s in range(0, AMOUNT_LEN * k, AMOUNT_LEN)
    ]


def _node_level(pay: bytes, cols: list[list[int]], height: int) -> tuple[bytes, list[list[int]]]:
    """One level up: node payloads ``hash || sums`` (one blob) and their sum columns.

    ``pay`` holds the level below as consecutive ``hash || sums`` records, so node j's
    message is the 0x01 tag and one contiguous slice: children 2j and 2j+1.
    """
    sha, tag = _sha256, NODE_TAG
    msize = 2 * len(pay) // len(cols[0])
    hashes = [sha(tag + pay[o : o + msize]).digest() for o in range(0, len(pay), msize)]
    cols = [list(map(add, c[0::2], c[1::2])) for c in cols]
    try:
        packed = [list(map(int.to_bytes, c, repeat(AMOUNT_LEN), repeat(_BIG))) for c in cols]
    except OverflowError:
        j = next(j for j, c in enumerate(cols) if max(c) >= AMOUNT_LIMIT)
        raise MerkleError(
            None, f"sums[{j}]", f"subtotal of asset {j} at height {height} >= 2**128"
        ) from None
    return b"".join(_interleave(1 + len(packed), hashes, *packed)), cols


def _subtree(fd: int, lay: Layout, level: int, start: int, count: int) -> tuple[bytes, list[int]]:
    """Hash the subtree over records [start, start+count) of ``level``; write its levels."""
    k, size = lay.k, lay.record_size(level)
    pay = os.pread(fd, count * size, lay.level_offset(level) + start * size)
    if level == 0:
        pay, cols = _leaf_level(pay, k)
    else:  # node records hash|sums are already payloads
        rng = range(0, count * size, size)
        cols = _columns([pay[o + HASH_LEN : o + size] for o in rng], k)
    while count > 1:
        pay, cols = _node_level(pay, cols, level + 1)
        level, start, count = level + 1, start >> 1, count >> 1
        _pwrite_all(fd, pay, lay.level_offset(level) + start * lay.node_record)
    return pay[:HASH_LEN], [c[0] for c in cols]  # pay is now the single top record


def _ingest_split(
    accounts: Iterable[Account], k: int, fd: int, chunk_size: int, w: int, auto: bool
) -> int:
    """Ingest chunk by chunk, each chunk split between this process and w-1 forked workers.

    Best for a list already in memory: the parent has nothing else to do meanwhile.
    """
    rsize, it, n = HASH_LEN + AMOUNT_LEN * k, iter(accounts), 0
    seen: set[Any] = set()
    while True:
        chunk, source_error = take(it, chunk_size)
        if chunk:
            os.ftruncate(fd, (n + len(chunk)) * rsize)
            ww = 1 if auto and len(chunk) < _SERIAL_BELOW else w
            tasks: list[Callable[[], Any]] = [
                partial(_ingest, chunk[lo:hi], k, fd, (n + lo) * rsize)
                for lo, hi in pairwise(_ingest_cuts(len(chunk), ww))
            ]
            tasks[0] = partial(_ids_then, chunk, k, seen, tasks[0])
            _run_parallel(tasks)
            n += len(chunk)
        if source_error is not None:  # after the accounts before it, as in stream order
            raise source_error
        if not chunk:
            return n


def _ingest_pipelined(
    it: Iterator[Account], k: int, fd: int, chunk_size: int, w: int, auto: bool
) -> int:
    """Ingest a stream: w-1 forked workers hash chunk i while this process reads chunk i+1.

    Pulling accounts from a generator or cursor costs about as much as hashing them, and
    only this process can do it, so it does that and the duplicate-id check, nothing else.
    """
    rsize, n = HASH_LEN + AMOUNT_LEN * k, 0
    seen: set[Any] = set()
    pending: list[tuple[int, int]] = []
    try:
        while True:
            chunk, source_error = take(it, chunk_size)
            if not chunk:
                break
            os.ftruncate(fd, (n + len(chunk)) * rsize)
            error = None
            try:
                _check_ids(chunk, k, seen)
            except MerkleError as exc:
                error = exc
            children, pending = pending, []
            _join(children)  # the previous chunk's errors come first, in stream order
            if error is not None:
                raise error
            if auto and len(chunk) < _SERIAL_BELOW:  # a fork would cost more than it saves
                _ingest(chunk, k, fd, n * rsize)
            else:
                pending = [
                    _fork(partial(_ingest, chunk[lo:hi], k, fd, (n + lo) * rsize))
                    for lo, hi in _split(len(chunk), w - 1)
                ]
            n += len(chunk)
            if source_error is not None:
                break
        children, pending = pending, []
        _join(children)
        if source_error is not None:  # after the accounts before it, as in stream order
            raise source_error
    finally:
        _stop(pending)  # only after an error, which is already raised: stop, then reap
        for pid, r in pending:
            _read_pipe(r)
            os.waitpid(pid, 0)
    return n


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


def _meta(snapshot: str, assets: Sequence[Asset]) -> bytes:
    """The header's JSON: snapshot id and asset list, compact."""
    return json.dumps(
        {
            "snapshot": snapshot,
            "assets": [{"code": a.code, "decimals": a.decimals} for a in assets],
        },
        separators=(",", ":"),
    ).encode()


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

    With ``workers=None`` the compiled accelerator is used when it is built (see
    ``audits.core.merkle.native``); otherwise, or with an explicit ``workers``, the pure-Python
    builder runs, on every available CPU for large inputs and none extra for small ones.
    Both write the same bytes. Raises MerkleError on bad input; an empty stream is an error
    (see docs/proof-format.md). If ``timings`` is given, the wall time of each phase is stored
    in it (for benchmarks).
    """
    clock = time.perf_counter
    t0 = clock()
    assets = _check_params(k, pad_secret, assets)
    path = os.fspath(path)
    if workers is None and native.available(k):
        meta = _meta(snapshot, assets)
        return native.build(
            accounts, k, pad_secret, path, meta=meta, snapshot=snapshot, assets=assets,
            chunk_size=chunk_size, timings=timings,
        )  # fmt: skip
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
        # Phase A: hash and pack every account into the unsorted scratch file.
        if isinstance(accounts, Sequence) or nworkers == 1 or not hasattr(os, "fork"):
            n = _ingest_split(accounts, k, ufd, chunk_size, nworkers, auto)
        else:
            n = _ingest_pipelined(iter(accounts), k, ufd, chunk_size, nworkers, auto)
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
        meta = _meta(snapshot, assets)
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


def build_tree_from_records(
    chunks: Iterable[Any],
    k: int,
    pad_secret: bytes,
    path: str | os.PathLike[str],
    *,
    snapshot: str = "",
    assets: Sequence[Asset] | None = None,
    workers: int | None = None,
    timings: dict[str, float] | None = None,
) -> TreeInfo:
    """Build the tree file at ``path`` from an account record stream (see ``records``).

    Chunks may split records anywhere. The same tree as ``build_tree`` over the decoded
    accounts; with the compiled accelerator no Python object is made per account, which is
    what makes ten million accounts quick. Raises MerkleError on a bad or truncated record.
    """
    assets = _check_params(k, pad_secret, assets)
    path = os.fspath(path)
    if workers is None and native.available(k):
        return native.build_records(
            chunks, k, pad_secret, path, meta=_meta(snapshot, assets), snapshot=snapshot,
            assets=assets, timings=timings,
        )  # fmt: skip
    return build_tree(
        decode_records(chunks, k), k, pad_secret, path, snapshot=snapshot, assets=assets,
        workers=workers, timings=timings,
    )  # fmt: skip
