"""Benchmark: a breaching supply reading stored -> the freeze webhook received (issue 10: <= 2 s
median with a running worker on Redis; the filesystem broker's figure recorded too).

For each broker, in a throw-away PostgreSQL database (SQLite with --sqlite): a loopback HTTP
receiver (http.server thread) registered as a webhook endpoint for `eligibility.frozen`, a
real `celery worker` process (solo pool, like production's single-process worker), one asset
made eligible (healthy runs + `audits.eligibility.approve_unfreeze`). Each round stores a
breaching figure with `audits.supply.record_manual_supply` in a transaction and measures from
just before the call until the receiver has the frozen event: commit, the coalesced
`reconcile_asset` task through the broker, the run, the event published after its commit, the
`deliver_webhook` task through the broker, the signed POST. The asset is then restored
(a healthy figure, healthy runs in-process, approval) for the next round.

Floor, in the same run: a bare Celery round trip, `audits.tasks.worker_heartbeat` sent and
polled until its row changes in the database (the breach path makes two such trips).

    .venv/bin/python bench/webhook_latency_bench.py               # Redis db 9 + filesystem
    .venv/bin/python bench/webhook_latency_bench.py --rounds 20 --redis redis://127.0.0.1:6379/9
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_NAME = os.environ.get("BENCH_PG_DATABASE", "porapp_bench6")
PG_BENCH = f"postgres://postgres@127.0.0.1:5432/{PG_NAME}"
HEALTHY, BREACHING = 400, 5_000  # supply against 1,000 shares held


class Receiver:
    """A loopback HTTP endpoint recording when each webhook arrived, by event type."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                at = time.perf_counter()
                self.send_response(204)
                self.end_headers()
                with receiver.cond:
                    receiver.arrivals.append((at, json.loads(body)["type"]))
                    receiver.cond.notify_all()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def wait(self, kind: str, after: int, timeout: float = 30.0) -> float:
        """When the first `kind` message after the first `after` arrivals came."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for at, k in self.arrivals[after:]:
                    if k == kind:
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {kind} webhook within {timeout}s")
                self.cond.wait(left)


def seed():
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
        TokenDeployment,
    )

    admin, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    asset = Asset.objects.create(code="WHBx", name="Webhook bench", isin="XS0000000077")
    custodian = Custodian.objects.create(name="Bench custodian", lei="BENCH000000000000077")
    statement = CustodianStatement.objects.create(
        custodian=custodian,
        as_of=timezone.now() - timedelta(minutes=5),
        uploaded_by=admin,
        format="csv",
        source="api",
        status="accepted",
        line_count=1,
    )
    StatementLine.objects.create(
        statement=statement,
        line_no=1,
        isin=asset.isin,
        asset=asset,
        quantity=Decimal(1000),
        account="ACC-1",
        balance_type="settled",
    )
    chain = Chain.objects.create(
        chain_id=930_001, name="Bench chain", rpc_urls="http://127.0.0.1:1"
    )
    deployment = TokenDeployment.objects.create(
        asset=asset, chain=chain, address="0x" + "77" * 20, decimals=18
    )
    return asset, deployment, admin


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "celery", "-A", "porapp", "worker", "--pool", "solo",
        "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-Q", f"{env.get('CELERY_QUEUE', 'porapp')},{env.get('CELERY_QUEUE', 'porapp')}-webhooks",
        "-n", f"bench-{os.getpid()}@%h",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while b"ready." not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
    return proc


def run_child(rounds: int) -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from decimal import Decimal

    from celery import current_app
    from django.core.management import call_command
    from django.db import transaction

    from audits import eligibility, supply, webhooks
    from audits.models import Heartbeat, SupplyReading
    from audits.reconciliation import reconcile_assets

    call_command("migrate", verbosity=0)
    asset, deployment, admin = seed()
    receiver = Receiver()
    webhooks.create_endpoint(receiver.url, event_types=("eligibility.frozen",))

    def restore() -> None:
        """Healthy evidence, enough healthy runs, and an admin's approval: eligible again."""
        with transaction.atomic():
            supply.record_manual_supply(
                deployment, Decimal(HEALTHY), reference="bench restore", entered_by=admin
            )
        # The run that restore queued may be under way in the worker: ours wait for its lock.
        for _ in range(eligibility.policy_for(asset).healthy_runs_to_unfreeze):
            reconcile_assets([asset.pk])
        eligibility.approve_unfreeze(asset.pk, admin, "bench: healthy again")

    log = Path(tempfile.mkdtemp(prefix="porapp-bench-worker-")) / "worker.log"
    worker = start_worker({**os.environ, "LOG_LEVEL": "INFO"}, log)
    try:
        trips = []
        for _ in range(rounds):
            before = Heartbeat.objects.filter(component="celery-worker").first()
            seen = before.last_seen if before else None
            start = time.perf_counter()
            current_app.send_task("audits.tasks.worker_heartbeat")
            while True:
                beat = Heartbeat.objects.filter(component="celery-worker").first()
                if beat is not None and beat.last_seen != seen:
                    break
                time.sleep(0.002)
            trips.append(time.perf_counter() - start)

        latencies = []
        for _ in range(rounds + 1):  # the first round warms the worker up and is not counted
            restore()
            time.sleep(0.3)  # let the restore's queued run finish before the breach
            seen = len(receiver.arrivals)
            start = time.perf_counter()
            with transaction.atomic():
                supply.record_manual_supply(
                    deployment, Decimal(BREACHING), reference="bench breach", entered_by=admin
                )
            latencies.append(receiver.wait("eligibility.frozen", seen) - start)
        latencies = latencies[1:]
        assert SupplyReading.objects.filter(deployment=deployment).count() == 2 * (rounds + 1)
    finally:
        worker.terminate()
        worker.wait(timeout=20)

    def p90(values: list[float]) -> float:
        if len(values) < 2:
            return values[0]
        return statistics.quantiles(values, n=10, method="inclusive")[-1]

    med = statistics.median
    print(
        f"  breach stored -> frozen webhook received: median {med(latencies) * 1000:.0f} ms, "
        f"p90 {p90(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
        f"({len(latencies)} rounds)"
    )
    print(f"    rounds (ms): {', '.join(f'{t * 1000:.0f}' for t in latencies)}")
    print(
        f"  floor, bare Celery round trip (heartbeat task to its row): median "
        f"{med(trips) * 1000:.0f} ms, p90 {p90(trips) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.rounds)
        return
    print(f"Webhook latency benchmark: {args.rounds} rounds, {os.cpu_count()} cores")
    for name, broker in (("Redis", args.redis), ("filesystem", "filesystem://")):
        tmp = tempfile.mkdtemp(prefix="porapp-bench-")
        if args.sqlite:
            database = f"sqlite:///{tmp}/bench.sqlite3"
        else:
            drop = f"DROP DATABASE IF EXISTS {PG_NAME}"
            subprocess.run(["psql", PG_ADMIN, "-qc", drop], check=True)
            subprocess.run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {PG_NAME}"], check=True)
            database = PG_BENCH
        print(f"{name} broker, {'SQLite' if args.sqlite else 'PostgreSQL'}:", flush=True)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "porapp.settings",
            "DEBUG": "1",
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": database,
            "CELERY_BROKER_URL": broker,
            "CELERY_BROKER_DIR": f"{tmp}/broker",
            "CELERY_QUEUE": f"porapp-bench-{os.getpid()}",
            "PORAPP_VAR_DIR": tmp,
            "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "1",
        }
        cmd = [sys.executable, __file__, "--child", "--rounds", str(args.rounds)]
        subprocess.run(cmd, check=True, env=env)


if __name__ == "__main__":
    main()
