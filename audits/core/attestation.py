"""Signed attestations: in-toto Statement v1 in a DSSE envelope, Ed25519 (framework-free).

Stand-in with the documented API (docs: design of issue #11); the full module replaces it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://porapp.dev/attestations/reserves/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


class AttestationInvalid(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _refuse_floats(obj) -> None:
    if isinstance(obj, float):
        raise TypeError("floats are not allowed in attestations: use decimal strings")
    if isinstance(obj, dict):
        for value in obj.values():
            _refuse_floats(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            _refuse_floats(value)


def canonical_json(obj) -> bytes:
    _refuse_floats(obj)
    return rfc8785.dumps(obj)


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def jwk_of(public_key: Ed25519PublicKey) -> dict:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}


def key_id(public_key: Ed25519PublicKey) -> str:
    jwk = jwk_of(public_key)
    members = {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}
    text = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64url(hashlib.sha256(text).digest())


def build_statement(subjects: list[tuple[str, str]], predicate: dict) -> dict:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": sha}} for name, sha in sorted(subjects)],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def sign(statement: dict, private_key: Ed25519PrivateKey, keyid: str) -> dict:
    payload = canonical_json(statement)
    sig = private_key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(sig).decode("ascii")}],
    }


def _payload_bytes(envelope: dict) -> bytes:
    try:
        return base64.b64decode(envelope["payload"], validate=True)
    except (KeyError, TypeError, binascii.Error) as exc:
        raise AttestationInvalid("the envelope has no valid base64 payload") from exc


def payload_digest(envelope: dict) -> str:
    return "sha256:" + hashlib.sha256(_payload_bytes(envelope)).hexdigest()


@dataclass(frozen=True)
class Verified:
    statement: dict
    keyid: str
    payload_digest: str


def verify(
    envelope: dict, jwks: dict, *, previous: dict | None = None, at: datetime | None = None
) -> Verified:
    if not isinstance(envelope, dict) or envelope.get("payloadType") != PAYLOAD_TYPE:
        raise AttestationInvalid("wrong or missing payloadType")
    payload = _payload_bytes(envelope)
    keys = {k.get("kid"): k for k in jwks.get("keys", [])}
    for entry in envelope.get("signatures") or []:
        jwk = keys.get(entry.get("keyid"))
        if jwk is None:
            continue
        public = Ed25519PublicKey.from_public_bytes(
            base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
        )
        if key_id(public) != entry["keyid"]:
            raise AttestationInvalid("key id is not the thumbprint of the published key")
        try:
            public.verify(base64.b64decode(entry["sig"]), pae(PAYLOAD_TYPE, payload))
        except (InvalidSignature, binascii.Error) as exc:
            raise AttestationInvalid("signature invalid") from exc
        try:
            statement = json.loads(payload)
        except ValueError as exc:
            raise AttestationInvalid("payload is not JSON") from exc
        if canonical_json(statement) != payload:
            raise AttestationInvalid("payload is not canonical JSON")
        if (
            statement.get("_type") != STATEMENT_TYPE
            or statement.get("predicateType") != PREDICATE_TYPE
        ):
            raise AttestationInvalid("not a porapp reserves statement")
        predicate = statement["predicate"]
        if previous is not None:
            before = json.loads(_payload_bytes(previous))
            if predicate.get("previous") != payload_digest(previous):
                raise AttestationInvalid("chain link wrong: previous digest differs")
            if predicate.get("sequence") != before["predicate"]["sequence"] + 1:
                raise AttestationInvalid("chain link wrong: sequence is not previous + 1")
        issued = datetime.fromisoformat(predicate["issued_at"]).timestamp()
        if "nbf" in jwk and issued < jwk["nbf"]:
            raise AttestationInvalid("key not valid at issued_at (before nbf)")
        if "exp" in jwk and issued > jwk["exp"]:
            raise AttestationInvalid("key not valid at issued_at (after exp)")
        return Verified(statement, entry["keyid"], payload_digest(envelope))
    raise AttestationInvalid("no signature by a known key")


def subject_names_for(statement: dict, sha256_hex: str) -> list[str]:
    return [
        s["name"]
        for s in statement.get("subject", [])
        if s.get("digest", {}).get("sha256") == sha256_hex.lower()
    ]
