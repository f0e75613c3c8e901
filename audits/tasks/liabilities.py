"""Celery tasks for liability snapshots: build one, and sweep up interrupted builds."""

from celery import shared_task

from audits import liabilities
from audits.models import LiabilitySnapshot


# acks_late: a worker killed mid-build leaves the message to be redelivered, and a second run
# is harmless: only the attempt that claims the snapshot builds it, and a claim held by a live
# worker is not taken. No retries: a build that fails is `failed`, not a network hiccup.
@shared_task(name="audits.tasks.build_liability_snapshot", acks_late=True, ignore_result=True)
def build_liability_snapshot(snapshot_id: int) -> str | None:
    try:
        return liabilities.build(snapshot_id).status
    except LiabilitySnapshot.DoesNotExist:
        return None  # snapshots are never deleted; nothing to do if this one is gone


@shared_task(name="audits.tasks.sweep_liability_snapshots", ignore_result=True)
def sweep_liability_snapshots() -> int:
    """Queue interrupted builds again, or fail them after their attempts; returns how many."""
    swept = liabilities.sweep()
    return len(swept["requeued"]) + len(swept["failed"])
