"""Concurrent runs of one asset's reconciliation, and a run killed half-way.

Runs of one asset are serialised by its locked eligibility row (PostgreSQL: a row lock;
SQLite: IMMEDIATE transactions take the database write lock), so racing runs over unchanged
evidence store one reconciliation and count the checks, and a run killed before commit leaves
nothing behind.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from celery import current_app
from django.db import connection, transaction

from audits import eligibility
from audits.models import (
    Eligibility,
    EligibilityEvent,
    EventCounter,
    ReconciledReading,
    ReconciledStatement,
    Reconciliation,
    SupplyReading,
    TokenDeployment,
)
from audits.reconciliation import reconcile_assets
from audits.triggers import RECONCILE_TASK, ensure_eligibility_rows
from tests.celery_worker import WorkerProcess, wait_for
from tests.threads import race

from .seed import manual_reading, seed_assets

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="several worker processes racing on row locks, and a killed connection holding "
    "one, need PostgreSQL (SQLite serialises writers on one file lock: see the thread test)",
)
RACE = 12


def _total_checks(asset_id: int) -> int:
    return sum(Reconciliation.objects.filter(asset_id=asset_id).values_list("checks", flat=True))


@pytest.fixture
def two_workers(django_db_blocker, tmp_path):
    with django_db_blocker.unblock():
        workers = [WorkerProcess(tmp_path / f"worker-{n}.log") for n in range(2)]
    yield workers
    for worker in workers:
        worker.stop()


@needs_postgres
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_store_one_reconciliation_per_input(two_workers):
    (asset,) = seed_assets(1, prefix="R")
    ensure_eligibility_rows([asset.pk])

    for _ in range(RACE):
        current_app.send_task(RECONCILE_TASK, args=[asset.pk])
    wait_for(lambda: _total_checks(asset.pk) >= RACE, timeout=60)
    stored = list(Reconciliation.objects.filter(asset=asset).values_list("checks", "digest"))
    assert len(stored) == 1, stored
    (only,) = Reconciliation.objects.filter(asset=asset)
    assert only.checks == RACE and only.status == "healthy"
    assert only.statement_links.count() == 2 and only.reading_links.count() == 2

    # New evidence: the next race makes exactly one more reconciliation, checked by every run.
    deployment = TokenDeployment.objects.filter(asset=asset).first()
    SupplyReading.objects.bulk_create([manual_reading(deployment, Decimal(600))])
    for _ in range(RACE):
        current_app.send_task(RECONCILE_TASK, args=[asset.pk])
    wait_for(lambda: _total_checks(asset.pk) >= 2 * RACE, timeout=60)
    first, second = Reconciliation.objects.filter(asset=asset).order_by("pk")
    assert (first.checks, second.checks) == (RACE, RACE)
    assert first.supply != second.supply
    assert Eligibility.objects.get(asset=asset).latest_id == second.pk
    # Both workers took part (otherwise this raced nothing).
    for worker in two_workers:
        assert "audits.tasks.reconcile_asset" in worker.log()


@pytest.mark.django_db(transaction=True)
def test_threads_racing_store_one_reconciliation():
    (asset,) = seed_assets(1, prefix="T")
    ensure_eligibility_rows([asset.pk])

    def reconcile_three_times() -> None:
        for _ in range(3):
            reconcile_assets([asset.pk])

    race(reconcile_three_times)
    (only,) = Reconciliation.objects.filter(asset=asset)
    assert only.checks == 6
    assert ReconciledStatement.objects.filter(reconciliation=only).count() == 2
    assert Eligibility.objects.get(asset=asset).healthy_streak == 6


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        # Activity statistics are cached for the transaction unless the snapshot is cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@needs_postgres
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_run_leaves_nothing_and_the_next_run_completes(
    django_db_blocker, tmp_path, admin_user
):
    (asset,) = seed_assets(1, prefix="K")
    for _ in range(3):
        reconcile_assets([asset.pk])
    eligibility.approve_unfreeze(asset.pk, admin_user, "three healthy runs")
    (healthy,) = Reconciliation.objects.filter(asset=asset)
    events = EligibilityEvent.objects.count()
    # A breaching figure: the next run stores a breach and freezes the asset.
    deployment = TokenDeployment.objects.filter(asset=asset).first()
    SupplyReading.objects.bulk_create([manual_reading(deployment, Decimal(5000))])

    with django_db_blocker.unblock():
        worker = WorkerProcess(tmp_path / "killed.log")
    try:
        with transaction.atomic():
            # Holding the event counter blocks the run at its last step (numbering the freeze
            # event), after it has inserted the reconciliation and its links and updated the
            # eligibility row, all in its own open transaction.
            assert list(EventCounter.objects.select_for_update())
            current_app.send_task(RECONCILE_TASK, args=[asset.pk])
            wait_for(_waiting_on_locks, timeout=30)
            worker.proc.kill()
            worker.proc.wait(timeout=10)
    finally:
        worker.stop()

    # The killed run never committed: no breach, no links, no state change, no event.
    (still,) = Reconciliation.objects.filter(asset=asset)
    assert still.pk == healthy.pk and still.status == "healthy"
    assert ReconciledStatement.objects.count() == 2 and ReconciledReading.objects.count() == 2
    row = Eligibility.objects.get(asset=asset)
    assert (row.state, row.latest_id) == ("eligible", healthy.pk)
    assert EligibilityEvent.objects.count() == events, list(
        EligibilityEvent.objects.values_list("seq", "asset_id", "event_type", "reason")
    )

    # Nothing is left locked: a new run on a new worker completes.
    with django_db_blocker.unblock():
        worker = WorkerProcess(tmp_path / "next.log")
    try:
        current_app.send_task(RECONCILE_TASK, args=[asset.pk])
        breach = wait_for(
            lambda: Reconciliation.objects.filter(asset=asset, status="breach").first(),
            timeout=60,
        )
    finally:
        worker.stop()
    assert breach.statement_links.count() == 2 and breach.reading_links.count() == 2
    row = Eligibility.objects.get(asset=asset)
    assert (row.state, row.latest_id) == ("frozen", breach.pk)
    assert EligibilityEvent.objects.count() == events + 1
