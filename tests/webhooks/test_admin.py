"""The webhook admin: the secret shown once, URL rules, re-enable and send again now."""

from __future__ import annotations

import pytest
from django.utils import timezone

from audits import webhooks
from audits.models import WebhookDelivery, WebhookEndpoint

from .conftest import publish


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.mark.django_db
def test_add_shows_the_secret_once_and_never_again(admin_client, admin_user, receiver):
    response = admin_client.post(
        "/admin/audits/webhookendpoint/add/",
        {"url": receiver.url, "description": "engine A", "event_types": ["eligibility.frozen"]},
        follow=True,
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["eligibility.frozen"] and endpoint.created_by == admin_user
    assert response.content.decode().count(endpoint.secret) == 1  # the message, once
    for url in (
        f"/admin/audits/webhookendpoint/{endpoint.pk}/change/",
        "/admin/audits/webhookendpoint/",
    ):
        page = admin_client.get(url).content.decode()
        assert endpoint.secret not in page
        assert endpoint.secret[len("whsec_") :] not in page


@pytest.mark.django_db
def test_add_refuses_private_address_when_not_allowed(admin_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    response = admin_client.post(
        "/admin/audits/webhookendpoint/add/", {"url": "http://169.254.169.254/", "description": ""}
    )
    assert response.status_code == 200
    assert "non-public address" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_editing_keeps_the_secret(admin_client, receiver):
    endpoint, secret = webhooks.create_endpoint(receiver.url)
    response = admin_client.post(
        f"/admin/audits/webhookendpoint/{endpoint.pk}/change/",
        {"url": receiver.url, "description": "renamed", "active": "on"},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.description == "renamed" and endpoint.secret == secret


@pytest.mark.django_db
def test_re_enable_action(admin_client, receiver):
    endpoint, _ = webhooks.create_endpoint(receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        active=False,
        disabled_at=timezone.now(),
        disabled_reason="410",
        failing_since=timezone.now(),
    )
    admin_client.post(
        "/admin/audits/webhookendpoint/",
        {"action": "re_enable", "_selected_action": [endpoint.pk]},
    )
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.disabled_at is None and endpoint.failing_since is None
    assert endpoint.disabled_reason == ""


@pytest.mark.django_db
def test_ticking_active_again_re_enables(admin_client, receiver):
    endpoint, _ = webhooks.create_endpoint(receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        active=False, disabled_at=timezone.now(), disabled_reason="410"
    )
    response = admin_client.post(
        f"/admin/audits/webhookendpoint/{endpoint.pk}/change/",
        {"url": receiver.url, "description": "", "active": "on"},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.disabled_at is None and endpoint.disabled_reason == ""


@pytest.mark.django_db
def test_delivery_page_and_send_again_now(admin_client, receiver):
    webhooks.create_endpoint(receiver.url)
    [pk] = publish()
    webhooks.deliver(pk)
    page = admin_client.get(f"/admin/audits/webhookdelivery/{pk}/change/").content.decode()
    assert "eligibility.frozen" in page and "200" in page  # the attempt, inline
    assert admin_client.get("/admin/audits/webhookdelivery/").status_code == 200
    admin_client.post(
        "/admin/audits/webhookdelivery/",
        {"action": "send_again_now", "_selected_action": [pk]},
    )
    d = WebhookDelivery.objects.get(pk=pk)
    assert d.status == "pending" and d.next_attempt_at <= timezone.now()
    webhooks.deliver(pk)
    assert len(receiver.received) == 2
