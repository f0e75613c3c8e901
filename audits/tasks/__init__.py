"""Celery tasks, one module per concept. Task names stay `audits.tasks.<name>`."""

from audits.tasks.operations import worker_heartbeat

__all__ = ["worker_heartbeat"]
