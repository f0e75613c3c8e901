"""Celery tasks for on-chain supply: a periodic fan-out and one idempotent read per deployment."""

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from audits import supply
from audits.core.evm import RpcUnavailable
from audits.models import TokenDeployment


@shared_task(
    name="audits.tasks.read_all_supplies",
    ignore_result=True,
    soft_time_limit=30,
    time_limit=60,
)
def read_all_supplies() -> int:
    """Queue one read per readable deployment, so a slow or dead chain blocks no other."""
    ids = supply.claim_for_reading(supply.deployments_to_read())
    for deployment_id in ids:
        read_supply_for_deployment.delay_on_commit(deployment_id)
    return len(ids)


@shared_task(
    name="audits.tasks.read_supply_for_deployment",
    bind=True,
    autoretry_for=(RpcUnavailable,),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
    acks_late=True,
    ignore_result=True,
    # The reader's own deadlines (supply.READ_RPC_BUDGET) end a run well before these;
    # they are the backstop. supply.READ_CLAIM_LEASE outlasts the hard limit.
    soft_time_limit=supply.READ_SOFT_TIME_LIMIT,
    time_limit=supply.READ_TIME_LIMIT,
)
def read_supply_for_deployment(self, deployment_id: int) -> None:
    """Read and store one deployment's supply; a re-run for the same block stores nothing new."""
    supply.renew_claim(deployment_id)
    try:
        supply.read_deployment(deployment_id, task_id=self.request.id)
    except TokenDeployment.DoesNotExist:
        supply.release_claim(deployment_id)
        return  # deleted since it was queued: nothing to read
    except RpcUnavailable:
        # Retrying keeps the claim; the last attempt gives it up for the next scheduled read.
        if self.request.retries >= self.max_retries:
            supply.release_claim(deployment_id)
        raise
    except SoftTimeLimitExceeded:
        # Out of time despite the RPC deadlines (a stuck database?): give the deployment back
        # to the schedule rather than retrying into the same wall.
        supply.release_claim(deployment_id)
        raise
    supply.release_claim(deployment_id)
