"""Issuing attestations from real reconciliations: contents, chain, signatures, failures."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection, transaction

from audits import attestation_keys, attestations
from audits.core import attestation as core
from audits.models import Attestation, AttestationKey, CustodianStatement, RawDocument
from audits.models.statements import ImmutableError
from audits.tasks import issue_attestation
from tests.threads import race

from .conftest import NOW, World, public_key_of, reconcile, statement_of, verify_both

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the append-only trigger exists on PostgreSQL"
)


def test_key_id_is_the_rfc_8037_thumbprint():
    from joserfc.jwk import OKPKey

    jwk = {"crv": "Ed25519", "kty": "OKP", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert OKPKey.import_key(jwk).thumbprint() == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    public = OKPKey.import_key(jwk).get_op_key("verify")
    assert core.key_id(public) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_an_attestation_states_the_latest_reconciliation_and_its_evidence(world, key_file):
    world.backed("1000")
    reconcile(world)
    attestation = attestations.issue("changed", NOW)

    statement = statement_of(attestation)
    assert statement["_type"] == core.STATEMENT_TYPE
    assert statement["predicateType"] == core.PREDICATE_TYPE
    predicate = statement["predicate"]
    assert (predicate["sequence"], predicate["previous"]) == (1, None)
    assert predicate["issued_at"] == "2026-11-24T15:00:00Z"
    assert predicate["evidence_as_of"] == "2026-11-23T21:00:00Z"
    (asset,) = predicate["assets"]
    assert {k: asset[k] for k in ("code", "isin", "reserves", "supply", "ratio", "status")} == {
        "code": "TSTx", "isin": "US0378331005", "reserves": "1000", "supply": "1000",
        "ratio": "1", "status": "healthy",
    }  # fmt: skip
    # A new asset stays frozen until an admin approves: the attestation says so.
    assert (asset["state"], asset["eligible"], asset["haircut_bps"]) == ("frozen", False, 0)
    assert asset["multipliers"] == ["1"]
    expected = {}
    for st in CustodianStatement.objects.filter(raw__isnull=False):
        expected[f"statement-{st.pk}.csv"] = st.raw.sha256
    assert len(expected) == 2
    assert {f["name"]: f["sha256"] for s in asset["statements"] for f in s["files"]} == expected
    assert [s["as_of"] for s in asset["statements"]] == ["2026-11-23T21:00:00Z"] * 2
    assert statement["subject"] == [
        {"name": name, "digest": {"sha256": sha}} for name, sha in sorted(expected.items())
    ]
    assert sorted(r["chain_id"] for r in asset["supply_readings"]) == [900001, 900002]
    assert {r["circulating"] for r in asset["supply_readings"]} == {"500"}
    # Stored exactly as signed.
    payload = bytes(attestation.payload)
    assert attestation.payload_sha256 == hashlib.sha256(payload).hexdigest()
    assert json.loads(attestation.envelope)["signatures"][0]["keyid"] == attestation.key.kid
    assert attestation.key.kid == core.key_id(public_key_of(key_file))
    assert attestation.subjects == [[n, s] for n, s in sorted(expected.items())]
    verified = verify_both(attestation, attestation_keys.jwks(), key_file)
    assert verified.payload_digest == "sha256:" + attestation.payload_sha256


def test_subjects_are_the_raw_bytes_digests(world, key_file):
    world.backed()
    reconcile(world)
    attestation = attestations.issue("changed", NOW)
    for name, sha in attestation.subjects:
        statement_id = int(name.removeprefix("statement-").removesuffix(".csv"))
        raw = CustodianStatement.objects.get(pk=statement_id).raw
        assert hashlib.sha256(bytes(raw.content)).hexdigest() == sha
        assert RawDocument.objects.filter(sha256=sha).exists()


def test_the_second_attestation_names_the_first(world, key_file):
    world.backed()
    reconcile(world)
    first = attestations.issue("changed", NOW)
    second = attestations.issue("heartbeat", NOW + timedelta(hours=24))
    predicate = statement_of(second)["predicate"]
    assert predicate["sequence"] == 2
    assert predicate["previous"] == "sha256:" + first.payload_sha256
    assert second.previous_id == first.pk
    jwks = attestation_keys.jwks()
    verify_both(second, jwks, key_file, previous=first)
    # And the link is checked: the first is not the second's successor.
    with pytest.raises(core.AttestationInvalid):
        core.verify(json.loads(first.envelope), jwks, previous=json.loads(second.envelope))


def test_a_tampered_envelope_fails_verification(world, key_file):
    world.backed()
    reconcile(world)
    envelope = json.loads(attestations.issue("changed", NOW).envelope)
    statement = json.loads(core.canonical_json(statement_of_envelope(envelope)))
    statement["predicate"]["assets"][0]["reserves"] = "2000"
    envelope["payload"] = base64.b64encode(core.canonical_json(statement)).decode()
    with pytest.raises(core.AttestationInvalid):
        core.verify(envelope, attestation_keys.jwks())


def statement_of_envelope(envelope):
    return json.loads(base64.b64decode(envelope["payload"]))


def test_attestations_are_append_only_in_the_application(world, key_file):
    world.backed()
    reconcile(world)
    attestation = attestations.issue("changed", NOW)
    attestation.reason = "periodic"
    with pytest.raises(ImmutableError):
        attestation.save()
    with pytest.raises(ImmutableError):
        attestation.delete()
    assert Attestation.objects.get().reason == "changed"


@needs_postgres
def test_postgresql_refuses_updates_and_deletes(world, key_file):
    world.backed()
    reconcile(world)
    attestation = attestations.issue("changed", NOW)
    for sql in (
        "UPDATE audits_attestation SET reason = 'periodic' WHERE id = %s",
        "DELETE FROM audits_attestation WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [attestation.pk])
    with pytest.raises(DatabaseError), transaction.atomic():
        Attestation.objects.filter(pk=attestation.pk).update(reason="periodic")
    assert Attestation.objects.get().reason == "changed"


@pytest.mark.parametrize("problem", ["unset", "missing", "not-pem", "not-ed25519"])
def test_a_bad_key_file_is_a_clear_error_and_writes_nothing(world, tmp_path, settings, problem):
    world.backed()
    reconcile(world)
    path = tmp_path / "key.pem"
    secret = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if problem == "not-pem":
        path.write_bytes(b"not a key at all")
    elif problem == "not-ed25519":
        path.write_bytes(secret)
    settings.ATTESTATION_KEYS = [] if problem == "unset" else [str(path)]
    with pytest.raises(ImproperlyConfigured, match="ATTESTATION_KEY_FILES") as raised:
        attestations.issue("changed", NOW)
    assert "PRIVATE KEY" not in str(raised.value)
    assert secret.decode() not in str(raised.value)
    assert not Attestation.objects.exists()
    assert not AttestationKey.objects.exists()


def test_a_revoked_signing_key_signs_nothing(world, key_file):
    world.backed()
    reconcile(world)
    attestations.issue("changed", NOW)
    AttestationKey.objects.update(revoked_at=NOW + timedelta(minutes=1))
    with pytest.raises(ImproperlyConfigured, match="revoked"):
        attestations.issue("heartbeat", NOW + timedelta(minutes=2))
    assert Attestation.objects.count() == 1


def test_the_task_issues_once_then_nothing(world, key_file):
    world.backed()
    reconcile(world)
    assert issue_attestation() == 1
    assert issue_attestation() is None
    assert Attestation.objects.count() == 1


def test_the_task_does_nothing_without_a_key(world, settings):
    settings.ATTESTATION_KEYS = []
    assert issue_attestation() is None
    assert not Attestation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_threads_racing_give_a_gapless_chain(admin_user, key_file):
    world = World(admin_user)
    world.backed()
    reconcile(world)

    def issue_four() -> None:
        for _ in range(4):
            attestations.issue("heartbeat")

    race(issue_four)
    chain = list(Attestation.objects.order_by("sequence"))
    assert [a.sequence for a in chain] == list(range(1, 9))
    jwks = attestation_keys.jwks()
    for before, after in itertools.pairwise(chain):
        assert after.previous_id == before.pk
        verify_both(after, jwks, key_file, previous=before)


def test_an_attestation_is_never_issued_before_the_one_it_follows(world, key_file):
    # A worker that read the clock, then waited for the issuing lock while another issued:
    # its attestation must not claim an earlier time than the one it now follows (the
    # verifier refuses such a chain link). Found by the thread race on SQLite.
    world.backed()
    reconcile(world)
    attestations.issue("changed", NOW)
    first = attestations.issue("heartbeat", NOW + timedelta(hours=1))
    second = attestations.issue("heartbeat", NOW + timedelta(minutes=30))  # a stale clock read
    assert second.issued_at == first.issued_at
    verify_both(second, attestation_keys.jwks(), key_file, previous=first)
