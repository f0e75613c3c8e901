"""Celery tasks, one module per concept. Task names stay `audits.tasks.<name>`."""

from audits.tasks.operations import worker_heartbeat
from audits.tasks.supply import read_all_supplies, read_supply_for_deployment

__all__ = ["read_all_supplies", "read_supply_for_deployment", "worker_heartbeat"]
