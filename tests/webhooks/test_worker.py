"""End to end through a real broker and a real Celery worker process."""

from __future__ import annotations

import pytest
from django.db import transaction
from django_celery_beat.models import PeriodicTask

from audits import webhooks
from audits.models import WebhookDelivery
from audits.tasks import deliver_due_webhooks
from tests.celery_worker import wait_for

from .conftest import PAYLOAD, Reply


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_worker_delivers_on_commit_and_retries_a_failing_receiver(
    celery_worker_process, make_receiver
):
    ok, flaky = make_receiver(), make_receiver()
    flaky.script(Reply(500), Reply(200))
    ok_endpoint, ok_secret = webhooks.create_endpoint(ok.url)
    flaky_endpoint, flaky_secret = webhooks.create_endpoint(flaky.url)

    with transaction.atomic():
        ids = webhooks.publish("eligibility.unfrozen", "evt_e2e_1", PAYLOAD)
        # Nothing is sent before the transaction commits.
        assert ok.received == [] and flaky.received == []
    assert len(ids) == 2

    wait_for(lambda: ok.received)
    [body] = ok.verified(ok_secret)
    assert body["type"] == "eligibility.unfrozen" and body["data"] == PAYLOAD
    # 500 first, then the follow-up task sent with a countdown (5 s +-20%) gets a 200.
    delivered = wait_for(
        lambda: WebhookDelivery.objects.filter(endpoint=flaky_endpoint, status="delivered").first(),
        timeout=30,
    )
    assert delivered.attempts == 2
    assert [b["data"] for b in flaky.verified(flaky_secret)] == [PAYLOAD, PAYLOAD]
    assert flaky.received[1].at - flaky.received[0].at >= 3.9
    assert WebhookDelivery.objects.get(endpoint=ok_endpoint).status == "delivered"
    assert "audits.tasks.deliver_webhook" in celery_worker_process.log()


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_sweeper_queues_deliveries_whose_task_was_lost(celery_worker_process, receiver):
    _endpoint, secret = webhooks.create_endpoint(receiver.url)
    with transaction.atomic():
        [pk] = webhooks.publish("eligibility.frozen", "evt_lost", PAYLOAD)
        # The task message is lost (broker outage at commit): no on_commit callback will send it.
        transaction.get_connection().run_on_commit.clear()
    assert webhooks.due_deliveries() == [pk]
    deliver_due_webhooks.delay()
    wait_for(lambda: WebhookDelivery.objects.filter(pk=pk, status="delivered").exists())
    assert len(receiver.verified(secret)) == 1


@pytest.mark.django_db
def test_sweeper_schedule_exists_after_migrate():
    task = PeriodicTask.objects.get(name="deliver due webhooks")
    assert task.task == "audits.tasks.deliver_due_webhooks"
    assert task.interval.every == 60 and task.interval.period == "seconds"
