"""Proofs read from published trees: by account hash (public API) and as the user's bundle
(operator API), each checked with the offline verifier rather than compared with itself."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from audits import liability_proofs
from audits.core.bundle import check_attested, check_bundle
from audits.core.merkle import TreeReader, verify_proof
from audits.models import Custodian, CustodianUser, LiabilitySnapshot, PlatformOperator
from tests.liabilities.trees import PUBLISHED, attest, hash_of, publish

pytestmark = pytest.mark.django_db

BALANCES = {
    "AAPLx": {"u-1": 12_000_000, "u-2": 251_000_000, "u/3": 0},
    "MSFTx": {"u-2": 5_500_000, "u-4": 1},
}


@pytest.fixture
def snapshot(liability_storage):
    return publish(BALANCES)


def test_proofs_by_hash_gives_one_verified_proof_per_asset_holding_the_account(snapshot):
    proofs = liability_proofs.proofs_by_hash(snapshot.pk, hash_of(snapshot, "u-2"))
    assert [p["assets"][0]["code"] for p in proofs] == ["AAPLx", "MSFTx"]
    results = [verify_proof(p) for p in proofs]
    assert all(r.valid for r in results), results
    assert [r.balances for r in results] == [(251_000_000,), (5_500_000,)]
    assert [r.root_sums for r in results] == [(263_000_000,), (5_500_001,)]
    assert all("account" not in p for p in proofs)  # the hash alone ties it to nobody

    (only,) = liability_proofs.proofs_by_hash(snapshot.pk, hash_of(snapshot, "u-4"))
    assert only["assets"][0]["code"] == "MSFTx"
    assert liability_proofs.proofs_by_hash(snapshot.pk, "ab" * 32) == []


def test_only_published_snapshots_give_proofs(snapshot):
    wanted = hash_of(snapshot, "u-1")
    for status in ("received", "checking", "rejected", "failed"):
        LiabilitySnapshot.objects.filter(pk=snapshot.pk).update(status=status)
        assert liability_proofs.proofs_by_hash(snapshot.pk, wanted) == []
        with pytest.raises(liability_proofs.NotFound):
            liability_proofs.bundle(snapshot.pk, "u-1")
    assert liability_proofs.proofs_by_hash(snapshot.pk + 100, wanted) == []


def test_a_proof_takes_a_handful_of_reads(snapshot, monkeypatch):
    big = publish({"TSLAx": {f"u-{n}": n for n in range(1000)}})
    preads, slices = [], []
    real_pread, real_read = os.pread, TreeReader._read

    def counting_pread(fd, size, offset):
        preads.append(size)
        return real_pread(fd, size, offset)

    def counting_read(self, size, offset):
        slices.append(size)
        return real_read(self, size, offset)

    monkeypatch.setattr(os, "pread", counting_pread)
    monkeypatch.setattr(TreeReader, "_read", counting_read)
    (proof,) = liability_proofs.proofs_by_hash(big.pk, hash_of(big, "u-77"))
    assert verify_proof(proof).balances == (77,)
    # Opening the file reads its header (3); then the binary search (<= log2(1024) + 1),
    # the leaf and one record per level (11), as slices of the memory map.
    assert len(preads) <= 3 and len(slices) <= 11 + 11, (preads, slices)
    preads.clear(), slices.clear()
    (again,) = liability_proofs.proofs_by_hash(big.pk, hash_of(big, "u-78"))
    assert verify_proof(again).balances == (78,)
    assert preads == [] and len(slices) <= 11 + 11  # the file stays open and mapped


def test_bundle_holds_every_asset_with_the_account_and_verifies(snapshot):
    data = liability_proofs.bundle(snapshot.pk, "u-2")
    assert data["format"] == "por-bundle-v1"
    assert data["snapshot"] == {"id": snapshot.pk, "as_of": "2026-11-27T21:00:00Z"}
    assert data["account"]["id"] == "u-2"
    assert len(data["account"]["nonce"]) == 64
    assert data["attestation"] is None  # nothing attested yet
    assert all(p["account"] == data["account"] for p in data["proofs"])
    snapshot_id, account, checked = check_bundle(data)
    assert (snapshot_id, account) == (str(snapshot.pk), "u-2")
    assert [c.result.balances for c in checked] == [(251_000_000,), (5_500_000,)]
    # The nonce is the one the tree was built with: the public API finds the same leaves.
    assert [p["leaf"] for p in data["proofs"]] == [
        p["leaf"] for p in liability_proofs.proofs_by_hash(snapshot.pk, hash_of(snapshot, "u-2"))
    ]
    with pytest.raises(liability_proofs.NotFound):
        liability_proofs.bundle(snapshot.pk, "nobody")


def test_bundle_names_the_newest_attestation_of_its_roots(snapshot):
    first = attest(snapshot)
    second = attest(snapshot, issued_at=PUBLISHED + timedelta(hours=2))
    attest(None, issued_at=PUBLISHED + timedelta(hours=3))  # names no liabilities
    data = liability_proofs.bundle(snapshot.pk, "u-1")
    assert data["attestation"] == {
        "sequence": second.sequence,
        "payload_digest": f"sha256:{second.payload_sha256}",
        "url": f"/attestations/{second.sequence}/envelope.json",
    }
    assert first.sequence < second.sequence
    _, _, checked = check_bundle(data)
    included = check_attested(str(snapshot.pk), checked, json.loads(second.payload)["predicate"])
    assert [(i.code, i.balance, i.total) for i in included] == [("AAPLx", 12_000_000, 263_000_000)]


def test_bundle_skips_an_attestation_of_other_roots(snapshot):
    attest(snapshot, change=lambda p: p["assets"][0]["liabilities"].update(root_hash="00" * 32))
    assert liability_proofs.bundle(snapshot.pk, "u-1")["attestation"] is None


# --- the API -----------------------------------------------------------------------------------


def users():
    User = get_user_model()
    operator = User.objects.create_user("operator", password="x")
    PlatformOperator.objects.create(user=operator)
    admin = User.objects.create_user("boss", password="x", is_staff=True)
    custodian = Custodian.objects.create(name="Custody Co", lei="5493001KJTIIGC8Y1R12")
    clerk = User.objects.create_user("clerk", password="x")
    CustodianUser.objects.create(user=clerk, custodian=custodian)
    # A custodian user who was also given the operator role is still refused.
    both = User.objects.create_user("both", password="x")
    CustodianUser.objects.create(user=both, custodian=custodian)
    PlatformOperator.objects.create(user=both)
    plain = User.objects.create_user("plain", password="x")
    return operator, admin, clerk, both, plain


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_public_proof_endpoint(snapshot):
    url = f"/api/v1/snapshots/{snapshot.pk}/proofs/{hash_of(snapshot, 'u-1')}"
    response = client_for().get(url)
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    body = response.json()
    assert body["snapshot"] == {"id": snapshot.pk, "as_of": "2026-11-27T21:00:00Z"}
    assert body["account_hash"] == hash_of(snapshot, "u-1")
    (proof,) = body["proofs"]
    assert verify_proof(proof).balances == (12_000_000,)
    # Upper-case hex is the same hash.
    upper = f"/api/v1/snapshots/{snapshot.pk}/proofs/{hash_of(snapshot, 'u-1').upper()}"
    assert client_for().get(upper).json() == body


@pytest.mark.parametrize("bad", ["ab" * 31, "ab" * 33, "zz" * 32, "ab" * 31 + "a "])
def test_a_malformed_hash_is_a_400(snapshot, bad):
    response = client_for().get(f"/api/v1/snapshots/{snapshot.pk}/proofs/{bad}")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "account_hash"


def test_an_unknown_hash_or_snapshot_is_a_404_not_cached(snapshot):
    for url in (
        f"/api/v1/snapshots/{snapshot.pk}/proofs/{'ab' * 32}",
        f"/api/v1/snapshots/{snapshot.pk + 1}/proofs/{hash_of(snapshot, 'u-1')}",
    ):
        response = client_for().get(url)
        assert response.status_code == 404
        assert "immutable" not in response.get("Cache-Control", "")


def test_bundle_endpoint_for_operators_and_admins_only(snapshot):
    operator, admin, clerk, both, plain = users()
    url = f"/api/v1/snapshots/{snapshot.pk}/bundles/u/3"
    for user in (operator, admin):
        response = client_for(user).get(url)
        assert response.status_code == 200, user
        assert response["Cache-Control"] == "no-store"
        body = response.json()
        assert body["account"]["id"] == "u/3"
        assert check_bundle(body)[2][0].result.balances == (0,)
    for user in (None, clerk, both, plain):
        response = client_for(user).get(url)
        assert response.status_code == 404, user
        assert "nonce" not in response.content.decode()
    assert (
        client_for(operator).get(f"/api/v1/snapshots/{snapshot.pk}/bundles/nobody").status_code
        == 404
    )
    assert (
        client_for(operator).get(f"/api/v1/snapshots/{snapshot.pk + 9}/bundles/u-1").status_code
        == 404
    )


def test_schema_documents_both_endpoints(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    proofs = schema["paths"]["/api/v1/snapshots/{id}/proofs/{account_hash}"]["get"]
    bundles = schema["paths"]["/api/v1/snapshots/{id}/bundles/{account_id}"]["get"]
    assert proofs["operationId"] == "snapshot_account_proofs"
    assert bundles["operationId"] == "snapshot_account_bundle"
    example = bundles["responses"]["200"]["content"]["application/json"]["examples"]
    assert next(iter(example.values()))["value"]["format"] == "por-bundle-v1"


def test_latest_envelope_route_serves_the_newest_envelope_uncached(client, snapshot):
    assert client.get("/attestations/latest/envelope.json").status_code == 404
    attest(snapshot)
    newest = attest(snapshot, issued_at=PUBLISHED + timedelta(hours=2))
    response = client.get("/attestations/latest/envelope.json")
    assert response.status_code == 200
    assert response.content.decode() == newest.envelope
    assert response["Cache-Control"] == "no-cache"
    assert response["Content-Type"] == "application/json"


def test_proof_page_is_public_and_loads_its_module(client):
    response = client.get("/proofs/verify/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<script type="module" src="/static/porapp/js/proof-verify.js">' in page
    assert 'data-latest-url="/attestations/latest/envelope.json"' in page
    for field in ("bundle-text", "bundle-file"):
        assert f'<label for="{field}">' in page


def test_bundle_of_an_id_no_snapshot_file_can_hold_is_not_found(snapshot):
    for account_id in ("", "x" * 129, "\ud800"):
        with pytest.raises(liability_proofs.NotFound):
            liability_proofs.bundle(snapshot.pk, account_id)


def test_a_published_snapshot_is_read_once_per_process(snapshot, django_assert_num_queries):
    wanted = hash_of(snapshot, "u-2")
    with django_assert_num_queries(1):
        first = liability_proofs.proofs_by_hash(snapshot.pk, wanted)
    with django_assert_num_queries(0):
        assert liability_proofs.proofs_by_hash(snapshot.pk, wanted) == first
        assert liability_proofs.snapshot_summary(snapshot.pk)["id"] == snapshot.pk
    # Not published (yet): asked again every time.
    with django_assert_num_queries(2):
        assert liability_proofs.proofs_by_hash(snapshot.pk + 1, wanted) == []
        assert liability_proofs.proofs_by_hash(snapshot.pk + 1, wanted) == []
