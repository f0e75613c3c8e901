"""Benchmark of the Merkle sum tree builder (issue 3) against the raw-hash limit and a peer.

    .venv/bin/python bench/merkle_bench.py            # 100k and 1M accounts, k=1 and k=4
    .venv/bin/python bench/merkle_bench.py --huge     # also 10M accounts (k=1 only)
    .venv/bin/python bench/merkle_bench.py --sizes 20000 --ks 1   # quick smoke run
    .venv/bin/python bench/merkle_bench.py --dupes    # 1M copies of one id: time to refuse

Every measurement runs in its own child process so that peak RSS (ru_maxrss) of one case
never includes another. "build" is timed from the first read of the account stream to the
renamed, complete tree file; the accounts themselves are generated before the clock starts
(except with --huge, where they are streamed from a generator and that cost is reported).

--huge also builds 10M accounts from an account record stream (audits/core/merkle/records.py):
the records are written to a file first, as a database export would be, and the clock
covers reading that file in 1 MiB chunks, building, and renaming the finished tree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audits.core.merkle import (  # noqa: E402
    MerkleError,
    build_tree,
    build_tree_from_records,
    default_workers,
    encode_accounts,
    extract_proof,
    native,
    verify_proof,
)

SECRET = b"\x07" * 32


def rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def accounts(n: int, k: int):
    """Deterministic-shape accounts with random nonces, as a generator."""
    nonces = os.urandom(32 * min(n, 1 << 20))
    span = len(nonces) // 32
    for i in range(n):
        j = (i % span) * 32
        # Rotate the nonce pool with i so ids stay unique in their hash even when reused.
        yield (f"acct-{i:09d}", nonces[j : j + 32], [(i * 7919) % 10**24 for _ in range(k)])


def write_records(n: int, k: int, path: Path) -> float:
    """The accounts of accounts(n, k) as a record stream file; returns seconds taken."""
    t = time.perf_counter()
    nonces = os.urandom(32 * min(n, 1 << 20))
    span = len(nonces) // 32
    with open(path, "wb") as f:
        buf = bytearray()
        for i in range(n):
            idb = b"acct-%09d" % i
            j = (i % span) * 32
            amount = ((i * 7919) % 10**24).to_bytes(16, "big")
            buf += len(idb).to_bytes(4, "big") + idb + nonces[j : j + 32] + amount * k
            if len(buf) >= 1 << 22:
                f.write(buf)
                buf = bytearray()
        f.write(buf)
    return time.perf_counter() - t


def case_build(n: int, k: int, stream: bool | str) -> dict:
    if stream == "records":
        return case_records(n, k)
    if stream:
        t = time.perf_counter()
        for _ in accounts(n, k):
            pass
        stream_s = time.perf_counter() - t
        src, before = accounts(n, k), rss_mb()
    else:
        src, stream_s = list(accounts(n, k)), 0.0
        before = rss_mb()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        path = Path(tmp) / "tree.bin"
        phases: dict[str, float] = {}
        t = time.perf_counter()
        # BENCH_PURE=1 measures the pure-Python builder (what runs without the C accelerator).
        pure = {"workers": default_workers()} if os.environ.get("BENCH_PURE") else {}
        info = build_tree(src, k, SECRET, path, timings=phases, **pure)
        build_s = time.perf_counter() - t
        peak_self, peak_children = rss_mb(), rss_mb(resource.RUSAGE_CHILDREN)
        size = path.stat().st_size
        rng = random.Random(1)
        sample = [(f"acct-{i:09d}", i) for i in rng.sample(range(n), min(n, 300))]
        by_id = {}
        if not stream:
            by_id = {a: nn for a, nn, _ in src if a in dict(sample)}
        ext, ver = [], []
        for aid, i in sample:
            if by_id:
                t = time.perf_counter()
                proof = extract_proof(path, account_id=aid, nonce=by_id[aid])
            else:
                t = time.perf_counter()
                proof = extract_proof(path, index=i % info.leaf_count)
            ext.append(time.perf_counter() - t)
            t = time.perf_counter()
            ok = verify_proof(proof).valid
            ver.append(time.perf_counter() - t)
            assert ok
    return {
        "n": n,
        "k": k,
        "build_s": build_s,
        "phases": phases,
        "stream_s": stream_s,
        "leaves_per_s": n / build_s,
        "rss_before_mb": before,
        "peak_rss_mb": peak_self,
        "peak_rss_workers_mb": peak_children,
        "file_mb": size / 2**20,
        "extract_ms": statistics.median(ext) * 1e3,
        "verify_ms": statistics.median(ver) * 1e3,
        "leaf_count": info.leaf_count,
    }


def case_records(n: int, k: int) -> dict:
    """Build from a record stream file written before the clock starts."""
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        src = Path(tmp) / "accounts.rec"
        write_s = write_records(n, k, src)
        before = rss_mb()
        path = Path(tmp) / "tree.bin"
        phases: dict[str, float] = {}
        pure = {"workers": default_workers()} if os.environ.get("BENCH_PURE") else {}
        t = time.perf_counter()
        with open(src, "rb") as f:
            chunks = iter(lambda: f.read(1 << 20), b"")
            info = build_tree_from_records(chunks, k, SECRET, path, timings=phases, **pure)
        build_s = time.perf_counter() - t
        peak_self, peak_children = rss_mb(), rss_mb(resource.RUSAGE_CHILDREN)
        ext, ver = [], []
        for i in random.Random(1).sample(range(info.leaf_count), 300):
            t = time.perf_counter()
            proof = extract_proof(path, index=i)
            ext.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert verify_proof(proof).valid
            ver.append(time.perf_counter() - t)
        return {
            "n": n,
            "k": k,
            "build_s": build_s,
            "phases": phases,
            "stream_s": 0.0,
            "records_file_s": write_s,
            "records_file_mb": src.stat().st_size / 2**20,
            "leaves_per_s": n / build_s,
            "rss_before_mb": before,
            "peak_rss_mb": peak_self,
            "peak_rss_workers_mb": peak_children,
            "file_mb": path.stat().st_size / 2**20,
            "extract_ms": statistics.median(ext) * 1e3,
            "verify_ms": statistics.median(ver) * 1e3,
            "leaf_count": info.leaf_count,
        }


def case_dupes(n: int, how: str, account_id: str) -> dict:
    """Seconds until a build over n accounts that all have ``account_id`` is refused.

    ``how``: ``c-list`` (build_tree, C accelerator, a list of n tuples made beforehand),
    ``c-records`` (build_tree_from_records, C, the same accounts as a record stream in
    1 MiB chunks, in memory), ``pure`` (build_tree with the pure-Python builder on the list,
    all CPUs), ``set-floor`` (bare ``len(set(ids)) != len(ids)`` over the ids, nothing else).
    """
    nonces = os.urandom(32 * min(n, 1 << 16))
    span = len(nonces) // 32
    accs = [(account_id, nonces[(i % span) * 32 : (i % span + 1) * 32], [i]) for i in range(n)]
    chunks: list[bytes] = []
    if how == "c-records":
        chunks = list(encode_accounts(accs, 1))
        accs = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        path = Path(tmp) / "tree.bin"
        t = time.perf_counter()
        try:
            if how == "set-floor":
                ids = [a for a, _, _ in accs]
                if len(set(ids)) == len(ids):
                    raise AssertionError("no repeat found")
                raise MerkleError(account_id, "id", "duplicate account id")
            if how == "c-records":
                build_tree_from_records(chunks, 1, SECRET, path)
            else:
                workers = {"workers": default_workers()} if how == "pure" else {}
                build_tree(accs, 1, SECRET, path, **workers)
        except MerkleError as exc:
            refused_s = time.perf_counter() - t
            assert (exc.account, exc.field) == (account_id, "id"), exc
            assert "duplicate" in str(exc)
        else:
            raise AssertionError("the build was not refused")
        assert not path.exists()
    return {"refused_s": refused_s, "peak_rss_mb": rss_mb()}


def dupes_main() -> None:
    print(
        f"# merkle_bench --dupes  {time.strftime('%Y-%m-%d %H:%M')}  {platform.machine()}  "
        f"cpus={len(os.sched_getaffinity(0))}  python {platform.python_version()}"
    )
    print(f"{'copies':>10} {'id':>8} {'builder / input':>18} {'refused in s':>12} {'peak RSS':>9}")
    for account_id in ("acct-000000042", ""):
        for how in ("c-list", "c-records", "pure", "set-floor"):
            r = in_child("dupes", "1000000", how, account_id)
            print(
                f"{1_000_000:>10} {account_id or '(empty)':>8.8} {how:>18} "
                f"{r['refused_s']:>12.3f} {r['peak_rss_mb']:>7.0f}MB",
                flush=True,
            )


def case_raw(n: int, k: int) -> dict:
    """Bare hashlib.sha256 over messages of the sizes the tree hashes, one core."""
    leaves = 1 << (n - 1).bit_length()
    sha, total = hashlib.sha256, 0.0
    # Batches keep memory flat at 10M; only the hashing itself is timed.
    for count, size in (
        (n, 18 + 4 + 13 + 32),
        (leaves, 1 + 32 + 16 * k),
        (leaves - 1, 97 + 32 * (k - 1)),
    ):
        for lo in range(0, count, 1 << 20):
            msgs = [os.urandom(size) for _ in range(min(1 << 20, count - lo))]
            t = time.perf_counter()
            [sha(m).digest() for m in msgs]
            total += time.perf_counter() - t
    return {"raw_s": total, "hashes": n + 2 * leaves - 1}


def case_peer(n: int) -> dict:
    """merkletools (plain SHA-256 tree, no sums) over n precomputed leaf digests."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns that pysha3 is missing; sha256 is unaffected
        import merkletools
    hexes = [hashlib.sha256(i.to_bytes(8, "big")).hexdigest() for i in range(n)]
    t = time.perf_counter()
    mt = merkletools.MerkleTools(hash_type="sha256")
    mt.add_leaf(hexes)
    mt.make_tree()
    return {"peer_s": time.perf_counter() - t, "peer_rss_mb": rss_mb()}


def in_child(kind: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--huge", action="store_true", help="also run 10M accounts, k=1")
    ap.add_argument(
        "--pure", action="store_true", help="the pure-Python builder, not the C accelerator"
    )
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--ks", type=int, nargs="*", default=[1, 4])
    ap.add_argument(
        "--dupes", action="store_true", help="1M accounts with one id: time to refuse them"
    )
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.pure:
        os.environ["BENCH_PURE"] = "1"  # children inherit it
    print(f"# builder: {'pure Python' if args.pure or not native.available() else 'C accelerator'}")
    if args.child:
        kind, *rest = args.child
        if kind == "build":
            mode = {"0": False, "1": True}.get(rest[2], rest[2])
            res = case_build(int(rest[0]), int(rest[1]), mode)
        elif kind == "dupes":
            res = case_dupes(int(rest[0]), rest[1], rest[2] if len(rest) > 2 else "")
        elif kind == "raw":
            res = case_raw(int(rest[0]), int(rest[1]))
        else:
            res = case_peer(int(rest[0]))
        print(json.dumps(res))
        return
    if args.dupes:
        dupes_main()
        return
    print(
        f"# merkle_bench  {time.strftime('%Y-%m-%d %H:%M')}  {platform.machine()}  "
        f"cpus={len(os.sched_getaffinity(0))}  python {platform.python_version()}"
    )
    cases: list[tuple[int, int, bool | str]] = [(n, k, False) for n in args.sizes for k in args.ks]
    cases += [(n, 1, "records") for n in args.sizes]  # the same accounts as a byte stream
    if args.huge:
        cases += [(10_000_000, 1, True), (10_000_000, 1, "records")]
    header = (
        f"{'accounts':>10} {'k':>2} {'input':>9} {'build s':>8} {'leaves/s':>10} {'peak RSS':>9} "
        f"{'file MB':>8} {'proof ms':>8} {'verify ms':>9} {'raw 1-core s':>12} "
        f"{'x raw':>6} {'peer s':>7} {'x peer':>6}  phases"
    )
    print(header)
    baselines: dict[tuple[int, int], tuple[dict, dict | None]] = {}
    for n, k, stream in cases:
        mode = stream if isinstance(stream, str) else ("1" if stream else "0")
        kind = {"0": "list", "1": "generator"}.get(mode, mode)
        b = in_child("build", str(n), str(k), mode)
        if (n, k) not in baselines:
            baselines[n, k] = (
                in_child("raw", str(n), str(k)),
                in_child("peer", str(n)) if k == 1 else None,
            )
        r, p = baselines[n, k]
        peak = max(b["peak_rss_mb"], b["peak_rss_workers_mb"])
        phases = " ".join(f"{name}={sec:.2f}" for name, sec in b["phases"].items())
        if stream == "records":
            phases += (
                f" (from a {b['records_file_mb']:.0f} MB record file written beforehand in "
                f"{b['records_file_s']:.1f}s, not included)"
            )
        elif stream:
            phases += f" (stream alone={b['stream_s']:.2f}s, included)"
        print(
            f"{n:>10} {k:>2} {kind:>9} {b['build_s']:>8.2f} {b['leaves_per_s']:>10.0f} "
            f"{peak:>7.0f}MB {b['file_mb']:>8.1f} {b['extract_ms']:>8.3f} "
            f"{b['verify_ms']:>9.3f} {r['raw_s']:>12.2f} {b['build_s'] / r['raw_s']:>6.2f} "
            + (
                f"{p['peer_s']:>7.2f} {b['build_s'] / p['peer_s']:>6.2f}"
                if p
                else f"{'-':>7} {'-':>6}"
            )
            + f"  {phases}; input held before build: {b['rss_before_mb']:.0f}MB",
            flush=True,
        )


if __name__ == "__main__":
    main()
