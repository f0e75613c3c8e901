"""Benchmark of the liability snapshot checker/splitter (issue 12): the compiled Splitter on
1M accounts x 3 assets and 10M accounts x 1 asset, the pure-Python reference as its floor.

    .venv/bin/python bench/liabilities_split_bench.py              # both files, + pipeline
    .venv/bin/python bench/liabilities_split_bench.py --small      # 100k x 3 only (smoke)

The CSV files are generated once under var/bench/ (streamed, never held in memory) and
reused. Every measurement runs in its own child process, so its peak RSS (ru_maxrss) is its
own. "split" is timed from the first 1 MiB read of the file to the last record written to
the per-asset spool files (as the service does it); "pipeline" adds building each asset's
tree from its spool file (build_tree_from_records), i.e. upload-to-roots minus storing the
upload. The reference runs on a 100k x 3 file; its time for the big files is extrapolated
linearly and labelled so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audits.core.liabilities import (  # noqa: E402
    native_available,
    split_chunks,
    split_reference,
)
from audits.core.merkle import Asset, build_tree_from_records  # noqa: E402

SECRET = b"\x07" * 32
OUT = ROOT / "var" / "bench"
CHUNK = 1 << 20
CODES = ("AAPLx", "MSFTx", "NVDAx")
DECIMALS = {"AAPLx": 6, "MSFTx": 6, "NVDAx": 9}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def csv_path(accounts: int, assets: int) -> Path:
    return OUT / f"liabilities-{accounts}x{assets}.csv"


def generate(accounts: int, assets: int) -> Path:
    """The file, written in blocks of rows (ids like a platform's, varied balances)."""
    path = csv_path(accounts, assets)
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    codes = CODES[:assets]
    with open(tmp, "w", encoding="ascii", newline="\n") as f:
        f.write("account_id,asset,balance\n")
        block = 20_000
        for start in range(0, accounts, block):
            rows = []
            for i in range(start, min(start + block, accounts)):
                for j, code in enumerate(codes):
                    whole = (i * 7919 + j * 104_729) % 1_000_000
                    frac = (i * 31 + j) % 1_000_000
                    rows.append(f"user-{i:08d},{code},{whole}.{frac:06d}\n")
            f.write("".join(rows))
    tmp.rename(path)
    return path


def chunks(path: Path):
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            yield block


def case(kind: str, accounts: int, assets: int) -> dict:
    """One measurement, in this (child) process."""
    path = csv_path(accounts, assets)
    codes = CODES[:assets]
    decimals = {c: DECIMALS[c] for c in codes}
    spool = {c: OUT / f"spool-{os.getpid()}-{c}.bin" for c in codes}
    sinks = {c: open(p, "wb") for c, p in spool.items()}  # noqa: SIM115
    rss0 = rss_mb()
    t0 = time.perf_counter()
    try:
        if kind == "reference":
            with open(path, "rb") as f:
                result = split_reference(f, decimals, SECRET, sinks)
        else:
            result = split_chunks(chunks(path), decimals, SECRET, sinks)
        for s in sinks.values():
            s.close()
        t1 = time.perf_counter()
        assert result.ok, result.errors[:3]
        rows = result.rows
        out = {
            "kind": kind,
            "file": path.name,
            "bytes": path.stat().st_size,
            "rows": rows,
            "split_s": round(t1 - t0, 3),
            "rows_per_s": round(rows / (t1 - t0)),
            "rss_before_mb": round(rss0, 1),
        }
        if kind == "pipeline":
            roots = {}
            for code in codes:
                info = build_tree_from_records(
                    chunks(spool[code]),
                    1,
                    SECRET,
                    OUT / f"tree-{os.getpid()}-{code}.bin",
                    assets=[Asset(code, decimals[code])],
                )
                roots[code] = info.root_hash.hex()[:16]
                os.unlink(OUT / f"tree-{os.getpid()}-{code}.bin")
            out["pipeline_s"] = round(time.perf_counter() - t0, 3)
            out["roots"] = roots
        out["peak_rss_mb"] = round(rss_mb(), 1)
        return out
    finally:
        for s in sinks.values():
            s.close()
        for p in spool.values():
            p.unlink(missing_ok=True)


def run(kind: str, accounts: int, assets: int) -> dict:
    argv = [sys.executable, __file__, "--case", kind, str(accounts), str(assets)]
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", nargs=3, metavar=("KIND", "ACCOUNTS", "ASSETS"))
    parser.add_argument("--small", action="store_true", help="only 100k accounts x 3 assets")
    args = parser.parse_args()
    if args.case:
        kind, accounts, assets = args.case
        print(json.dumps(case(kind, int(accounts), int(assets))))
        return 0
    if not native_available():
        print("compiled splitter not built: python -m audits.core.merkle.build_native")
        return 1
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")  # fmt: skip
    sizes = [(100_000, 3)] if args.small else [(100_000, 3), (1_000_000, 3), (10_000_000, 1)]
    for accounts, assets in sizes:
        t = time.perf_counter()
        generate(accounts, assets)
        print(f"file {csv_path(accounts, assets).name}: ready ({time.perf_counter() - t:.1f} s)")
    ref = run("reference", 100_000, 3)
    print(json.dumps(ref))
    ref_rate = ref["rows_per_s"]
    for accounts, assets in sizes:
        result = run("native", accounts, assets)
        result["reference_rows_per_s"] = ref_rate
        result["reference_s_extrapolated"] = round(result["rows"] / ref_rate, 1)
        result["speedup"] = round(result["rows_per_s"] / ref_rate, 1)
        print(json.dumps(result))
        if assets == 3 and accounts >= 1_000_000:
            print(json.dumps(run("pipeline", accounts, assets)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
