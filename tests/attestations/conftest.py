"""Attestation fixtures: the reconciliation test world, a signing key in a PEM file, and
helpers to reconcile and to verify envelopes two independent ways."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

from audits import attestation_keys, reconciliation
from audits.core import attestation as core
from tests.reconciliation.conftest import NOW, World

__all__ = ["NOW", "World"]


@pytest.fixture
def world(db, admin_user) -> World:
    return World(admin_user)


@pytest.fixture
def key_file(tmp_path, settings):
    path = tmp_path / "attestation-key.pem"
    attestation_keys.write_key(path)
    settings.ATTESTATION_KEYS = [str(path)]
    return path


def public_key_of(path):
    return load_pem_private_key(path.read_bytes(), password=None).public_key()


def reconcile(world, now=NOW):
    (result,) = reconciliation.reconcile_assets([world.asset.pk], now=now)
    return result


def envelope_of(attestation) -> dict:
    return json.loads(attestation.envelope)


def statement_of(attestation) -> dict:
    return json.loads(base64.b64decode(envelope_of(attestation)["payload"]))


def verify_both(attestation, jwks: dict, key_path, previous=None) -> core.Verified:
    """Check an envelope with our core verifier and with securesystemslib's DSSE code."""
    envelope = envelope_of(attestation)
    verified = core.verify(
        envelope, jwks, previous=envelope_of(previous) if previous is not None else None
    )
    public = public_key_of(key_path)
    ssl_key = SSlibKey.from_crypto(public, keyid=core.key_id(public))
    # securesystemslib mutates what it is given: hand it a copy.
    accepted = Envelope.from_dict(copy.deepcopy(envelope)).verify([ssl_key], 1)
    assert list(accepted) == [core.key_id(public)]
    return verified
