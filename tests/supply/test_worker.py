"""End to end through a real broker and a real Celery worker process, on real anvil chains."""

from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

from audits import supply
from audits.core import devchain
from audits.models import Chain, SupplyReading, TokenDeployment
from audits.tasks import read_all_supplies
from tests.celery_worker import wait_for

from .conftest import E18, HOLDER, settle


@pytest.mark.chain
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_fan_out_reads_every_deployment_and_retries_the_dead_one(
    celery_worker_process, asset, chain_row_a, chain_row_b, chain_a, deploy, dead_url
):
    up = deploy(asset, chain_row_a)
    down = deploy(asset, chain_row_b, decimals=6)
    devchain.mint(chain_a.url, up.address, HOLDER, 5 * E18)
    settle(chain_a.url)
    Chain.objects.filter(pk=chain_row_b.pk).update(rpc_urls=dead_url)

    read_all_supplies.delay()

    ok = wait_for(lambda: SupplyReading.objects.filter(deployment=up, status="ok").first())
    assert ok.circulating == 5 and ok.block_number == devchain.head(chain_a.url) - 2
    assert ok.task_id  # written by the worker's task
    # Retried by the worker with backoff: the same task's failed row counts the attempts.
    failed = wait_for(
        lambda: SupplyReading.objects.filter(deployment=down, attempts__gte=2).first(),
        timeout=30,
    )
    assert failed.status == "failed" and failed.total_supply_raw is None
    # The retrying task owns its deployment: the next schedule run queues no second read of
    # it, while the finished read has released its claim.
    assert supply.claim_for_reading([down.pk]) == []
    wait_for(lambda: TokenDeployment.objects.get(pk=up.pk).supply_read_claimed_until is None)
    assert not SupplyReading.objects.filter(deployment=down, status="ok").exists()
    log = celery_worker_process.log()
    assert "audits.tasks.read_supply_for_deployment" in log and "Retry in" in log


@pytest.mark.django_db
def test_supply_schedule_exists_after_migrate():
    task = PeriodicTask.objects.get(name="read on-chain supply")
    assert task.task == "audits.tasks.read_all_supplies"
    assert task.interval.every == 60 and task.interval.period == "seconds"
