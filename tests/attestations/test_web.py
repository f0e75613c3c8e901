"""The JWKS endpoint, the admin pages and the key generation command."""

from __future__ import annotations

import base64
import json
import stat
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.management import CommandError, call_command

from audits import attestation_keys, attestations
from audits.core import attestation as core
from audits.models import AttestationKey

from .conftest import NOW, public_key_of, reconcile


def test_jwks_lists_the_signing_key(client, db, key_file):
    attestation_keys.signing_key(NOW)
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=300"
    (entry,) = response.json()["keys"]
    public = public_key_of(key_file)
    x = base64.urlsafe_b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw))
    assert entry == {
        "kty": "OKP", "crv": "Ed25519", "x": x.rstrip(b"=").decode(), "kid": core.key_id(public),
        "use": "sig", "alg": "EdDSA", "nbf": int(NOW.timestamp()),
    }  # fmt: skip
    from joserfc.jwk import OKPKey

    assert OKPKey.import_key(entry).thumbprint() == entry["kid"]


def test_jwks_keeps_retired_keys_with_their_window(client, db, key_file, tmp_path, settings):
    old = attestation_keys.signing_key(NOW).record
    AttestationKey.objects.filter(pk=old.pk).update(not_after=NOW + timedelta(days=30))
    new_path = tmp_path / "new.pem"
    attestation_keys.write_key(new_path)
    settings.ATTESTATION_KEYS = [str(new_path), str(key_file)]
    new = attestation_keys.signing_key(NOW + timedelta(days=30)).record
    keys = {k["kid"]: k for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert keys[old.kid]["exp"] == int((NOW + timedelta(days=30)).timestamp())
    assert "exp" not in keys[new.kid]
    assert keys[new.kid]["nbf"] == int((NOW + timedelta(days=30)).timestamp())


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_admin_shows_attestations_read_only_with_downloads(admin_client, world, key_file):
    world.backed()
    reconcile(world)
    attestation = attestations.issue("changed", NOW)
    listing = admin_client.get("/admin/audits/attestation/").content.decode()
    assert attestation.payload_sha256 in listing and "changed" in listing
    assert "/admin/audits/attestation/add/" not in listing
    detail = admin_client.get(f"/admin/audits/attestation/{attestation.pk}/change/")
    page = detail.content.decode()
    assert detail.status_code == 200 and "TSTx" in page and "healthy" in page
    assert 'name="_save"' not in page
    envelope = admin_client.get(f"/admin/audits/attestation/{attestation.pk}/download/envelope/")
    assert envelope.content == attestation.envelope.encode()
    assert "attachment" in envelope["Content-Disposition"]
    payload = admin_client.get(f"/admin/audits/attestation/{attestation.pk}/download/payload/")
    assert payload.content == bytes(attestation.payload)
    assert json.loads(payload.content)["predicate"]["sequence"] == 1
    refused = admin_client.post(f"/admin/audits/attestation/{attestation.pk}/delete/")
    assert refused.status_code == 403


def test_admin_lists_keys_public_parts_only(admin_client, db, key_file):
    record = attestation_keys.signing_key(NOW).record
    page = admin_client.get("/admin/audits/attestationkey/").content.decode()
    assert record.kid in page and attestation_keys.public_x(record) in page
    secret_lines = key_file.read_text().splitlines()[1:-1]
    assert not any(line in page for line in secret_lines)


def test_admin_pages_need_an_admin(client, db, key_file):
    response = client.get("/admin/audits/attestation/1/download/envelope/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_keygen_writes_a_private_file_and_refuses_to_overwrite(tmp_path, capsys):
    path = tmp_path / "k.pem"
    call_command("attestation_keygen", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    out = capsys.readouterr().out
    assert f"key id (kid): {core.key_id(public_key_of(path))}" in out
    assert "ATTESTATION_KEY_FILES" in out
    assert "PRIVATE KEY" not in out
    before = path.read_bytes()
    with pytest.raises(CommandError, match="refusing to overwrite"):
        call_command("attestation_keygen", str(path))
    assert path.read_bytes() == before
