"""Celery tasks, one module per concept. Task names stay `audits.tasks.<name>`."""

from audits.tasks.attestations import issue_attestation
from audits.tasks.liabilities import build_liability_snapshot, sweep_liability_snapshots
from audits.tasks.operations import worker_heartbeat
from audits.tasks.reconciliation import reconcile_all_assets, reconcile_asset
from audits.tasks.statements import resume_stalled_statements, resume_statement
from audits.tasks.supply import read_all_supplies, read_supply_for_deployment
from audits.tasks.webhooks import deliver_due_webhooks, deliver_webhook

__all__ = [
    "build_liability_snapshot",
    "deliver_due_webhooks",
    "deliver_webhook",
    "issue_attestation",
    "read_all_supplies",
    "read_supply_for_deployment",
    "reconcile_all_assets",
    "reconcile_asset",
    "resume_stalled_statements",
    "resume_statement",
    "sweep_liability_snapshots",
    "worker_heartbeat",
]
