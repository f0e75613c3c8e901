"""Publishing and delivering to a real loopback receiver that verifies every signature."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from audits import webhooks
from audits.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

from .conftest import PAYLOAD, Reply, publish


def _delivery(pk: int) -> WebhookDelivery:
    return WebhookDelivery.objects.get(pk=pk)


def _make_due(pk: int) -> None:
    """Stand in for the clock moving on to the next attempt."""
    WebhookDelivery.objects.filter(pk=pk).update(next_attempt_at=timezone.now())


@pytest.fixture
def endpoint(receiver):
    endpoint, secret = webhooks.create_endpoint(receiver.url, description="margin engine")
    endpoint.plain_secret = secret
    return endpoint


@pytest.mark.django_db
def test_secret_is_standard_webhooks_format_and_hidden_from_repr(receiver):
    endpoint, secret = webhooks.create_endpoint(receiver.url)
    assert secret.startswith("whsec_")
    assert len(webhooks.base64.b64decode(secret[len("whsec_") :])) == 24
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == secret
    for shown in (str(endpoint), repr(endpoint)):
        assert secret not in shown and "src=porapp" not in shown
        assert f"127.0.0.1:{receiver.port}" in shown
    _, other = webhooks.create_endpoint(receiver.url)
    assert other != secret


@pytest.mark.django_db
def test_publish_one_delivery_per_subscribed_endpoint_and_never_twice(receiver):
    all_events, _ = webhooks.create_endpoint(receiver.url)
    frozen_only, _ = webhooks.create_endpoint(receiver.url, event_types=["eligibility.frozen"])
    _haircut_only, _ = webhooks.create_endpoint(
        receiver.url, event_types=["eligibility.haircut_changed"]
    )
    inactive, _ = webhooks.create_endpoint(receiver.url)
    WebhookEndpoint.objects.filter(pk=inactive.pk).update(active=False)

    ids = publish("eligibility.frozen", "msg_a")
    assert sorted(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == [
        all_events.pk,
        frozen_only.pk,
    ]
    assert sorted(ids) == sorted(WebhookDelivery.objects.values_list("pk", flat=True))
    # The same event published again (a retried transaction) makes no new delivery.
    assert sorted(publish("eligibility.frozen", "msg_a")) == sorted(ids)
    assert WebhookDelivery.objects.count() == 2
    assert len(publish("eligibility.haircut_changed", "msg_b")) == 2
    d = WebhookDelivery.objects.filter(msg_id="msg_a").first()
    body = json.loads(d.body)
    assert body["type"] == "eligibility.frozen" and body["data"] == PAYLOAD
    assert body["timestamp"].endswith("Z")
    # Serialized once, compact and sorted: the same bytes for every endpoint and every retry.
    assert d.body == json.dumps(body, separators=(",", ":"), sort_keys=True)
    assert len(set(WebhookDelivery.objects.filter(msg_id="msg_a").values_list("body"))) == 1


@pytest.mark.django_db
def test_publish_refuses_unknown_event_type(endpoint):
    with pytest.raises(ValueError):
        publish("eligibility.exploded", "msg_x")
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_delivered_request_verifies_as_standard_webhook(receiver, endpoint):
    [pk] = publish()
    assert webhooks.deliver(pk) is None
    assert len(receiver.received) == 1
    request = receiver.received[0]
    [parsed] = receiver.verified(endpoint.plain_secret)
    assert parsed == json.loads(_delivery(pk).body)
    assert request.body == _delivery(pk).body.encode()
    assert request.headers["webhook-id"] == "msg_1"
    assert abs(int(request.headers["webhook-timestamp"]) - timezone.now().timestamp()) < 5
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Host"] == f"127.0.0.1:{receiver.port}"
    assert request.path == "/hooks/margin?src=porapp"
    d = _delivery(pk)
    assert d.status == "delivered" and d.attempts == 1 and d.last_status_code == 200
    assert d.delivered_at is not None and d.claimed_until is None
    [attempt] = WebhookAttempt.objects.filter(delivery=d)
    assert attempt.status_code == 200 and attempt.response_excerpt == "ok"
    assert attempt.next_retry_at is None and attempt.error == ""
    # A wrong secret does not verify: the receiver would refuse it.
    with pytest.raises(Exception, match="signature"):
        receiver.verified(webhooks.new_secret())
    # Delivered is final: another run sends nothing.
    assert webhooks.deliver(pk) is None
    assert len(receiver.received) == 1


@pytest.mark.django_db
def test_host_header_names_the_url_host(receiver):
    _endpoint, secret = webhooks.create_endpoint(f"http://localhost:{receiver.port}/h")
    [pk] = publish()
    webhooks.deliver(pk)
    assert receiver.received[0].headers["Host"] == f"localhost:{receiver.port}"
    receiver.verified(secret)


@pytest.mark.django_db
def test_500_then_200_retries_on_the_schedule_with_the_same_bytes(receiver, endpoint):
    receiver.script(Reply(500, body=b"boom\x1b[31m\n"), Reply(200))
    [pk] = publish()
    before = timezone.now()
    next_at = webhooks.deliver(pk)
    d = _delivery(pk)
    assert d.status == "pending" and d.attempts == 1 and d.last_status_code == 500
    assert d.claimed_until is None and d.next_attempt_at == next_at
    # 5 s +-20%
    assert before + timedelta(seconds=4) <= next_at <= timezone.now() + timedelta(seconds=6)
    [attempt] = d.attempt_log.all()
    assert attempt.status_code == 500 and attempt.next_retry_at == next_at
    assert attempt.response_excerpt == "boom\\x1b[31m\\n"  # control characters escaped
    assert attempt.latency_ms >= 0
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).failing_since is not None

    # Not due yet: nothing is sent.
    assert webhooks.deliver(pk) is None
    assert len(receiver.received) == 1
    assert webhooks.due_deliveries() == []
    assert webhooks.due_deliveries(now=next_at) == [pk]

    _make_due(pk)
    assert webhooks.deliver(pk) is None
    d = _delivery(pk)
    assert d.status == "delivered" and d.attempts == 2
    assert [a.status_code for a in d.attempt_log.all()] == [500, 200]
    first, second = receiver.received
    assert first.body == second.body and first.headers["webhook-id"] == second.headers["webhook-id"]
    assert len(receiver.verified(endpoint.plain_secret)) == 2
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).failing_since is None


def test_retry_delays_follow_the_schedule_within_jitter():
    expected = [5, 300, 1800, 7200, 18000, 36000, 36000]
    for attempt_no, base in enumerate(expected, start=1):
        delays = [webhooks.retry_delay(attempt_no).total_seconds() for _ in range(200)]
        assert all(base * 0.8 <= d <= base * 1.2 for d in delays), attempt_no
        assert len(set(delays)) > 1  # jittered
    assert webhooks.retry_delay(8) is None
    assert sum(expected) / 3600 == pytest.approx(27.6, abs=0.1)  # about a day


@pytest.mark.django_db
def test_after_the_last_attempt_the_delivery_fails(receiver, endpoint):
    receiver.script(Reply(503))
    [pk] = publish()
    WebhookDelivery.objects.filter(pk=pk).update(attempts=webhooks.MAX_ATTEMPTS - 1)
    assert webhooks.deliver(pk) is None
    d = _delivery(pk)
    assert d.status == "failed" and d.attempts == webhooks.MAX_ATTEMPTS
    assert webhooks.due_deliveries(now=timezone.now() + timedelta(days=30)) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120), ("999999999", 24 * 3600), ("0", 1), ("soon", None)],
)
def test_retry_after_is_honoured_and_capped(receiver, endpoint, header, seconds):
    receiver.script(Reply(503, headers={"Retry-After": header}))
    [pk] = publish()
    start = timezone.now()
    next_at = webhooks.deliver(pk)
    delay = (next_at - start).total_seconds()
    if seconds is None:  # unreadable: the schedule
        assert 4 <= delay <= 7
    else:
        assert seconds - 1 <= delay <= seconds + 2


@pytest.mark.django_db
def test_retry_after_as_http_date(receiver, endpoint):
    when = timezone.now() + timedelta(minutes=10)
    receiver.script(Reply(429, headers={"Retry-After": format_datetime(when, usegmt=True)}))
    [pk] = publish()
    next_at = webhooks.deliver(pk)
    assert abs((next_at - when).total_seconds()) < 3


@pytest.mark.django_db
def test_410_disables_the_endpoint_and_fails_its_pending_deliveries(receiver, endpoint):
    receiver.script(Reply(410))
    [first] = publish(msg_id="msg_1")
    [second] = publish(msg_id="msg_2")
    assert webhooks.deliver(first) is None
    ep = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert not ep.active and ep.disabled_at is not None and "410" in ep.disabled_reason
    assert _delivery(first).status == "failed" and _delivery(second).status == "failed"
    assert webhooks.deliver(second) is None
    assert len(receiver.received) == 1
    # A disabled endpoint gets no new deliveries.
    assert publish(msg_id="msg_3") == []


@pytest.mark.django_db
def test_redirects_are_not_followed(receiver, endpoint):
    receiver.script(Reply(302, headers={"Location": f"http://127.0.0.1:{receiver.port}/other"}))
    [pk] = publish()
    assert webhooks.deliver(pk) is not None
    assert [r.path for r in receiver.received] == ["/hooks/margin?src=porapp"]
    d = _delivery(pk)
    assert d.status == "pending" and d.last_status_code == 302


@pytest.mark.django_db
def test_connection_refused_is_recorded_and_retried(receiver):
    _endpoint, _ = webhooks.create_endpoint(f"http://127.0.0.1:{receiver.port}/")
    receiver.close()
    [pk] = publish()
    assert webhooks.deliver(pk) is not None
    [attempt] = WebhookAttempt.objects.filter(delivery_id=pk)
    assert attempt.status_code is None and "Refused" in attempt.error


@pytest.mark.django_db
def test_a_hanging_receiver_hits_the_timeout(receiver, endpoint, settings):
    settings.WEBHOOK_TIMEOUT = 1
    receiver.script(Reply(200, delay=10))
    [pk] = publish()
    next_at = webhooks.deliver(pk)
    assert next_at is not None
    [attempt] = WebhookAttempt.objects.filter(delivery_id=pk)
    assert attempt.status_code is None and "1s" in attempt.error
    assert 900 <= attempt.latency_ms < 3000
    assert _delivery(pk).status == "pending"


@pytest.mark.django_db
def test_endpoint_failing_too_long_is_disabled_and_admins_told(
    receiver, endpoint, settings, caplog
):
    settings.WEBHOOK_DISABLE_AFTER = timedelta(hours=1)
    settings.ADMINS = [("ops", "ops@example.com")]
    receiver.script(Reply(500))
    [first] = publish(msg_id="msg_1")
    [second] = publish(msg_id="msg_2")
    # Failing, but not for long yet: still enabled.
    webhooks.deliver(first)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).active
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        failing_since=timezone.now() - timedelta(hours=1, minutes=1)
    )
    _make_due(first)
    with caplog.at_level(logging.WARNING, logger="audits.webhooks"), django_capture_on_commit():
        assert webhooks.deliver(first) is None
    ep = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert not ep.active and ep.disabled_at and "failed since" in ep.disabled_reason
    assert _delivery(first).status == "failed" and _delivery(second).status == "failed"
    [message] = mail.outbox
    assert message.to == ["ops@example.com"] and "disabled" in message.subject
    assert f"127.0.0.1:{receiver.port}" in message.subject
    [record] = [r for r in caplog.records if r.getMessage() == "webhook endpoint disabled"]
    logged = str(record.__dict__)
    for text in (message.subject, message.body, logged):
        assert endpoint.plain_secret not in text and "src=porapp" not in text


def django_capture_on_commit():
    """Run on_commit callbacks of the test's transaction as they are registered."""
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=True)


@pytest.mark.django_db
def test_a_delivery_survives_a_dead_worker(receiver, endpoint):
    """Created, never sent (the worker died, or the broker lost the message): the sweeper finds
    it once its lease is gone, and it is delivered then."""
    [pk] = publish()
    assert webhooks.due_deliveries() == [pk]
    # A worker claimed it and died mid-send: held until its lease runs out.
    WebhookDelivery.objects.filter(pk=pk).update(
        claimed_until=timezone.now() + timedelta(minutes=1)
    )
    assert webhooks.due_deliveries() == []
    assert webhooks.deliver(pk) is None and receiver.received == []
    WebhookDelivery.objects.filter(pk=pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    assert webhooks.due_deliveries() == [pk]
    webhooks.deliver(pk)
    assert _delivery(pk).status == "delivered"


@pytest.mark.django_db
def test_redeliver_sends_again_with_a_fresh_schedule(receiver, endpoint):
    [pk] = publish()
    webhooks.deliver(pk)
    assert webhooks.redeliver(pk)
    d = _delivery(pk)
    assert d.status == "pending" and d.attempts == 0 and d.delivered_at is None
    webhooks.deliver(pk)
    assert _delivery(pk).status == "delivered" and len(receiver.received) == 2
    assert WebhookAttempt.objects.filter(delivery_id=pk).count() == 2
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    assert not webhooks.redeliver(pk)


@pytest.mark.django_db
def test_a_delivery_to_an_endpoint_deactivated_since_is_failed_unsent(receiver, endpoint):
    [pk] = publish()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    assert webhooks.deliver(pk) is None
    assert _delivery(pk).status == "failed" and receiver.received == []


@pytest.mark.django_db(transaction=True)
def test_publish_outside_a_transaction_is_refused(receiver):
    webhooks.create_endpoint(receiver.url)
    with pytest.raises(RuntimeError, match="transaction"):
        webhooks.publish("eligibility.frozen", "msg_1", PAYLOAD)
    with transaction.atomic():
        assert len(webhooks.publish("eligibility.frozen", "msg_1", PAYLOAD)) == 1
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db
def test_https_checks_the_certificate_against_the_url_host(tls_receiver):
    """Connected to the checked address, yet SNI and the certificate check use the URL's host."""
    good, secret = webhooks.create_endpoint(f"https://localhost:{tls_receiver.port}/hook")
    [pk] = publish()
    assert webhooks.deliver(pk) is None
    assert _delivery(pk).status == "delivered"
    receiver_headers = tls_receiver.received[0].headers
    assert receiver_headers["Host"] == f"localhost:{tls_receiver.port}"
    assert tls_receiver.sni == ["localhost"]
    tls_receiver.verified(secret)

    # The same server by address: its certificate does not name 127.0.0.1, so nothing is sent.
    WebhookEndpoint.objects.filter(pk=good.pk).update(active=False)
    webhooks.create_endpoint(f"https://127.0.0.1:{tls_receiver.port}/hook")
    [pk] = publish(msg_id="msg_2")
    assert webhooks.deliver(pk) is not None
    [attempt] = WebhookAttempt.objects.filter(delivery_id=pk)
    assert attempt.status_code is None and "TLS" in attempt.error
    assert len(tls_receiver.received) == 1


@pytest.mark.django_db
def test_a_2xx_whose_body_stalls_still_counts_as_delivered(receiver, endpoint, settings):
    settings.WEBHOOK_TIMEOUT = 1
    # Announces 100 bytes of body, sends 2: the status line is the answer.
    receiver.script(Reply(200, headers={"Content-Length": "100"}, body=b"ok", hold=10))
    [pk] = publish()
    assert webhooks.deliver(pk) is None
    assert _delivery(pk).status == "delivered"
    [attempt] = WebhookAttempt.objects.filter(delivery_id=pk)
    assert attempt.status_code == 200 and "body not read" in attempt.error
