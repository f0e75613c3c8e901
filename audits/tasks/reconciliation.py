"""Celery tasks for reconciliation: one asset after new evidence, every asset each minute."""

from celery import shared_task

from audits import reconciliation


# Idempotent (a re-run with the same evidence only records a check), so acks_late: a worker
# killed mid-run leaves the message to be redelivered, and its transaction rolled back.
@shared_task(
    name="audits.tasks.reconcile_asset",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
)
def reconcile_asset(asset_id: int) -> str | None:
    result = reconciliation.reconcile_asset(asset_id)
    return result.status if result else None


@shared_task(
    name="audits.tasks.reconcile_all_assets",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=240,
    time_limit=300,
)
def reconcile_all_assets() -> int:
    return len(reconciliation.reconcile_all())
