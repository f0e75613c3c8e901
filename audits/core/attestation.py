"""Signed attestations: an in-toto Statement in a DSSE envelope, signed with Ed25519.

The format is documented in ``docs/attestation-format.md``. This module is the one place that
builds, signs and checks attestations; the Django side stores what :func:`sign` returns and the
offline verifier (:mod:`audits.core.verify`) calls :func:`verify`.

It needs only the standard library and ``cryptography`` so that anyone can re-check an
attestation without our application: the RFC 8785 encoder and the RFC 7638 thumbprint are
written here rather than imported (the tests check them against ``rfc8785`` and ``joserfc``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://porapp.dev/attestations/reserves/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"

# I-JSON (RFC 7493) / RFC 8785: integers beyond 2^53 - 1 do not survive a JavaScript reader,
# so they are refused rather than silently rounded by someone else's verifier.
MAX_SAFE_INTEGER = 2**53 - 1
# Our statements nest about six levels; anything far deeper is an attack on the parser.
MAX_DEPTH = 100
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# DSSE lets signers use standard or URL-safe base64 and verifiers must accept either.
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


class AttestationInvalid(ValueError):
    """An attestation failed a check; ``reason`` names the check in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- RFC 8785 canonical JSON ----------------------------------------------------------------


def canonical_json(obj: Any) -> bytes:
    """``obj`` as RFC 8785 (JCS) canonical JSON bytes.

    Our payloads hold only strings, integers, booleans, null, lists and objects: amounts are
    decimal strings. Floats are refused because their canonical form (ECMAScript number
    formatting) is where implementations disagree, and an amount must never be a float anyway.
    """
    parts: list[str] = []
    _encode(obj, parts, 0)
    return "".join(parts).encode("utf-8")


def _encode(obj: Any, out: list[str], depth: int) -> None:
    if depth >= MAX_DEPTH:  # our payloads are a few levels deep; refuse before Python's limit
        raise AttestationInvalid("JSON nested too deeply")
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, int):
        if not -MAX_SAFE_INTEGER <= obj <= MAX_SAFE_INTEGER:
            raise AttestationInvalid("integer outside the JSON safe range (+-2^53-1)")
        out.append(str(int(obj)))
    elif isinstance(obj, float):
        raise AttestationInvalid("floats are not allowed (amounts are decimal strings)")
    elif isinstance(obj, str):
        out.append(_string(obj))
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, item in enumerate(obj):
            if i:
                out.append(",")
            _encode(item, out, depth + 1)
        out.append("]")
    elif isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise AttestationInvalid("object keys must be strings")
        out.append("{")
        # Each name is checked first: a lone surrogate has no UTF-16 sort key either, and must
        # be refused as one (AttestationInvalid), not crash the sort.
        names = {key: _string(key) for key in obj}
        # RFC 8785 3.2.3: members sorted by the UTF-16 code units of their names.
        for i, key in enumerate(sorted(obj, key=lambda k: k.encode("utf-16-be"))):
            if i:
                out.append(",")
            out.append(names[key])
            out.append(":")
            _encode(obj[key], out, depth + 1)
        out.append("}")
    else:
        raise AttestationInvalid(f"cannot encode {type(obj).__name__} as JSON")


def _string(text: str) -> str:
    # json.dumps with ensure_ascii=False escapes exactly what ECMAScript's JSON.stringify does
    # (quote, backslash, U+0000..U+001F with the short forms \b \t \n \f \r, other controls as
    # lower-case \u00xx) and leaves every other character as it is, which is RFC 8785 3.2.2.2.
    # A lone surrogate has no UTF-8 form: refused, as rfc8785 does.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise AttestationInvalid("text contains a lone surrogate") from None
    return json.dumps(text, ensure_ascii=False)


# --- DSSE -----------------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature covers.

    ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``, lengths in bytes as ASCII decimal.
    Binding the type and both lengths means no payload can be re-read as another type.
    """
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def _b64decode(text: Any, what: str) -> bytes:
    if not isinstance(text, str) or not _BASE64.fullmatch(text):
        raise AttestationInvalid(f"{what} is not base64")
    std = text.translate(str.maketrans("-_", "+/")).rstrip("=")
    if len(std) % 4 == 1:
        raise AttestationInvalid(f"{what} is not base64")
    try:
        return base64.b64decode(std + "=" * (-len(std) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise AttestationInvalid(f"{what} is not base64") from None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --- keys -----------------------------------------------------------------------------------


def jwk_of(public_key: Ed25519PublicKey) -> dict:
    """The public key as an RFC 8037 OKP JWK (no ``kid``: see :func:`key_id`)."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}


def key_id(public_key: Ed25519PublicKey) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url): a key id anyone can recompute.

    RFC 7638 hashes the required members only, in lexicographic order, with no whitespace;
    for an OKP key those are crv, kty and x, and canonical_json produces exactly that form.
    """
    return _b64url(hashlib.sha256(canonical_json(jwk_of(public_key))).digest())


# --- building and signing -------------------------------------------------------------------


def build_statement(subjects: list[tuple[str, str]], predicate: dict) -> dict:
    """An in-toto Statement v1 over evidence files named by their SHA-256 (hex) digests.

    Subjects are sorted by name so that the same evidence always gives the same payload.
    """
    for name, digest in subjects:
        if not isinstance(name, str) or not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise AttestationInvalid(f"subject {name!r} needs a lower-case sha256 hex digest")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": name, "digest": {"sha256": digest}} for name, digest in sorted(subjects)
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def sign(statement: dict, private_key: Ed25519PrivateKey, keyid: str) -> dict:
    """The DSSE envelope of ``statement`` signed by ``private_key``.

    The payload is the canonical JSON of the statement, so the same statement always yields
    the same bytes (and Ed25519 signatures are deterministic: the same envelope too).
    """
    payload = canonical_json(statement)
    signature = private_key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode("ascii")}],
    }


def payload_digest(envelope: dict) -> str:
    """``sha256:<hex>`` of the envelope's payload bytes: what the next ``previous`` names.

    The payload bytes, not the envelope, are chained: they are what was signed, whereas the
    envelope's JSON layout and base64 alphabet may legitimately vary in transit.
    """
    if not isinstance(envelope, dict) or "payload" not in envelope:
        raise AttestationInvalid("envelope has no payload")
    return "sha256:" + hashlib.sha256(_b64decode(envelope["payload"], "payload")).hexdigest()


# --- verification ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    statement: dict
    keyid: str
    payload_digest: str


def verify(
    envelope: dict,
    jwks: dict,
    *,
    previous: dict | None = None,
    at: datetime | None = None,
) -> Verified:
    """Check an envelope against a JWKS; raise :class:`AttestationInvalid` naming the failure.

    Checks, in order: envelope shape and payload type, the one signature's key id is published
    and is that key's thumbprint, the Ed25519 signature over the PAE, the payload is canonical
    JSON of our Statement and predicate types, the key was valid at ``at`` (default: the
    predicate's ``issued_at``), and, when ``previous`` is given, the chain link to it.
    """
    if not isinstance(envelope, dict):
        raise AttestationInvalid("envelope is not a JSON object")
    for field in ("payloadType", "payload", "signatures"):
        if field not in envelope:
            raise AttestationInvalid(f"envelope has no {field}")
    if envelope["payloadType"] != PAYLOAD_TYPE:
        raise AttestationInvalid(f"payloadType is not {PAYLOAD_TYPE}")
    payload = _b64decode(envelope["payload"], "payload")
    signatures = envelope["signatures"]
    # One signer per attestation: with several, which one vouches for the chain is ambiguous.
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise AttestationInvalid("envelope must carry exactly one signature")
    sig_entry = signatures[0]
    if not isinstance(sig_entry, dict) or "sig" not in sig_entry or "keyid" not in sig_entry:
        raise AttestationInvalid("signature needs keyid and sig")
    kid = sig_entry["keyid"]
    if not isinstance(kid, str):
        raise AttestationInvalid("signature keyid is not text")
    signature = _b64decode(sig_entry["sig"], "signature")

    jwk = _published_key(jwks, kid)
    public_key = _public_key(jwk)
    # The key id is a hint only (DSSE); making it the thumbprint means a JWKS entry cannot
    # claim another key's id, and anyone can recompute which key signed.
    if key_id(public_key) != kid:
        raise AttestationInvalid("key id is not the RFC 7638 thumbprint of the published key")
    try:
        public_key.verify(signature, pae(PAYLOAD_TYPE, payload))
    except InvalidSignature:
        raise AttestationInvalid("signature does not verify with the published key") from None

    statement = _parse_payload(payload)
    predicate = _check_statement(statement)
    issued_at = _parse_time(predicate["issued_at"], "predicate issued_at")
    _check_key_window(jwk, at if at is not None else issued_at)
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()

    if previous is not None:
        try:
            prev = verify(previous, jwks)
        except AttestationInvalid as exc:
            raise AttestationInvalid(f"previous attestation: {exc.reason}") from None
        prev_predicate = prev.statement["predicate"]
        if predicate["previous"] != prev.payload_digest:
            raise AttestationInvalid("previous digest does not match the previous attestation")
        if predicate["sequence"] != prev_predicate["sequence"] + 1:
            raise AttestationInvalid("sequence does not follow the previous attestation's")
        if issued_at < _parse_time(prev_predicate["issued_at"], "previous issued_at"):
            raise AttestationInvalid("issued before the previous attestation")
    return Verified(statement=statement, keyid=kid, payload_digest=digest)


def _published_key(jwks: Any, kid: str) -> dict:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise AttestationInvalid("JWKS has no keys list")
    found = [k for k in jwks["keys"] if isinstance(k, dict) and k.get("kid") == kid]
    if not found:
        raise AttestationInvalid("signing key id is not in the JWKS")
    if len(found) > 1:
        raise AttestationInvalid("JWKS lists the signing key id twice")
    return found[0]


def _public_key(jwk: dict) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise AttestationInvalid("published key is not an OKP Ed25519 key")
    if jwk.get("alg", "EdDSA") != "EdDSA" or jwk.get("use", "sig") != "sig":
        raise AttestationInvalid("published key is not for EdDSA signatures")
    x = jwk.get("x")
    # RFC 7515: base64url without padding; a padded or standard-alphabet x would change the
    # thumbprint, so only the exact form is accepted.
    if not isinstance(x, str) or not re.fullmatch(r"[A-Za-z0-9_-]{43}", x):
        raise AttestationInvalid("published key x is not 32 bytes of base64url")
    raw = _b64decode(x, "published key x")
    if _b64url(raw) != x:
        raise AttestationInvalid("published key x is not 32 bytes of base64url")
    return Ed25519PublicKey.from_public_bytes(raw)


def _check_key_window(jwk: dict, when: datetime) -> None:
    if when.tzinfo is None:  # a naive time is taken as UTC, never as the machine's local time
        when = when.replace(tzinfo=UTC)
    at = when.timestamp()
    for field in ("nbf", "exp"):
        value = jwk.get(field)
        if field in jwk and (not isinstance(value, int) or isinstance(value, bool)):
            raise AttestationInvalid(f"published key {field} is not epoch seconds")
    if "nbf" in jwk and at < jwk["nbf"]:
        raise AttestationInvalid("signing key was not yet valid when the attestation was issued")
    if "exp" in jwk and at >= jwk["exp"]:
        raise AttestationInvalid("signing key had expired or was revoked when issued")


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


def _nesting(text: str) -> int:
    """The deepest bracket nesting outside strings (an upper bound if the JSON is broken)."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _parse_payload(payload: bytes) -> Any:
    def no_float(text: str) -> Any:
        raise AttestationInvalid("payload contains a float (amounts are decimal strings)")

    def no_constant(text: str) -> Any:
        raise AttestationInvalid(f"payload contains {text}")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            raise AttestationInvalid("payload has a duplicate object key")
        return obj

    try:
        text = payload.decode("utf-8")
        # Measured before parsing: json's C parser recurses on the C stack, and in a process
        # that has raised the recursion limit a hostile "[[[[..." crashes the interpreter
        # instead of raising RecursionError.
        if _nesting(text) > MAX_DEPTH:
            raise AttestationInvalid("payload JSON nested too deeply")
        statement = json.loads(
            text,
            parse_float=no_float,
            parse_constant=no_constant,
            object_pairs_hook=no_duplicates,
        )
    except UnicodeDecodeError:
        raise AttestationInvalid("payload is not UTF-8") from None
    except RecursionError:
        raise AttestationInvalid("payload JSON nested too deeply") from None
    except AttestationInvalid:
        raise
    except ValueError:
        raise AttestationInvalid("payload is not JSON") from None
    # Canonical bytes mean one statement has one digest: the chain and the subjects cannot be
    # re-encoded into a second, equally valid payload.
    try:
        canonical = canonical_json(statement)
    except AttestationInvalid as exc:
        raise AttestationInvalid(f"payload is not canonical JSON: {exc.reason}") from None
    if canonical != payload:
        raise AttestationInvalid("payload is not canonical JSON (RFC 8785)")
    return statement


def _check_statement(statement: Any) -> dict:
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise AttestationInvalid(f"payload is not an in-toto Statement ({STATEMENT_TYPE})")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise AttestationInvalid(f"predicateType is not {PREDICATE_TYPE}")
    subjects = statement.get("subject")
    if not isinstance(subjects, list):
        raise AttestationInvalid("statement subject is not a list")
    for subject in subjects:
        digest = subject.get("digest") if isinstance(subject, dict) else None
        if (
            not isinstance(digest, dict)
            or not isinstance(subject.get("name"), str)
            or not isinstance(digest.get("sha256"), str)
            or not _HEX64.fullmatch(digest["sha256"])
        ):
            raise AttestationInvalid("a subject lacks a name or a sha256 digest")
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        raise AttestationInvalid("statement predicate is not an object")
    sequence = predicate.get("sequence")
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
        raise AttestationInvalid("predicate sequence is not a positive integer")
    if not isinstance(predicate.get("issued_at"), str):
        raise AttestationInvalid("predicate has no issued_at")
    prev = predicate.get("previous", ...)
    if prev is ...:
        raise AttestationInvalid("predicate has no previous (null on the first attestation)")
    if prev is None and sequence != 1:
        raise AttestationInvalid("only the first attestation (sequence 1) may name no previous")
    if prev is not None and (not isinstance(prev, str) or not _DIGEST.fullmatch(prev)):
        raise AttestationInvalid("predicate previous is not sha256:<64 hex digits>")
    if prev is not None and sequence == 1:
        raise AttestationInvalid("the first attestation (sequence 1) must name no previous")
    return predicate


def rfc3339(when: datetime) -> str:
    """``when`` as the predicate spells times: RFC 3339 in UTC with a ``Z``.

    One spelling per instant (not ``+00:00``, which ``isoformat`` writes), because the verifier
    accepts only this one. A naive ``when`` is taken as UTC.
    """
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    text = when.replace(tzinfo=None).isoformat(
        timespec="microseconds" if when.microsecond else "seconds"
    )
    return text + "Z"


def _parse_time(value: Any, what: str) -> datetime:
    # RFC 3339 in UTC with a Z, as we write it: one spelling, so the string is the instant.
    if not isinstance(value, str) or not re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z", value
    ):
        raise AttestationInvalid(f"{what} is not an RFC 3339 UTC time (...Z)")
    try:
        return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
    except ValueError:
        raise AttestationInvalid(f"{what} is not an RFC 3339 UTC time (...Z)") from None


def subject_names_for(statement: dict, sha256_hex: str) -> list[str]:
    """The names of the statement's subjects whose SHA-256 digest is ``sha256_hex``."""
    wanted = sha256_hex.lower()
    return [
        s["name"]
        for s in statement.get("subject", [])
        if isinstance(s, dict)
        and isinstance(s.get("digest"), dict)
        and s["digest"].get("sha256") == wanted
    ]
