"""What starts a reconciliation run outside the schedule: new evidence, after it commits.

Runs are coalesced per asset: the first trigger marks the asset's eligibility row queued (a
conditional UPDATE) and sends one task; later triggers find it marked and send nothing until
the run starts and clears the mark. So a burst of readings gives one run, and evidence that
arrives while a run is going triggers the next one. A lost task leaves the mark set; the
every-minute schedule reconciles every asset and clears all marks, so nothing stays stuck.
"""

from __future__ import annotations

from collections.abc import Iterable

from celery import current_app
from django.db import transaction
from django.utils import timezone

from audits.models import Asset, Eligibility

RECONCILE_TASK = "audits.tasks.reconcile_asset"


def ensure_eligibility_rows(asset_ids: Iterable[int]) -> None:
    """Every asset has its eligibility row (frozen until first approved); two queries."""
    ids = set(asset_ids)
    missing = ids - set(
        Eligibility.objects.filter(asset_id__in=ids).values_list("asset_id", flat=True)
    )
    # Only assets that exist: a queued run may outlive its asset's creation transaction.
    missing = set(Asset.objects.filter(pk__in=missing).values_list("pk", flat=True))
    if missing:
        now = timezone.now()
        Eligibility.objects.bulk_create(
            [Eligibility(asset_id=i, since=now) for i in sorted(missing)], ignore_conflicts=True
        )


def request_runs(asset_ids: Iterable[int]) -> None:
    """Queue a reconciliation of each asset once the current transaction commits."""
    ids = sorted(set(asset_ids))
    if ids:
        transaction.on_commit(lambda: _queue(ids))


def _queue(asset_ids: list[int]) -> None:
    ensure_eligibility_rows(asset_ids)
    now = timezone.now()
    for asset_id in asset_ids:
        claimed = Eligibility.objects.filter(asset_id=asset_id, run_queued_at__isnull=True).update(
            run_queued_at=now
        )
        if claimed:
            current_app.send_task(RECONCILE_TASK, args=[asset_id])
