"""Default periodic tasks. Created once if missing; admins edit them in django-celery-beat."""

from __future__ import annotations

from django_celery_beat.models import IntervalSchedule, PeriodicTask

# (name, task, every seconds). Later capabilities add their schedules here.
DEFAULT_SCHEDULES: list[tuple[str, str, int]] = [
    ("worker heartbeat", "audits.tasks.worker_heartbeat", 60),
    ("read on-chain supply", "audits.tasks.read_all_supplies", 60),
    ("resume stalled statements", "audits.tasks.resume_stalled_statements", 300),
    ("reconcile every asset", "audits.tasks.reconcile_all_assets", 60),
    ("deliver due webhooks", "audits.tasks.deliver_due_webhooks", 60),
    ("issue attestation if due", "audits.tasks.issue_attestation", 60),
    ("sweep liability snapshots", "audits.tasks.sweep_liability_snapshots", 60),
]


def ensure_default_schedules() -> int:
    """Create the default periodic tasks that do not exist yet; never overwrite an admin's edit."""
    created = 0
    for name, task, seconds in DEFAULT_SCHEDULES:
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=seconds, period=IntervalSchedule.SECONDS
        )
        PeriodicTask.objects.create(name=name, task=task, interval=interval)
        created += 1
    return created
