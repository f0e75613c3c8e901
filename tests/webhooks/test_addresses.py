"""Only public http(s) receivers, checked when the endpoint is saved and at every attempt."""

from __future__ import annotations

import pytest

from audits import webhooks
from audits.models import WebhookAttempt, WebhookDelivery

from .conftest import publish

REFUSED = [
    "http://127.0.0.1/",
    "http://127.9.9.9:8080/x",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[2002:7f00:1::1]/",  # 6to4 around 127.0.0.1
    "http://[2002:a9fe:a9fe::1]/",  # 6to4 around 169.254.169.254
    "http://localhost/",
    "https://localhost:8443/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_non_public_addresses_are_refused(url, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(webhooks.UnsafeURL, match="non-public"):
        webhooks.check_url(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://[::1]/", "http://localhost:9/"])
def test_allowed_when_the_setting_says_so(url, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    assert webhooks.check_url(url).port in (80, 9)


def test_public_address_is_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    target = webhooks.check_url("https://93.184.216.34:8443/hook?x=1")
    assert target.https and target.address == "93.184.216.34" and target.port == 8443
    assert target.path == "/hook?x=1"
    assert webhooks.check_url("http://[2606:4700::1111]/").address == "2606:4700::1111"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://93.184.216.34/", "http"),
        ("file:///etc/passwd", "http"),
        ("javascript:alert(1)", "http"),
        ("http://user:pw@93.184.216.34/", "credentials"),
        ("http://user@93.184.216.34/", "credentials"),
        ("http:///nohost", "no host"),
        ("http://93.184.216.34:99999/", "valid"),
    ],
)
def test_malformed_urls_are_refused(url, reason, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    with pytest.raises(webhooks.UnsafeURL, match=reason):
        webhooks.check_url(url)


@pytest.mark.django_db
def test_create_endpoint_checks_the_url(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(webhooks.UnsafeURL):
        webhooks.create_endpoint("http://10.0.0.5/hook")


@pytest.mark.django_db
def test_checked_again_at_every_attempt(receiver, settings):
    """Saved while allowed, refused once the rule applies: nothing reaches the address."""
    _endpoint, _ = webhooks.create_endpoint(receiver.url)
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    [pk] = publish()
    assert webhooks.deliver(pk) is not None
    assert receiver.received == []
    [attempt] = WebhookAttempt.objects.filter(delivery_id=pk)
    assert attempt.status_code is None and attempt.error.startswith("refused")
    assert WebhookDelivery.objects.get(pk=pk).status == "pending"
