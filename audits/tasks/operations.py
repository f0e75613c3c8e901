"""Celery tasks: each loads, calls one service, saves. All are idempotent."""

from celery import shared_task

from audits import heartbeats


@shared_task(name="audits.tasks.worker_heartbeat", bind=True, acks_late=True, ignore_result=True)
def worker_heartbeat(self) -> None:
    """Prove the worker is alive and can write to the database."""
    heartbeats.beat("celery-worker", self.request.hostname or "")
