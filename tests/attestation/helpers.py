"""Keys, predicates and envelopes for the attestation tests (no Django)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audits.core.attestation import build_statement, jwk_of, key_id, payload_digest, sign

# RFC 8037 appendix A.1: the Ed25519 key whose thumbprint is the A.3 known answer.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_KID = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"

NBF = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
STATEMENT_BYTES = b"custodian statement 2026-11-29\n"


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rfc8037_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D))


def seeded_key(n: int) -> Ed25519PrivateKey:
    """A deterministic key per n, so failures reproduce."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"key %d" % n).digest())


def jwk_entry(private_key: Ed25519PrivateKey, nbf: int = NBF, exp: int | None = None) -> dict:
    public = private_key.public_key()
    entry = {**jwk_of(public), "kid": key_id(public), "use": "sig", "alg": "EdDSA", "nbf": nbf}
    if exp is not None:
        entry["exp"] = exp
    return entry


def jwks_of(*entries: dict) -> dict:
    return {"keys": list(entries)}


def predicate(sequence: int = 1, previous: str | None = None, **extra) -> dict:
    value = {
        "sequence": sequence,
        "issued_at": f"2026-11-29T17:{sequence % 60:02d}:00Z",
        "evidence_as_of": "2026-11-29T16:00:00Z",
        "previous": previous,
        "assets": [
            {
                "code": "AAPLx",
                "isin": "US0378331005",
                "reserves": "1000.000000",
                "supply": "990.000000",
                "ratio": "1.0101",
                "status": "healthy",
                "eligible": True,
                "haircut": "0.05",
                "multiplier": "1",
                "statements": [
                    {
                        "digest": "sha256:" + hashlib.sha256(STATEMENT_BYTES).hexdigest(),
                        "as_of": "2026-11-29T16:00:00Z",
                    }
                ],
                "supply_readings": [
                    {
                        "chain_id": 1,
                        "block_number": 21000000,
                        "block_hash": "0x" + "ab" * 32,
                        "confirmations": 12,
                    }
                ],
            }
        ],
    }
    value.update(extra)
    return value


def statement(pred: dict | None = None) -> dict:
    return build_statement(
        [("statement-custodian-a.csv", hashlib.sha256(STATEMENT_BYTES).hexdigest())],
        pred if pred is not None else predicate(),
    )


def chain(private_key: Ed25519PrivateKey, length: int) -> list[dict]:
    """``length`` correctly linked envelopes, sequence 1 first."""
    envelopes: list[dict] = []
    for seq in range(1, length + 1):
        prev = payload_digest(envelopes[-1]) if envelopes else None
        envelopes.append(
            sign(statement(predicate(seq, prev)), private_key, key_id(private_key.public_key()))
        )
    return envelopes


def reencode(envelope: dict, payload: bytes) -> dict:
    """The envelope with other payload bytes and the same signature."""
    return {**envelope, "payload": base64.b64encode(payload).decode("ascii")}


def payload_of(envelope: dict) -> dict:
    return json.loads(base64.b64decode(envelope["payload"]))
