"""Benchmark: a liability snapshot from upload to published roots (issue 12: 1M accounts x 3
assets <= 15 s, stretch 10 s, peak RSS <= 1.5 GB; 10M accounts x 1 asset <= 90 s).

In a throw-away PostgreSQL database: the assets are created, the CSV is generated on disk
beforehand (not timed), then the real service is timed end to end in this process:
`audits.liabilities.receive` (the file streamed in 1 MiB chunks into storage, hashed, the
snapshot row) and `audits.liabilities.build` (the claim, the check and split of every row with
HMAC nonces, one tree per asset with the C builder, the tree files stored and hashed, the
publish transaction) — what the Celery task runs. Peak RSS is this process's maximum.

Floors in the same run: reading and hashing the file (SHA-256, the least any upload costs),
and the tree builder alone on the records the split produced.

    .venv/bin/python bench/liabilities_bench.py             # 1M x 3
    .venv/bin/python bench/liabilities_bench.py --big       # also 10M x 1
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_NAME = os.environ.get("BENCH_PG_DATABASE", "porapp_bench12")
PG_BENCH = f"postgres://postgres@127.0.0.1:5432/{PG_NAME}"
CODES = ("AAPLx", "MSFTx", "NVDAx")
ISINS = ("US0378331005", "US5949181045", "US67066G1040")


def generate(path: Path, accounts: int, codes: tuple[str, ...]) -> int:
    """Write the CSV (one row per account and asset) in big blocks; return its size."""
    with path.open("wb") as out:
        out.write(b"account_id,asset,balance\n")
        block = []
        for i in range(accounts):
            for n, code in enumerate(codes):
                block.append(f"user-{i:09d},{code},{(i * 7 + n) % 100_000}.{i % 1000:03d}\n")
            if len(block) >= 30_000:
                out.write("".join(block).encode())
                block.clear()
        out.write("".join(block).encode())
    return path.stat().st_size


def chunks(path: Path, size: int = 1 << 20):
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(accounts: int, ncodes: int, work: Path) -> None:
    os.environ.update(DATABASE_URL=PG_BENCH, DEBUG="1", LOG_LEVEL="WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "porapp.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from datetime import UTC, datetime

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from audits import liabilities
    from audits.core.merkle import build_tree_from_records
    from audits.models import Asset, LiabilityTree, PlatformOperator

    call_command("migrate", verbosity=0)
    codes = CODES[:ncodes]
    for code, isin in zip(codes, ISINS, strict=False):
        Asset.objects.get_or_create(code=code, defaults={"name": code, "isin": isin})
    user, _ = get_user_model().objects.get_or_create(username="bench-operator")
    PlatformOperator.objects.get_or_create(user=user)

    csv = work / f"snapshot-{accounts}x{ncodes}.csv"
    size = generate(csv, accounts, codes)
    rss_before = peak_rss_mb()

    started = time.perf_counter()
    snapshot, _ = liabilities.receive(
        user=user, chunks=chunks(csv), as_of=datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
    )
    received = time.perf_counter()
    snapshot = liabilities.build(snapshot.pk)
    done = time.perf_counter()
    rss_service = peak_rss_mb()
    assert snapshot.status == "published", (snapshot.status, snapshot.failure, snapshot.errors)
    trees = list(LiabilityTree.objects.filter(snapshot=snapshot).select_related("asset"))
    assert len(trees) == ncodes and all(t.account_count == accounts for t in trees)

    # Floor 1: read and hash the file.
    t0 = time.perf_counter()
    digest = hashlib.sha256()
    for chunk in chunks(csv):
        digest.update(chunk)
    hash_floor = time.perf_counter() - t0

    # Floor 2: the C builder alone on one asset's records, times the number of assets.
    from audits.core.liabilities import split_snapshot

    records = work / "records.bin"
    with (
        csv.open("rb") as lines,
        records.open("wb") as sink,
        open(os.devnull, "wb") as discard,
    ):
        sinks = {code: (sink if code == codes[0] else discard) for code in codes}
        split_snapshot(lines, {c: 18 for c in codes}, b"s" * 32, sinks)
    t0 = time.perf_counter()
    build_tree_from_records(chunks(records), 1, b"p" * 32, work / "floor.mst")
    build_floor = (time.perf_counter() - t0) * ncodes

    print(
        f"{accounts:,} accounts x {ncodes} assets ({size / 1e6:.0f} MB CSV): "
        f"upload-to-published {done - started:.2f} s (receive {received - started:.2f} s, "
        f"build {done - received:.2f} s); peak RSS {rss_service:.0f} MB "
        f"(before the snapshot: {rss_before:.0f} MB). Floors: read+SHA-256 of the file "
        f"{hash_floor:.2f} s; C tree builder alone {build_floor:.2f} s "
        f"({ncodes} x {build_floor / ncodes:.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", action="store_true", help="also 10M accounts x 1 asset")
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, type=int, metavar=("ACCOUNTS", "ASSETS"))
    parser.add_argument("--work")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], Path(args.work))
        return
    cases = [(args.accounts, 3)] + ([(10_000_000, 1)] if args.big else [])
    for accounts, ncodes in cases:
        subprocess.run(["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {PG_NAME}"], check=True)
        subprocess.run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {PG_NAME}"], check=True)
        with tempfile.TemporaryDirectory(dir=ROOT / "var") as tmp:
            env = {**os.environ, "PORAPP_VAR_DIR": tmp}
            cmd = [sys.executable, __file__, "--child", str(accounts), str(ncodes), "--work", tmp]
            subprocess.run(cmd, check=True, env=env)
        subprocess.run(["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {PG_NAME}"], check=True)


if __name__ == "__main__":
    main()
