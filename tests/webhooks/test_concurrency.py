"""Workers running side by side: one claim per delivery, and no subscriber waits on another."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from audits import webhooks
from audits.models import WebhookAttempt, WebhookDelivery

from .conftest import Reply, publish


def _in_thread(fn, *args):
    result: dict = {}

    def run():
        try:
            result["value"] = fn(*args)
        except BaseException as exc:  # reported by the test
            result["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


@pytest.mark.django_db(transaction=True)
def test_two_workers_on_one_delivery_send_it_once(receiver):
    _endpoint, secret = webhooks.create_endpoint(receiver.url)
    receiver.script(Reply(200, delay=0.5))  # the first is still sending when the second tries
    [pk] = publish()
    threads = [_in_thread(webhooks.deliver, pk) for _ in range(2)]
    for thread, result in threads:
        thread.join(10)
        assert "error" not in result, result
    assert len(receiver.received) == 1
    receiver.verified(secret)
    assert WebhookAttempt.objects.filter(delivery_id=pk).count() == 1
    d = WebhookDelivery.objects.get(pk=pk)
    assert d.status == "delivered" and d.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_a_hanging_receiver_does_not_delay_another_endpoint(make_receiver, settings):
    settings.WEBHOOK_TIMEOUT = 2
    slow, fast = make_receiver(), make_receiver()
    slow.script(Reply(200, delay=30))
    slow_endpoint, _ = webhooks.create_endpoint(slow.url)
    fast_endpoint, fast_secret = webhooks.create_endpoint(fast.url)
    ids = publish()
    by_endpoint = dict(WebhookDelivery.objects.filter(pk__in=ids).values_list("endpoint_id", "pk"))

    started = time.monotonic()
    slow_thread, slow_result = _in_thread(webhooks.deliver, by_endpoint[slow_endpoint.pk])
    time.sleep(0.2)  # the slow delivery is in flight
    webhooks.deliver(by_endpoint[fast_endpoint.pk])
    fast_done = time.monotonic() - started
    assert fast_done < 1.5
    assert WebhookDelivery.objects.get(pk=by_endpoint[fast_endpoint.pk]).status == "delivered"
    fast.verified(fast_secret)

    slow_thread.join(10)
    assert "error" not in slow_result, slow_result
    assert time.monotonic() - started < 5  # the timeout, not the receiver, ended it
    slow_delivery = WebhookDelivery.objects.get(pk=by_endpoint[slow_endpoint.pk])
    assert slow_delivery.status == "pending" and slow_delivery.attempts == 1
    [attempt] = slow_delivery.attempt_log.all()
    assert attempt.status_code is None and "2s" in attempt.error
