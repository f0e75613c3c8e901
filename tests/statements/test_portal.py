"""The custodian portal: upload form, own statements only, raw download, tokens shown once."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from audits.models import ApiToken, CustodianStatement

pytestmark = pytest.mark.django_db

CSV = b"isin,quantity,account,balance_type\nUS0378331005,1000,ACC-1,settled\n"


def post_upload(client, raw=CSV, **extra):
    data = {
        "file": SimpleUploadedFile("s.csv", raw),
        "format": "csv",
        "as_of": "2026-11-20T21:00:00Z",
    }
    data.update(extra)
    return client.post("/portal/", data)


def test_anonymous_is_sent_to_login(client):
    response = client.get("/portal/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/portal/")


def test_admin_is_told_to_use_the_admin(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/portal/")
    assert response.status_code == 403
    assert "admins use /admin/" in response.content.decode()


def test_upload_through_the_form(client, owner):
    client.force_login(owner)
    response = post_upload(client)
    statement = CustodianStatement.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/portal/statements/{statement.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "accepted" in page
    assert statement.raw.sha256 in page
    assert "AAPLx" in page
    listing = client.get("/portal/").content.decode()
    assert f'href="/portal/statements/{statement.pk}/"' in listing


def test_rejected_upload_shows_line_and_field(client, owner):
    client.force_login(owner)
    response = post_upload(
        client, raw=b"isin,quantity,account,balance_type\nUS0378331006,1,A,settled\n"
    )
    page = client.get(response["Location"]).content.decode()
    assert "rejected" in page
    assert "line 2" in page
    assert "<code>isin</code>" in page


def test_form_errors_are_shown_and_nothing_stored(client, owner):
    client.force_login(owner)
    response = client.post("/portal/", {"format": "csv"})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert not CustodianStatement.objects.exists()


def test_csrf_is_enforced(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert post_upload(client).status_code == 403
    assert not CustodianStatement.objects.exists()


def test_outsider_gets_404_for_owners_statement(client, owner, outsider):
    client.force_login(owner)
    post_upload(client)
    statement = CustodianStatement.objects.get()
    client.force_login(outsider)
    assert client.get(f"/portal/statements/{statement.pk}/").status_code == 404
    assert client.get(f"/portal/statements/{statement.pk}/raw").status_code == 404
    assert f"/portal/statements/{statement.pk}/" not in client.get("/portal/").content.decode()


def test_raw_download(client, owner):
    client.force_login(owner)
    post_upload(client)
    statement = CustodianStatement.objects.get()
    response = client.get(f"/portal/statements/{statement.pk}/raw")
    assert response.content == CSV
    assert response["X-Content-SHA256"] == statement.raw.sha256


def test_token_shown_once_and_revocable(client, owner, outsider):
    client.force_login(owner)
    page = client.post("/portal/tokens/", {"name": "nightly"}).content.decode()
    secret = re.search(r'id="new-token">(por_[^<]+)<', page).group(1)
    token = ApiToken.objects.get()
    assert secret not in client.get("/portal/tokens/").content.decode()
    assert token.prefix in client.get("/portal/tokens/").content.decode()
    # The outsider can neither see nor revoke it.
    client.force_login(outsider)
    assert token.prefix not in client.get("/portal/tokens/").content.decode()
    assert client.post(f"/portal/tokens/{token.pk}/revoke").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    client.force_login(owner)
    client.post(f"/portal/tokens/{token.pk}/revoke")
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_home_page_lists_assets(client, demo):
    page = client.get("/").content.decode()
    assert "AAPLx" in page and "US0378331005" in page
