"""Benchmark: reconciling 1,000 assets in one batch (issue 10: <= 1 s on PostgreSQL).

Seeds 1,000 assets, 10 custodians each with one accepted statement listing every asset
(settled lines, 10,000 lines in all), 3 chains with one deployment of every asset each and one
fresh manual supply reading per deployment; then times the real service
(`audits.reconciliation.reconcile_assets`) on every asset:
  - first run: creates 1,000 reconciliations (each with 10 statement links and 3 reading links);
  - unchanged run: same evidence, so it only records the check on each latest reconciliation.
Each is the best of --runs (the first-run case is reset between runs by deleting what it made).
Next to it, floors measured in the same run: the service's reads alone (the same SELECTs and
the evidence assembly, without comparing or writing), and a bare SELECT of every statement line.
Query counts come from Django's CaptureQueriesContext.

    .venv/bin/python bench/reconciliation_bench.py              # PostgreSQL + SQLite
    .venv/bin/python bench/reconciliation_bench.py --pg-only --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS, CUSTODIANS, CHAINS = 1_000, 10, 3
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_NAME = os.environ.get("BENCH_PG_DATABASE", "porapp_bench6")
PG_BENCH = f"postgres://postgres@127.0.0.1:5432/{PG_NAME}"


def seed() -> list[int]:
    from datetime import timedelta
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from audits.models import (
        Asset,
        Chain,
        Custodian,
        CustodianStatement,
        StatementLine,
        SupplyReading,
        TokenDeployment,
    )

    now = timezone.now()
    as_of = now - timedelta(minutes=5)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    assets = Asset.objects.bulk_create(
        Asset(code=f"B{i:05d}x", name=f"Bench {i}", isin=f"XS{i:010d}") for i in range(ASSETS)
    )
    custodians = Custodian.objects.bulk_create(
        Custodian(name=f"Bench custodian {c}", lei=f"BENCH{c:015d}") for c in range(CUSTODIANS)
    )
    statements = CustodianStatement.objects.bulk_create(
        CustodianStatement(
            custodian=c,
            as_of=as_of,
            uploaded_by=user,
            format="csv",
            source="api",
            status="accepted",
            line_count=ASSETS,
        )
        for c in custodians
    )
    StatementLine.objects.bulk_create(
        (
            StatementLine(
                statement=s,
                line_no=n + 1,
                isin=a.isin,
                asset=a,
                quantity=Decimal("1000.5"),
                account="ACC-1",
                balance_type="settled",
            )
            for s in statements
            for n, a in enumerate(assets)
        ),
        batch_size=5_000,
    )
    chains = Chain.objects.bulk_create(
        Chain(chain_id=910_000 + c, name=f"Bench chain {c}", rpc_urls="http://127.0.0.1:1")
        for c in range(CHAINS)
    )
    deployments = TokenDeployment.objects.bulk_create(
        TokenDeployment(asset=a, chain=ch, address=f"0x{i:040x}", decimals=18)
        for ch in chains
        for i, a in enumerate(assets)
    )
    supply = Decimal(3_000)
    SupplyReading.objects.bulk_create(
        (
            SupplyReading(
                deployment=d,
                source="manual",
                status="ok",
                as_of=as_of,
                decimals=18,
                total_supply_raw=supply * 10**18,
                total_supply=supply,
                excluded_raw=Decimal(0),
                circulating_raw=supply * 10**18,
                circulating=supply,
                attempted_at=now,
                last_confirmed_at=as_of,
                reference="bench",
                entered_by=user,
            )
            for d in deployments
        ),
        batch_size=1_000,
    )
    return [a.pk for a in assets]


def bare_reads(ids: list[int]) -> None:
    """The service's reads alone: the locking SELECT and `gather` (every input, assembled as
    the core's evidence), without comparing, digesting or writing anything."""
    from django.db import transaction
    from django.utils import timezone

    from audits import reconciliation
    from audits.models import Eligibility

    with transaction.atomic():
        now = timezone.now()
        rows = list(
            Eligibility.objects.select_for_update(of=("self",))
            .filter(asset_id__any_of=ids, asset__active=True)
            .select_related("asset", "asset__policy")
            .order_by("asset_id")
        )
        reconciliation.gather([r.asset for r in rows], now)


def select_lines() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_id, asset_id, quantity FROM audits_statementline")
        cursor.fetchall()


def run_child(database_url: str, runs: int, profile: bool) -> None:
    os.environ.update(DATABASE_URL=database_url, DEBUG="1", LOG_LEVEL="WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "porapp.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from audits.models import Reconciliation
    from audits.reconciliation import reconcile_assets

    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    ids = seed()
    print(f"  seeded in {time.perf_counter() - start:.1f} s")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    def timed(fn) -> tuple[float, int]:
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
        return elapsed, len(queries.captured_queries)

    def reset() -> None:
        # Evidence is immutable and protected through the ORM: clear the bench's own output
        # with plain SQL so the next first run starts from nothing again.
        with connection.cursor() as cursor:
            cursor.execute("UPDATE audits_eligibility SET latest_id = NULL, healthy_streak = 0")
            for table in ("eligibilityevent", "reconciledstatement", "reconciledreading"):
                cursor.execute(f"DELETE FROM audits_{table}")
            cursor.execute("DELETE FROM audits_reconciliation")

    first, unchanged, reads, lines = [], [], [], []
    first_q = unchanged_q = reads_q = 0
    for run in range(runs):
        if run:
            reset()
        t, first_q = timed(lambda: reconcile_assets(ids))
        first.append(t)
        assert Reconciliation.objects.count() == ASSETS, Reconciliation.objects.count()
        t, unchanged_q = timed(lambda: reconcile_assets(ids))
        unchanged.append(t)
        assert Reconciliation.objects.count() == ASSETS
        t, reads_q = timed(lambda: bare_reads(ids))
        reads.append(t)
        lines.append(timed(select_lines)[0])
    statuses = sorted(set(Reconciliation.objects.values_list("status", flat=True)))
    checks = sorted(set(Reconciliation.objects.values_list("checks", flat=True)))
    print(f"  statuses {statuses}, checks per reconciliation {checks}")
    print(f"  first run (creates {ASSETS:,}):   best {min(first):.3f} s, {first_q} queries")
    print(f"  unchanged run (touch only): best {min(unchanged):.3f} s, {unchanged_q} queries")
    print(f"    runs first: {', '.join(f'{t:.3f}' for t in first)}")
    print(f"    runs unchanged: {', '.join(f'{t:.3f}' for t in unchanged)}")
    print(f"  floor, the service's reads alone: best {min(reads):.3f} s, {reads_q} queries")
    print(f"  floor, bare SELECT of all {ASSETS * CUSTODIANS:,} lines: best {min(lines):.3f} s")
    if profile:
        for name, fn in (("unchanged", lambda: reconcile_assets(ids)), ("first", None)):
            if fn is None:
                reset()
                fn = lambda: reconcile_assets(ids)  # noqa: E731
            prof = cProfile.Profile()
            prof.runcall(fn)
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(35)
            print(f"  --- profile, {name} run (cumulative) ---")
            print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg-only", action="store_true")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--profile", action="store_true", help="print cProfile of each case")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.runs, args.profile)
        return
    print(
        f"Reconciliation benchmark: {ASSETS:,} assets x {CUSTODIANS} custodians x {CHAINS} "
        f"chains, best of {args.runs}, {os.cpu_count()} cores"
    )
    targets = []
    tmp = tempfile.mkdtemp(prefix="porapp-bench-")
    if not args.sqlite_only:
        subprocess.run(["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {PG_NAME}"], check=True)
        subprocess.run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {PG_NAME}"], check=True)
        targets.append(("PostgreSQL", PG_BENCH))
    if not args.pg_only:
        targets.append(("SQLite", f"sqlite:///{tmp}/bench.sqlite3"))
    for name, url in targets:
        print(f"{name}:", flush=True)
        env = {**os.environ, "PORAPP_VAR_DIR": tmp}
        cmd = [sys.executable, __file__, "--child", url, "--runs", str(args.runs)]
        subprocess.run(cmd + (["--profile"] if args.profile else []), check=True, env=env)


if __name__ == "__main__":
    main()
