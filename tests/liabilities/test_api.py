"""The snapshot API: who may upload and read, 202 + Location, repeats, 413, no secret."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audits import liabilities
from audits.models import LiabilitySnapshot
from tests.liabilities.conftest import GOOD, token_client

URL = "/api/v1/snapshots/"


def upload(client, raw: bytes = GOOD, as_of: str | None = "2026-11-24T21:00:00Z"):
    data = {"file": SimpleUploadedFile("balances.csv", raw)}
    if as_of is not None:
        data["as_of"] = as_of
    return client.post(URL, data, format="multipart")


@pytest.mark.django_db
def test_operator_uploads_then_reads_the_built_snapshot(
    operator_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = upload(operator_api)
    assert response.status_code == 202, response.content
    body = response.json()
    assert len(queued) == 1
    assert body["status"] == "received" and body["phase"] == "queued"
    assert response["Location"].endswith(f"{URL}{body['id']}/")
    assert body["as_of"] == "2026-11-24T21:00:00Z"
    assert "secret" not in body and "attempts" not in body
    liabilities.build(body["id"])
    detail = operator_api.get(response["Location"]).json()
    assert detail["status"] == "published" and detail["progress"] == 100
    assert [t["asset"] for t in detail["trees"]] == ["AAPLx", "MSFTx"]
    aapl = detail["trees"][0]
    assert aapl["root_sum"] == str(262_500_000_000_000_000_001)
    assert aapl["account_count"] == 3 and aapl["leaf_count"] == 4
    assert len(aapl["tree_sha256"]) == 64 and len(aapl["root_hash"]) == 64
    secret = bytes(LiabilitySnapshot.objects.get(pk=body["id"]).secret)
    listed = operator_api.get(URL)
    assert listed.status_code == 200 and listed.json()["results"][0]["id"] == body["id"]
    for text in (listed.content, operator_api.get(response["Location"]).content):
        assert secret.hex().encode() not in text and b"secret" not in text


@pytest.mark.django_db
def test_repeat_upload_answers_200_with_the_same_snapshot(
    operator_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        first = upload(operator_api)
        again = upload(operator_api)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again["Location"] == first["Location"]
    assert LiabilitySnapshot.objects.count() == 1


@pytest.mark.django_db
def test_rejected_snapshot_lists_errors(operator_api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = upload(operator_api, b"account_id,asset,balance\nu-1,AAPLx,1.5.5\n")
    liabilities.build(response.json()["id"])
    body = operator_api.get(response["Location"]).json()
    assert body["status"] == "rejected" and body["error_count"] == 1 and body["trees"] == []
    assert body["errors"] == [
        {"line": 2, "field": "balance",
         "message": "not a plain decimal number (digits, optionally one '.')"}
    ]  # fmt: skip


@pytest.mark.django_db
def test_as_of_needs_an_offset(operator_api):
    response = upload(operator_api, as_of="2026-11-24T21:00:00")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "as_of"
    assert upload(operator_api, as_of=None).status_code == 400
    assert not LiabilitySnapshot.objects.exists()


@pytest.mark.django_db
def test_too_large_is_413_and_stores_nothing(operator_api, settings, liability_storage):
    settings.LIABILITY_MAX_UPLOAD = len(GOOD) - 1
    response = upload(operator_api)
    assert response.status_code == 413
    assert response.json()["type"].endswith("/file-too-large")
    assert not LiabilitySnapshot.objects.exists()
    store = liability_storage / "liabilities"
    assert not store.exists() or not any(store.rglob("*.csv"))


@pytest.mark.django_db
def test_custodian_token_is_refused(owner, operator, django_capture_on_commit_callbacks):
    owner_api = token_client(owner)
    assert upload(owner_api).status_code == 403
    assert owner_api.get(URL).status_code == 403
    with django_capture_on_commit_callbacks(execute=False):
        snapshot, _ = liabilities.receive(user=operator, chunks=[GOOD], as_of=_as_of())
    assert owner_api.get(f"{URL}{snapshot.pk}/").status_code == 403
    assert LiabilitySnapshot.objects.count() == 1


@pytest.mark.django_db
def test_anonymous_is_401(api, demo):
    response = upload(api)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert api.get(URL).status_code == 401


@pytest.mark.django_db
def test_admin_reads_and_uploads(admin_api, operator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        snapshot, _ = liabilities.receive(user=operator, chunks=[GOOD], as_of=_as_of())
        assert upload(admin_api, as_of="2026-11-25T21:00:00+01:00").status_code == 202
    assert admin_api.get(f"{URL}{snapshot.pk}/").status_code == 200
    assert admin_api.get(URL).json()["count"] == 2
    assert admin_api.get(f"{URL}999999/").status_code == 404


@pytest.mark.django_db
def test_operator_who_is_also_a_custodian_user_is_refused(operator, custodian_a):
    from audits.models import CustodianUser

    client = token_client(operator)
    CustodianUser.objects.create(user=operator, custodian=custodian_a)
    assert client.get(URL).status_code == 403


@pytest.mark.django_db
def test_schema_documents_the_endpoints(admin_api):
    schema = admin_api.get("/api/schema/?format=json").json()
    upload_op = schema["paths"]["/api/v1/snapshots/"]["post"]
    assert {"200", "202", "400", "401", "403", "413"} <= set(upload_op["responses"])
    assert "multipart/form-data" in upload_op["requestBody"]["content"]
    tree = schema["components"]["schemas"]["LiabilityTree"]["properties"]
    assert tree["root_sum"]["type"] == "string"
    assert "secret" not in schema["components"]["schemas"]["LiabilitySnapshot"]["properties"]


def _as_of():
    from tests.liabilities.conftest import AS_OF

    return AS_OF


@pytest.mark.django_db
def test_tokens_only_for_custodian_users_and_operators(django_user_model, operator):
    from audits import tokens

    plain = django_user_model.objects.create_user("someone", "s@example.com", "pw")
    with pytest.raises(ValueError, match="platform operators"):
        tokens.create_token(plain, "no role")
    _, secret = tokens.create_token(operator, "uploads")
    assert tokens.authenticate(secret) == operator
    assert liabilities.is_operator(operator) and not liabilities.is_operator(plain)
