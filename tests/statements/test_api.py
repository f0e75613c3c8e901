"""Statement uploads over the API: accepted, rejected per line and field, idempotent, isolated."""

from decimal import Decimal

import pytest

from audits.choices import StatementStatus
from audits.models import CustodianStatement, RawDocument, StatementLine
from tests.statements.conftest import SAMPLES, upload

pytestmark = pytest.mark.django_db

CSV = (
    b"isin,quantity,account,balance_type\n"
    b"US0378331005,1000,ACC-1,settled\n"
    b"US5949181045,250.5,ACC-1,settled\n"
    b"US0378331005,40,ACC-1,pending_receipt\n"
)


def test_upload_csv_is_accepted_with_lines(owner_api, custodian_a):
    response = upload(owner_api, CSV)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "accepted"
    assert body["source"] == "custodian-uploaded"
    assert body["custodian"] == custodian_a.lei
    assert body["line_count"] == 3
    assert body["as_of"] == "2026-11-20T21:00:00Z"
    lines = owner_api.get(body["lines_url"]).json()["results"]
    assert [
        (x["asset"], x["quantity"], x["balance_type"], x["counts_as_reserve"]) for x in lines
    ] == [
        ("AAPLx", "1000.000000000000000000", "settled", True),
        ("MSFTx", "250.500000000000000000", "settled", True),
        ("AAPLx", "40.000000000000000000", "pending_receipt", False),
    ]
    assert StatementLine.objects.get(line_no=3).quantity == Decimal("250.5")
    assert {x["statement_source"] for x in lines} == {"custodian-uploaded"}


def test_same_bytes_twice_return_the_same_statement(owner_api):
    first = upload(owner_api, CSV)
    second = upload(owner_api, CSV)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert CustodianStatement.objects.count() == 1
    assert RawDocument.objects.count() == 1


def test_raw_download_is_byte_exact(owner_api):
    body = upload(owner_api, CSV).json()
    response = owner_api.get(body["raw_url"])
    assert response.status_code == 200
    assert response.content == CSV
    assert response["Content-Type"] == "text/csv"
    assert response["X-Content-SHA256"] == body["sha256"]
    assert "attachment" in response["Content-Disposition"]


def test_rejected_upload_names_line_and_field_and_is_stored(owner_api):
    bad = (
        b"isin,quantity,account,balance_type\n"
        b"US0378331005,100,A,settled\n"
        b"US0378331006,-5,A,settled\n"
    )
    response = upload(owner_api, bad)
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/statement-rejected")
    fields = {(e["line"], e["field"]) for e in body["errors"]}
    assert (3, "isin") in fields
    assert (3, "quantity") in fields
    assert all("line 3" in e["message"] for e in body["errors"])
    stored = CustodianStatement.objects.get(pk=body["statement"]["id"])
    assert stored.status == StatementStatus.REJECTED
    assert bytes(stored.raw.content) == bad
    assert not stored.lines.exists()
    # The report is readable later too.
    detail = owner_api.get(f"/api/v1/statements/{stored.pk}/").json()
    assert detail["error_report"] == body["errors"]


@pytest.mark.parametrize(
    ("raw", "as_of", "field", "needle"),
    [
        (b"isin,quantity,account,balance_type\nUS88160R1014,1,A,settled\n", "2026-11-20T21:00:00Z",
         "isin", "not the ISIN of any registered asset"),
        (b"isin,quantity,account,balance_type\nUS0378331005,1.1234567,A,settled\n",
         "2026-11-20T21:00:00Z", "quantity", "AAPLx allows 6"),
        (b"isin,quantity,account,balance_type\nUS0378331005,1,A,settled\n", "2099-01-01T00:00:00Z",
         "as_of", "in the future"),
        (b"isin,quantity,account,balance_type\nUS0378331005,1,A,settled\n", None, "as_of",
         "as-of"),
        (b"", "2026-11-20T21:00:00Z", None, "empty"),
        (b"isin,quantity,account,balance_type\nUS0378331005,1,A\xff,settled\n",
         "2026-11-20T21:00:00Z", None, "UTF-8"),
        (b"isin,quantity,account,balance_type\nUS0378331005,1,A,settled\nUS0378331005,2,A,settled\n",
         "2026-11-20T21:00:00Z", None, "line 2"),
        (b"isin,quantity,account,balance_type\nUS0378331005,abc,A,settled\n",
         "2026-11-20T21:00:00Z", "quantity", "line 2"),
    ],
    ids=["unknown-isin", "too-many-decimals", "future-as-of", "missing-as-of", "empty",
         "encoding", "disagreeing-duplicates", "non-numeric"],
)  # fmt: skip
def test_validation_errors(owner_api, raw, as_of, field, needle):
    response = upload(owner_api, raw, as_of=as_of)
    assert response.status_code == 422, response.content
    errors = response.json()["errors"]
    assert any(needle in e["message"] for e in errors), errors
    if field:
        assert field in {e["field"] for e in errors}
    assert CustodianStatement.objects.get().status == "rejected"


def test_too_large_is_413(owner_api, settings):
    settings.MAX_UPLOAD_BYTES = 50
    response = upload(owner_api, CSV)
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "file"
    assert "limit is 50 bytes" in response.json()["detail"]


def test_semt002_real_shaped_message(owner_api, extra_assets):
    raw = (SAMPLES / "semt002_v11_custody_statement.xml").read_bytes()
    response = upload(owner_api, raw, fmt="semt002", as_of=None)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "accepted"
    assert body["line_count"] >= 4
    types = set(StatementLine.objects.values_list("balance_type", flat=True))
    assert "settled" in types and types - {"settled"}


def test_xml_bomb_is_rejected_quickly(owner_api):
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:semt.002.001.11">&lol3;</Document>"""
    response = upload(owner_api, bomb, fmt="semt002", as_of=None)
    assert response.status_code == 422
    assert "DTD" in response.json()["detail"] or "entit" in response.json()["detail"].lower()


def test_newer_upload_supersedes_same_as_of(owner_api):
    first = upload(owner_api, CSV).json()
    second = upload(owner_api, CSV.replace(b"1000", b"1001")).json()
    assert second["status"] == "accepted"
    old = CustodianStatement.objects.get(pk=first["id"])
    assert old.status == "superseded"
    assert old.superseded_by_id == second["id"]
    # Superseded statements keep their lines and bytes: nothing is edited away.
    assert old.lines.count() == 3


# --- Isolation -----------------------------------------------------------------------------


def test_unauthenticated_is_401(api):
    response = api.get("/api/v1/statements/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response["Content-Type"] == "application/problem+json"
    assert upload(api, CSV).status_code == 401
    assert not CustodianStatement.objects.exists()


def test_bad_or_revoked_token_is_401(owner, api):
    from audits import tokens

    token, secret = tokens.create_token(owner, "t")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/statements/").status_code == 200
    tokens.revoke(token)
    assert api.get("/api/v1/statements/").status_code == 401
    api.credentials(HTTP_AUTHORIZATION="Bearer por_not-a-token")
    assert api.get("/api/v1/statements/").status_code == 401


def test_token_is_stored_hashed(owner):
    from audits import tokens

    token, secret = tokens.create_token(owner, "t")
    token.refresh_from_db()
    assert secret not in (token.token_hash, token.prefix)
    assert secret.startswith(token.prefix)


def test_other_custodians_statement_is_404(owner_api, outsider_api):
    body = upload(owner_api, CSV).json()
    for url in (f"/api/v1/statements/{body['id']}/", body["raw_url"], body["lines_url"]):
        response = outsider_api.get(url)
        assert response.status_code == 404, url
    assert outsider_api.get("/api/v1/statements/").json()["count"] == 0


def test_teammate_sees_own_custodians_statements(owner_api, teammate):
    from tests.statements.conftest import token_client

    body = upload(owner_api, CSV).json()
    assert token_client(teammate).get(f"/api/v1/statements/{body['id']}/").status_code == 200


def test_custodian_cannot_upload_for_another_custodian(owner_api, custodian_a, custodian_b):
    body = upload(owner_api, CSV, custodian=custodian_b.lei).json()
    assert body["custodian"] == custodian_a.lei


def test_admin_uploads_on_custodians_behalf(admin_api, custodian_b):
    response = upload(admin_api, CSV, custodian=custodian_b.lei)
    assert response.status_code == 201, response.content
    assert response.json()["source"] == "admin-entered"
    assert response.json()["custodian"] == custodian_b.lei
    assert upload(admin_api, CSV + b"\n").status_code == 400


# --- Signatures ----------------------------------------------------------------------------


def test_valid_signature_labels_statement_signed(owner_api, signing_key):
    response = upload(owner_api, CSV, HTTP_X_STATEMENT_SIGNATURE=signing_key(CSV))
    assert response.status_code == 201, response.content
    assert response.json()["source"] == "custodian-signed"
    assert response.json()["signature_status"] == "valid"


def test_signature_over_other_bytes_is_rejected(owner_api, signing_key):
    response = upload(owner_api, CSV, HTTP_X_STATEMENT_SIGNATURE=signing_key(CSV + b"x"))
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "X-Statement-Signature"
    assert "does not match" in error["message"]
    assert CustodianStatement.objects.get().signature_status == "invalid"


def test_outsiders_key_does_not_sign_for_owner(owner_api, outsider_api, signing_key):
    # signing_key belongs to custodian A; the outsider (custodian B) cannot use it.
    response = upload(outsider_api, CSV, HTTP_X_STATEMENT_SIGNATURE=signing_key(CSV))
    assert response.status_code == 422
    assert "not a registered" in response.json()["errors"][0]["message"]


def test_mandatory_signatures(owner_api, custodian_a, signing_key):
    custodian_a.signatures_required = True
    custodian_a.save()
    response = upload(owner_api, CSV)
    assert response.status_code == 422
    assert "requires signed statements" in response.json()["detail"]
    signed = CSV + b"\n"
    assert (
        upload(owner_api, signed, HTTP_X_STATEMENT_SIGNATURE=signing_key(signed)).status_code == 201
    )


def test_external_entity_is_refused_and_never_read(owner_api, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    xxe = f"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "file://{secret}">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:semt.002.001.11">
<SctiesBalCtdyRpt>&x;</SctiesBalCtdyRpt></Document>
""".encode()
    response = upload(owner_api, xxe, fmt="semt002", as_of=None)
    assert response.status_code == 422
    assert b"TOP-SECRET-MARKER" not in response.content
    stored = CustodianStatement.objects.get()
    assert stored.status == "rejected"
    assert "TOP-SECRET-MARKER" not in str(stored.rejection_report)
