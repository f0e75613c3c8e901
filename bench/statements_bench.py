"""Benchmark: a 100,000-line CSV statement parsed, validated and stored (issue 4: <= 5 s on PG).

Runs the real service (`audits.statements.submit_statement`) against a throw-away database and
prints, next to it, two floors measured in the same run on the same bytes and rows:
  - parse floor: stdlib `csv` reading the file and converting each quantity to Decimal;
  - store floor: a bare COPY (PostgreSQL) / executemany INSERT (SQLite) of the same rows.

    .venv/bin/python bench/statements_bench.py            # PostgreSQL at 127.0.0.1:5432 + SQLite
    .venv/bin/python bench/statements_bench.py --sqlite-only
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINES = 100_000
ISINS = ["US0378331005", "US5949181045", "US78462F1030", "US46090E1038"]
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgres://postgres@127.0.0.1:5432/porapp_bench"


def make_csv(lines: int, salt: int) -> bytes:
    out = ["isin,quantity,account,balance_type"]
    for i in range(lines):
        out.append(f"{ISINS[i % 4]},{1000 + i % 997}.{salt:02d},ACC-{i:07d},settled")
    return ("\n".join(out) + "\n").encode()


def run_child(database_url: str, runs: int) -> None:
    """Inside a process configured for one database: migrate, then time the service."""
    os.environ.update(DATABASE_URL=database_url, DEBUG="1", LOG_LEVEL="WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "porapp.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from datetime import UTC, datetime

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from audits.demo import load_demo_data
    from audits.models import Custodian, CustodianUser
    from audits.statements import submit_statement

    call_command("migrate", verbosity=0)
    load_demo_data()
    custodian = Custodian.objects.order_by("lei").first()
    user, _ = get_user_model().objects.get_or_create(username="bench")
    CustodianUser.objects.get_or_create(user=user, defaults={"custodian": custodian})
    as_of = datetime(2026, 11, 24, 21, tzinfo=UTC)

    service, parse_floor, store_floor = [], [], []
    for run in range(runs):
        raw = make_csv(LINES, run)
        start = time.perf_counter()
        statement = submit_statement(
            custodian=custodian, user=user, raw=raw, fmt="csv", as_of=as_of
        ).statement
        service.append(time.perf_counter() - start)
        assert statement.status == "accepted", statement.rejection_report[:3]
        assert statement.line_count == LINES

        start = time.perf_counter()
        reader = csv.reader(io.StringIO(raw.decode()))
        next(reader)
        rows = [(r[0], Decimal(r[1]), r[2], r[3]) for r in reader]
        parse_floor.append(time.perf_counter() - start)

        start = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS floor (isin text, q numeric, a text, b text)"
            )
            if connection.vendor == "postgresql":
                with cursor.copy("COPY floor FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                cursor.executemany(
                    "INSERT INTO floor VALUES (%s, %s, %s, %s)",
                    [(a, str(b), c, d) for a, b, c, d in rows],
                )
            cursor.execute("DELETE FROM floor")
        store_floor.append(time.perf_counter() - start)

    med = statistics.median
    floor_name = "bare COPY" if connection.vendor == "postgresql" else "bare executemany INSERT"
    runs_text = ", ".join(f"{t:.2f}" for t in service)
    print(f"  service (hash, store raw, parse, validate, insert, commit): {med(service):.2f} s")
    print(f"    runs: {runs_text}")
    print(f"  floor, stdlib csv + Decimal parse: {med(parse_floor):.2f} s")
    print(f"  floor, {floor_name} into a temp table: {med(store_floor):.2f} s")
    ratio = med(service) / (med(parse_floor) + med(store_floor))
    print(f"  ratio service / (parse floor + store floor): {ratio:.1f}x")
    print(f"  lines per second: {LINES / med(service):,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.runs)
        return
    print(
        f"Statement upload benchmark: {LINES:,} CSV lines, {args.runs} runs, {os.cpu_count()} cores"
    )
    targets = []
    if not args.sqlite_only:
        admin = PG_ADMIN.replace("postgres://", "postgresql://")
        subprocess.run(["psql", admin, "-qc", "DROP DATABASE IF EXISTS porapp_bench"], check=True)
        subprocess.run(["psql", admin, "-qc", "CREATE DATABASE porapp_bench"], check=True)
        targets.append(("PostgreSQL", PG_BENCH))
    tmp = tempfile.mkdtemp(prefix="porapp-bench-")
    targets.append(("SQLite", f"sqlite:///{tmp}/bench.sqlite3"))
    for name, url in targets:
        print(f"{name}:", flush=True)
        env = {**os.environ, "PORAPP_VAR_DIR": tmp}
        subprocess.run(
            [sys.executable, __file__, "--child", url, "--runs", str(args.runs)],
            check=True,
            env=env,
        )


if __name__ == "__main__":
    main()
