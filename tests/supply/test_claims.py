"""A deployment is read by one task at a time: claimed by a conditional UPDATE, then released."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audits import supply
from audits.models import Chain, SupplyReading, TokenDeployment
from audits.tasks import read_all_supplies, read_supply_for_deployment
from tests.celery_worker import wait_for

from .conftest import settle


@pytest.fixture
def two(asset, chain_row_a, deploy):
    return deploy(asset, chain_row_a), deploy(asset, chain_row_a)


def claimed_until(dep) -> object:
    return TokenDeployment.objects.get(pk=dep.pk).supply_read_claimed_until


@pytest.mark.chain
@pytest.mark.django_db
def test_a_claim_is_won_once_until_released(two):
    first, second = two
    assert supply.claim_for_reading([first.pk, second.pk]) == [first.pk, second.pk]
    assert supply.claim_for_reading([first.pk, second.pk]) == []
    supply.release_claim(first.pk)
    assert supply.claim_for_reading([first.pk, second.pk]) == [first.pk]


@pytest.mark.chain
@pytest.mark.django_db
def test_an_abandoned_claim_expires_with_its_lease(two):
    first, _ = two
    now = timezone.now()
    assert supply.claim_for_reading([first.pk], now=now) == [first.pk]
    later = now + supply.READ_CLAIM_LEASE - timedelta(seconds=1)
    assert supply.claim_for_reading([first.pk], now=later) == []
    expired = now + supply.READ_CLAIM_LEASE
    assert supply.claim_for_reading([first.pk], now=expired) == [first.pk]


@pytest.mark.chain
@pytest.mark.django_db
def test_a_successful_read_releases_its_claim(two, chain_a):
    first, _ = two
    settle(chain_a.url)
    supply.claim_for_reading([first.pk])
    read_supply_for_deployment.apply(args=[first.pk])
    assert SupplyReading.objects.get(deployment=first).status == "ok"
    assert claimed_until(first) is None


@pytest.mark.chain
@pytest.mark.django_db
def test_the_claim_is_released_after_the_last_retry(asset, chain_row_b, deploy, dead_url):
    dep = deploy(asset, chain_row_b, decimals=6)
    Chain.objects.filter(pk=chain_row_b.pk).update(rpc_urls=dead_url)
    supply.claim_for_reading([dep.pk])

    # Run eagerly, Celery retries inline: every attempt fails, then the task gives up.
    result = read_supply_for_deployment.apply(args=[dep.pk], throw=False)

    assert result.state == "FAILURE"
    failed = SupplyReading.objects.get(deployment=dep)
    assert failed.status == "failed"
    assert failed.attempts == read_supply_for_deployment.max_retries + 1
    assert claimed_until(dep) is None


def test_the_claim_lease_outlasts_a_killed_run_and_its_retry_backoff():
    """Issue #9 point 12: a slow node must never let a second read of a deployment start."""
    task = read_supply_for_deployment
    assert task.soft_time_limit == supply.READ_SOFT_TIME_LIMIT
    assert task.time_limit == supply.READ_TIME_LIMIT
    assert supply.READ_RPC_BUDGET < task.soft_time_limit < task.time_limit
    # Celery's exponential backoff: retry n waits at most min(2**n, retry_backoff_max) s.
    longest_backoff = max(min(2**n, task.retry_backoff_max) for n in range(task.max_retries))
    assert supply.READ_CLAIM_LEASE.total_seconds() > task.time_limit + longest_backoff
    fan_out = read_all_supplies
    assert fan_out.soft_time_limit < fan_out.time_limit


@pytest.mark.chain
@pytest.mark.django_db(transaction=True)
def test_every_run_renews_the_claim_when_it_starts(asset, chain_row_a, deploy, silent_url):
    dep = deploy(asset, chain_row_a)
    Chain.objects.filter(pk=chain_row_a.pk).update(rpc_urls=silent_url, rpc_timeout=2)
    start = timezone.now()
    TokenDeployment.objects.filter(pk=dep.pk).update(supply_read_claimed_until=start)

    def last_run() -> None:
        try:
            read_supply_for_deployment.apply(
                args=[dep.pk], retries=read_supply_for_deployment.max_retries, throw=False
            )
        finally:
            connection.close()

    run = threading.Thread(target=last_run)
    run.start()
    try:
        # While the run waits on the hung node, it owns the deployment for a fresh lease.
        renewed = wait_for(
            lambda: (claimed_until(dep) or start) >= start + supply.READ_CLAIM_LEASE, timeout=1.5
        )
        assert renewed
    finally:
        run.join()
    assert claimed_until(dep) is None  # the last attempt gave it back
