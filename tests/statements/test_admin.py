"""Admins see every statement, upload on a custodian's behalf, download raw bytes, reject."""

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.files.uploadedfile import SimpleUploadedFile

from audits import statements
from audits.models import ApiToken, CustodianKey, CustodianStatement

pytestmark = pytest.mark.django_db

CSV = b"isin,quantity,account,balance_type\nUS0378331005,1000,ACC-1,settled\n"


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def submit(custodian, user, raw=CSV):
    return statements.submit_statement(
        custodian=custodian, user=user, raw=raw, fmt="csv",
        as_of=__import__("datetime").datetime(2026, 11, 20, 21, tzinfo=__import__("datetime").UTC),
    ).statement  # fmt: skip


def test_changelist_filters_by_custodian_and_status(admin_client, owner, outsider, custodian_a):
    a = submit(custodian_a, owner)
    b = submit(outsider.custodian_link.custodian, outsider, CSV + b"\n")
    page = admin_client.get(
        f"/admin/audits/custodianstatement/?custodian__id__exact={custodian_a.pk}&status__exact=accepted"
    ).content.decode()
    assert f"/admin/audits/custodianstatement/{a.pk}/change/" in page
    assert f"/admin/audits/custodianstatement/{b.pk}/change/" not in page


def test_detail_shows_holdings_and_raw_download(admin_client, owner, custodian_a):
    statement = submit(custodian_a, owner)
    page = admin_client.get(f"/admin/audits/custodianstatement/{statement.pk}/change/").content
    assert b"AAPLx" in page and statement.raw.sha256.encode() in page
    raw = admin_client.get(f"/admin/audits/custodianstatement/{statement.pk}/raw/")
    assert raw.content == CSV


def test_admin_upload_is_labelled_admin_entered(admin_client, custodian_b):
    response = admin_client.post(
        "/admin/audits/custodianstatement/upload/",
        {"custodian": custodian_b.pk, "file": SimpleUploadedFile("s.csv", CSV), "format": "csv",
         "as_of": "2026-11-20T21:00:00Z"},
    )  # fmt: skip
    statement = CustodianStatement.objects.get()
    assert response.status_code == 302
    assert statement.source == "admin-entered"
    assert statement.get_source_display() == "entered by admin on the custodian's behalf"
    assert statement.custodian == custodian_b


def test_manual_reject_with_reason(admin_client, owner, custodian_a, admin_user):
    statement = submit(custodian_a, owner)
    response = admin_client.post(
        "/admin/audits/custodianstatement/",
        {"action": "reject_selected", "_selected_action": [statement.pk], "apply": "1",
         "reason": "Custodian reported a booking error"},
    )  # fmt: skip
    assert response.status_code == 302
    statement.refresh_from_db()
    assert statement.status == "rejected"
    assert statement.rejected_by == admin_user
    assert "booking error" in statement.rejection_report[-1]["message"]
    assert statement.lines.count() == 1  # evidence kept


def test_statements_cannot_be_edited_or_deleted(admin_client, owner, custodian_a):
    statement = submit(custodian_a, owner)
    url = f"/admin/audits/custodianstatement/{statement.pk}/delete/"
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert CustodianStatement.objects.filter(pk=statement.pk).exists()
    with pytest.raises(Exception, match="immutable"):
        statement.raw.save()
    with pytest.raises(Exception, match="never deleted"):
        statement.raw.delete()


def test_register_key_from_pem(admin_client, custodian_a):
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    response = admin_client.post(
        "/admin/audits/custodiankey/add/",
        {"custodian": custodian_a.pk, "label": "ops", "public_key_text": pem.decode()},
    )
    assert response.status_code == 302
    key = CustodianKey.objects.get()
    assert bytes(key.public_key) == private.public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw
    )


def test_register_bad_key_is_refused(admin_client, custodian_a):
    response = admin_client.post(
        "/admin/audits/custodiankey/add/",
        {"custodian": custodian_a.pk, "public_key_text": base64.b64encode(b"short").decode()},
    )
    assert response.status_code == 200
    assert not CustodianKey.objects.exists()


def test_admin_creates_token_shown_once(admin_client, owner):
    response = admin_client.post(
        "/admin/audits/apitoken/add/", {"user": owner.pk, "name": "ci"}, follow=True
    )
    page = response.content.decode()
    token = ApiToken.objects.get()
    assert "will not be shown again: por_" in page
    secret = page.split("will not be shown again: ")[1].split("<")[0].strip()
    from audits import tokens

    assert tokens.authenticate(secret) == owner
    assert (
        secret
        not in admin_client.get(f"/admin/audits/apitoken/{token.pk}/change/").content.decode()
    )
