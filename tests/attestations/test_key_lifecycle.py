"""Retiring and revoking signing keys: windows only shrink, retirement never invalidates
honest history, revocation does from the time given, and the admin asks before doing either."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ImproperlyConfigured

from audits import attestation_keys, attestations
from audits.core import attestation as core
from audits.models import AttestationKey

from .conftest import NOW, reconcile

HOUR = timedelta(hours=1)


@pytest.fixture
def signed(world, key_file):
    """Two attestations by the configured key, at NOW and NOW + 1 h."""
    world.backed()
    reconcile(world)
    first = attestations.issue("changed", NOW)
    second = attestations.issue("heartbeat", NOW + HOUR)
    return first, second


def verdict(attestation) -> str:
    try:
        core.verify(json.loads(attestation.envelope), attestation_keys.jwks())
    except core.AttestationInvalid as exc:
        return exc.reason
    return "valid"


def test_retiring_keeps_everything_signed_valid_and_stops_signing(signed, admin_user):
    first, second = signed
    key = attestation_keys.retire(first.key_id, admin_user, "rotated to a new HSM", NOW + 2 * HOUR)
    assert key.not_after == NOW + 2 * HOUR and key.retired_by == admin_user
    assert [verdict(first), verdict(second)] == ["valid", "valid"]
    (entry,) = attestation_keys.jwks()["keys"]
    assert entry["exp"] == int((NOW + 2 * HOUR).timestamp())
    with pytest.raises(ImproperlyConfigured, match="not valid at this time"):
        attestations.issue("heartbeat", NOW + 3 * HOUR)


def test_retiring_before_an_attestation_the_key_signed_is_refused(signed, admin_user):
    first, _ = signed
    with pytest.raises(attestation_keys.KeyChangeRefused, match="signed 1 attestation"):
        attestation_keys.retire(first.key_id, admin_user, "oops", NOW + HOUR)
    assert AttestationKey.objects.get().not_after is None


def test_a_window_only_shrinks(signed, admin_user):
    first, _ = signed
    attestation_keys.retire(first.key_id, admin_user, "rotation", NOW + 2 * HOUR)
    with pytest.raises(attestation_keys.KeyChangeRefused, match="only shrinks"):
        attestation_keys.retire(first.key_id, admin_user, "later", NOW + 5 * HOUR)
    attestation_keys.revoke(first.key_id, admin_user, "leaked", NOW + HOUR / 2)
    with pytest.raises(attestation_keys.KeyChangeRefused, match="only move earlier"):
        attestation_keys.revoke(first.key_id, admin_user, "later", NOW + HOUR)
    with pytest.raises(attestation_keys.KeyChangeRefused, match="already revoked"):
        attestation_keys.retire(first.key_id, admin_user, "after revoking", NOW + HOUR / 4)
    assert AttestationKey.objects.get().revoked_at == NOW + HOUR / 2


def test_revoking_invalidates_what_was_signed_from_then_on(signed, admin_user):
    first, second = signed
    key, invalidated = attestation_keys.revoke(
        first.key_id, admin_user, "HSM backup tape lost", NOW + HOUR / 2
    )
    assert invalidated == 1 and key.revoke_reason == "HSM backup tape lost"
    assert verdict(first) == "valid"
    assert verdict(second) == "signing key had expired or was revoked when issued"


def test_a_reason_is_required(signed, admin_user):
    first, _ = signed
    with pytest.raises(attestation_keys.KeyChangeRefused, match="Say why"):
        attestation_keys.revoke(first.key_id, admin_user, "   ")


def _post(client, action: str, key: AttestationKey, **fields):
    return client.post(
        "/admin/audits/attestationkey/",
        {"action": action, "_selected_action": [key.pk], **fields},
        follow=True,
    )


def test_admin_revoke_asks_for_a_reason_then_revokes(client, admin_user, signed):
    client.force_login(admin_user)
    key = AttestationKey.objects.get()
    page = _post(client, "revoke_selected", key)
    assert b"may have leaked" in page.content and key.kid.encode() in page.content
    refused = _post(client, "revoke_selected", key, apply="1", reason=" ")
    assert b"errorlist" in refused.content and b"This field is required" in refused.content
    assert AttestationKey.objects.get().revoked_at is None
    done = _post(client, "revoke_selected", key, apply="1", reason="leaked",
                 when=(NOW + HOUR / 2).strftime("%Y-%m-%d %H:%M:%S"))  # fmt: skip
    text = done.content.decode()
    assert "1 attestation(s) it signed from then on no longer verify" in text
    # The key revoked is the one configured to sign: the admin is told issuance stops.
    assert "no attestation is issued until a valid key is put first" in text
    key.refresh_from_db()
    assert key.revoked_at == NOW + HOUR / 2 and key.revoked_by == admin_user


def test_admin_retire_refusal_is_shown(client, admin_user, signed):
    client.force_login(admin_user)
    key = AttestationKey.objects.get()
    page = _post(client, "retire_selected", key, apply="1", reason="rotation",
                 when=NOW.strftime("%Y-%m-%d %H:%M:%S"))  # fmt: skip
    assert "would make them fail verification" in page.content.decode()
    assert AttestationKey.objects.get().not_after is None


def test_staff_without_the_change_permission_cannot_retire_or_revoke(
    client, django_user_model, signed
):
    staff = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_attestationkey"))
    client.force_login(staff)
    listing = client.get("/admin/audits/attestationkey/")
    assert listing.status_code == 200 and b"revoke_selected" not in listing.content
    key = AttestationKey.objects.get()
    _post(client, "revoke_selected", key, apply="1", reason="x")
    assert AttestationKey.objects.get().revoked_at is None
