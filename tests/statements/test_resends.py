"""Sending a statement again: a repeat, a new statement, a new attempt, or a retried request.

A repeat is the same bytes with the same format, as-of and signature as an upload still
received, incomplete or accepted. Anything else is a new statement; after a rejection it is a
new attempt linked to the rejected one. `Idempotency-Key` makes blind retries safe.
"""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from audits import statements
from audits.choices import StatementStatus
from audits.models import Asset, CustodianStatement, IdempotencyKey, RawDocument, StatementLine
from tests.celery_worker import wait_for
from tests.statements.conftest import token_client, upload
from tests.statements.test_resume import AS_OF, interrupted

pytestmark = pytest.mark.django_db

CSV = b"isin,quantity,account,balance_type\nUS0378331005,1000,ACC-1,settled\n"
NEXT_DAY = "2026-11-21T21:00:00Z"
JSON = b'{"as_of": "2026-11-20T21:00:00Z", "holdings": [{"isin": "US0378331005", ' \
    b'"quantity": "1000", "account": "ACC-1", "balance_type": "settled"}]}'  # fmt: skip


# --- The repeat rule ------------------------------------------------------------------------


def test_identical_holdings_can_be_reported_for_the_next_day(owner_api):
    first = upload(owner_api, CSV).json()
    second = upload(owner_api, CSV, as_of=NEXT_DAY)
    assert second.status_code == 201, second.content
    body = second.json()
    assert body["id"] != first["id"]
    assert (body["status"], body["as_of"]) == ("accepted", NEXT_DAY)
    # Both days stand; the bytes are stored once.
    assert CustodianStatement.objects.get(pk=first["id"]).status == "accepted"
    assert RawDocument.objects.count() == 1


def test_a_rejected_upload_is_fixed_by_resending_with_the_right_as_of(owner_api):
    wrong = upload(owner_api, CSV, as_of="2099-01-01T00:00:00Z")
    assert wrong.status_code == 422
    rejected_id = wrong.json()["statement"]["id"]

    fixed = upload(owner_api, CSV)

    assert fixed.status_code == 201, fixed.content
    body = fixed.json()
    assert body["id"] != rejected_id
    assert (body["status"], body["retry_of"]) == ("accepted", rejected_id)


def test_a_rejected_upload_is_fixed_by_resending_with_the_right_format(owner_api):
    wrong = upload(owner_api, JSON, fmt="csv")
    assert wrong.status_code == 422
    fixed = upload(owner_api, JSON, fmt="json", as_of=None)
    assert fixed.status_code == 201, fixed.content
    assert fixed.json()["retry_of"] == wrong.json()["statement"]["id"]
    assert fixed.json()["status"] == "accepted"


def test_the_same_upload_after_a_rejection_is_a_new_attempt(owner_api):
    unknown = CSV.replace(b"US0378331005", b"US88160R1014")
    first = upload(owner_api, unknown)
    assert first.status_code == 422
    # The admin registers the missing asset; the custodian sends the same file again.
    Asset.objects.create(code="TSLAx", name="Tesla", isin="US88160R1014")

    again = upload(owner_api, unknown)

    assert again.status_code == 201, again.content
    assert again.json()["status"] == "accepted"
    assert again.json()["retry_of"] == first.json()["statement"]["id"]
    assert StatementLine.objects.filter(isin="US88160R1014").count() == 1


def test_a_signature_added_on_a_resend_is_checked(owner_api, signing_key):
    unsigned = upload(owner_api, CSV).json()

    signed = upload(owner_api, CSV, HTTP_X_STATEMENT_SIGNATURE=signing_key(CSV))

    assert signed.status_code == 201, signed.content
    body = signed.json()
    assert (body["source"], body["signature_status"]) == ("custodian-signed", "valid")
    old = CustodianStatement.objects.get(pk=unsigned["id"])
    assert (old.status, old.superseded_by_id) == ("superseded", body["id"])


def test_a_bad_signature_added_on_a_resend_is_rejected(owner_api, signing_key):
    upload(owner_api, CSV)
    response = upload(owner_api, CSV, HTTP_X_STATEMENT_SIGNATURE=signing_key(b"other bytes"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "X-Statement-Signature"


def test_the_same_upload_of_a_superseded_statement_stands_again(owner_api):
    first = upload(owner_api, CSV).json()
    upload(owner_api, CSV.replace(b"1000", b"1001"))
    again = upload(owner_api, CSV)
    assert again.status_code == 201
    assert again.json()["status"] == "accepted"
    assert CustodianStatement.objects.get(pk=first["id"]).status == "superseded"


def test_resending_a_statement_still_received_queues_it_again(owner, custodian_a):
    stalled = interrupted(custodian_a, owner)
    CustodianStatement.objects.filter(pk=stalled.pk).update(declared_as_of=AS_OF)

    submission = statements.submit_statement(
        custodian=custodian_a, user=owner, raw=CSV, fmt="csv", as_of=AS_OF
    )

    assert (submission.statement.pk, submission.created) == (stalled.pk, False)
    assert submission.requeued is True
    assert CustodianStatement.objects.count() == 1


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_client_retrying_after_a_crash_gets_its_statement_processed(
    celery_worker_process, owner, custodian_a
):
    # The first request died after storing the bytes: the statement is left `received`.
    stalled = interrupted(custodian_a, owner, minutes_ago=0)
    CustodianStatement.objects.filter(pk=stalled.pk).update(declared_as_of=AS_OF)

    response = upload(token_client(owner), CSV, as_of="2026-11-20T21:00:00Z")

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["status"]) == (stalled.pk, "received")
    wait_for(
        lambda: CustodianStatement.objects.filter(
            pk=stalled.pk, status=StatementStatus.ACCEPTED
        ).first()
    )
    assert StatementLine.objects.filter(statement=stalled).count() == 1


# --- Idempotency-Key --------------------------------------------------------------------------

KEY = '"8e03978e-40d5-43e8-bc93-6894a57f9324"'


def test_the_same_key_and_request_return_the_first_response(owner_api):
    first = upload(owner_api, CSV, HTTP_IDEMPOTENCY_KEY=KEY)
    again = upload(owner_api, CSV, HTTP_IDEMPOTENCY_KEY=KEY)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert CustodianStatement.objects.count() == 1
    assert IdempotencyKey.objects.get().key == "8e03978e-40d5-43e8-bc93-6894a57f9324"


def test_the_same_key_replays_a_rejection(owner_api):
    bad = CSV.replace(b"1000", b"-1")
    first = upload(owner_api, bad, HTTP_IDEMPOTENCY_KEY=KEY)
    again = upload(owner_api, bad, HTTP_IDEMPOTENCY_KEY=KEY)
    assert (first.status_code, again.status_code) == (422, 422)
    assert again.json()["statement"]["id"] == first.json()["statement"]["id"]
    assert again.json()["errors"] == first.json()["errors"]
    assert CustodianStatement.objects.count() == 1


def test_the_same_key_with_another_request_is_422_and_stores_nothing(owner_api):
    upload(owner_api, CSV, HTTP_IDEMPOTENCY_KEY=KEY)
    for changed in (
        {"raw": CSV + b"\n"},
        {"raw": CSV, "as_of": NEXT_DAY},
        {"raw": CSV, "HTTP_X_STATEMENT_SIGNATURE": "abc:def"},
    ):
        response = upload(owner_api, **changed, HTTP_IDEMPOTENCY_KEY=KEY)
        assert response.status_code == 422, changed
        body = response.json()
        assert body["type"].endswith("/idempotency-key-reused")
        assert body["errors"][0]["field"] == "Idempotency-Key"
    assert CustodianStatement.objects.count() == 1
    assert RawDocument.objects.count() == 1


def test_keys_belong_to_one_user(owner_api, teammate):
    first = upload(owner_api, CSV, HTTP_IDEMPOTENCY_KEY=KEY).json()
    # Another user's key is its own: here the same upload is a repeat (200), not a replay.
    other = upload(token_client(teammate), CSV, HTTP_IDEMPOTENCY_KEY=KEY)
    assert other.status_code == 200
    assert other.json()["id"] == first["id"]
    assert "Idempotent-Replayed" not in other
    different = upload(token_client(teammate), CSV, as_of=NEXT_DAY, HTTP_IDEMPOTENCY_KEY='"k2"')
    assert different.status_code == 201


def test_an_expired_key_is_forgotten(owner_api, settings):
    upload(owner_api, CSV, HTTP_IDEMPOTENCY_KEY=KEY)
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = upload(owner_api, CSV, as_of=NEXT_DAY, HTTP_IDEMPOTENCY_KEY=KEY)
    assert response.status_code == 201
    assert IdempotencyKey.objects.count() == 1
    assert IdempotencyKey.objects.get().expires_at > timezone.now() + timedelta(hours=23)


def test_a_key_for_an_upload_still_being_processed_is_409(owner, custodian_a, owner_api):
    stalled = interrupted(custodian_a, owner)
    IdempotencyKey.objects.create(
        user=owner, key="retry-1", fingerprint=statements._fingerprint(
            custodian_a, "csv", AS_OF, "", RawDocument.objects.get().sha256
        ), statement=stalled, created=True, expires_at=timezone.now() + timedelta(hours=1),
    )  # fmt: skip
    response = upload(owner_api, CSV, HTTP_IDEMPOTENCY_KEY='"retry-1"')
    assert response.status_code == 409
    assert response["Retry-After"] == "10"
    assert response.json()["statement"]["id"] == stalled.pk


@pytest.mark.parametrize("value", ['"', '"caf\\u00e9"', "two words", '""', '"' + "x" * 256 + '"'])
def test_a_malformed_key_is_400(owner_api, value):
    response = upload(owner_api, CSV, HTTP_IDEMPOTENCY_KEY=value)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert not CustodianStatement.objects.exists()


def test_a_bare_key_is_taken_as_is(owner_api):
    upload(owner_api, CSV, HTTP_IDEMPOTENCY_KEY="8e03978e-40d5-43e8-bc93-6894a57f9324")
    assert IdempotencyKey.objects.get().key == "8e03978e-40d5-43e8-bc93-6894a57f9324"


def test_the_schema_documents_the_key_and_its_answers(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    post = schema["paths"]["/api/v1/statements/"]["post"]
    names = {p["name"] for p in post["parameters"]}
    assert {"Idempotency-Key", "X-Statement-Signature"} <= names
    assert {"200", "201", "409", "422"} <= set(post["responses"])


# --- Portal and admin -----------------------------------------------------------------------


def portal_upload(client, raw=CSV, as_of="2026-11-20 21:00+00:00", fmt="csv"):
    data = {"file": SimpleUploadedFile("s.csv", raw), "format": fmt, "as_of": as_of}
    return client.post("/portal/", data, follow=True)


def test_portal_resend_after_rejection_links_the_two(client, owner):
    client.force_login(owner)
    portal_upload(client, fmt="json")  # the wrong format: rejected
    rejected = CustodianStatement.objects.get()
    assert rejected.status == "rejected"
    page = portal_upload(client).content.decode()
    fixed = CustodianStatement.objects.exclude(pk=rejected.pk).get()
    assert fixed.status == "accepted" and fixed.retry_of == rejected
    assert f'rejected statement <a href="/portal/statements/{rejected.pk}/">' in page
    old_page = client.get(f"/portal/statements/{rejected.pk}/").content.decode()
    assert f'<a href="/portal/statements/{fixed.pk}/">#{fixed.pk}</a> (accepted)' in old_page


def test_portal_says_when_an_upload_repeats_one(client, owner):
    client.force_login(owner)
    portal_upload(client)
    page = portal_upload(client).content.decode()
    assert CustodianStatement.objects.count() == 1
    assert "This upload repeats #" in page and "it is accepted" in page
    assert "accepted" in portal_upload(client, as_of="2026-11-21 21:00+00:00").content.decode()
    assert CustodianStatement.objects.count() == 2


def test_admin_shows_the_retry_link(client, admin_user, owner, custodian_a):
    client.force_login(admin_user)
    data = {"custodian": custodian_a.pk, "format": "csv", "as_of": "2026-11-20 21:00:00+00:00"}
    client.post("/admin/audits/custodianstatement/upload/",
                {**data, "format": "json", "file": SimpleUploadedFile("s.csv", CSV)})  # fmt: skip
    rejected = CustodianStatement.objects.get()
    assert rejected.status == "rejected"
    response = client.post(
        "/admin/audits/custodianstatement/upload/",
        {**data, "file": SimpleUploadedFile("s.csv", CSV)},
        follow=True,
    )
    fixed = CustodianStatement.objects.exclude(pk=rejected.pk).get()
    assert fixed.retry_of == rejected and fixed.status == "accepted"
    assert f"/admin/audits/custodianstatement/{rejected.pk}/change/" in response.content.decode()
    old = client.get(f"/admin/audits/custodianstatement/{rejected.pk}/change/").content.decode()
    assert f'/admin/audits/custodianstatement/{fixed.pk}/change/">#{fixed.pk}</a> (accepted)' in old
