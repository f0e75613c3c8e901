"""audits.core.attestation against published known answers and independent implementations."""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import itertools
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import OKPKey
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from audits.core.attestation import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    AttestationInvalid,
    build_statement,
    canonical_json,
    jwk_of,
    key_id,
    pae,
    payload_digest,
    sign,
    subject_names_for,
    verify,
)
from audits.core.verify import attestation_report

from .helpers import (
    NBF,
    RFC8037_D,
    RFC8037_KID,
    RFC8037_X,
    STATEMENT_BYTES,
    chain,
    jwk_entry,
    jwks_of,
    payload_of,
    predicate,
    reencode,
    rfc8037_key,
    seeded_key,
    statement,
)

KEY = seeded_key(1)
KID = key_id(KEY.public_key())
JWKS = jwks_of(jwk_entry(KEY))


def signed_bytes(payload: bytes, private_key=KEY, payload_type: str = PAYLOAD_TYPE) -> dict:
    """An envelope over arbitrary payload bytes, correctly signed: for the payload checks."""
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [
            {
                "keyid": key_id(private_key.public_key()),
                "sig": base64.b64encode(private_key.sign(pae(payload_type, payload))).decode(),
            }
        ],
    }


def reason_of(envelope, jwks=JWKS, **kw) -> str:
    with pytest.raises(AttestationInvalid) as info:
        verify(envelope, jwks, **kw)
    assert info.value.reason == str(info.value)
    return info.value.reason


def sslib_verifies(envelope: dict, private_key=KEY) -> bool:
    public = private_key.public_key()
    key = SSlibKey.from_crypto(public, keyid=key_id(public))
    # from_dict mutates what it is given (it pops the signatures): hand it a copy.
    try:
        Envelope.from_dict(copy.deepcopy(envelope)).verify([key], 1)
    except VerificationError:
        return False
    return True


# --- known answers --------------------------------------------------------------------------


def test_pae_is_the_dsse_spec_example():
    # secure-systems-lab/dsse protocol.md, "Test Vectors".
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters():
    assert pae("t\u00e9", b"\xff") == b"DSSEv1 3 t\xc3\xa9 1 \xff"
    envelope = Envelope(payload=b"\xff", payload_type="t\u00e9", signatures={})
    assert envelope.pae() == pae("t\u00e9", b"\xff")


def test_key_id_is_the_rfc8037_thumbprint():
    public = rfc8037_key().public_key()
    assert jwk_of(public) == {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    assert key_id(public) == RFC8037_KID
    assert OKPKey.import_key(jwk_of(public)).thumbprint() == RFC8037_KID


@pytest.mark.parametrize("n", range(5))
def test_key_id_agrees_with_joserfc(n):
    public = seeded_key(n).public_key()
    assert key_id(public) == OKPKey.import_key(jwk_of(public)).thumbprint()


# --- canonical JSON -------------------------------------------------------------------------

safe_ints = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | safe_ints | text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_canonical_json_matches_rfc8785(value):
    assert canonical_json(value) == rfc8785.dumps(value)


def test_canonical_json_sorts_by_utf16_code_units_and_escapes_like_javascript():
    # U+1F600 is a surrogate pair (D83D ...) and so sorts before U+FF61 in UTF-16, not after.
    value = {"\uff61": 1, "\U0001f600": 2, "z": 3, "\u00e9": 4, "ctl": '\x00\x1f\x7f\u2028"\\'}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).startswith(b'{"ctl":"\\u0000\\u001f\x7f\xe2\x80\xa8\\"\\\\"')


@pytest.mark.parametrize(
    "value",
    [1.5, 0.0, {"a": [1.0]}, 2**53, -(2**53), "\ud800", {1: "a"}, {"a": object()}],
    ids=["float", "zero", "nested", "big", "small", "surrogate", "int-key", "object"],
)
def test_canonical_json_refuses_what_it_cannot_encode_exactly(value):
    with pytest.raises(AttestationInvalid):
        canonical_json(value)


# --- signing, and verification by us and by securesystemslib --------------------------------


def test_a_signed_statement_verifies_with_us_and_securesystemslib():
    envelope = sign(statement(), KEY, KID)
    assert envelope["payloadType"] == PAYLOAD_TYPE
    assert sslib_verifies(envelope)
    result = verify(envelope, JWKS)
    assert result.keyid == KID
    assert result.statement == statement()
    assert result.statement["_type"] == STATEMENT_TYPE
    assert result.statement["predicateType"] == PREDICATE_TYPE
    payload = base64.b64decode(envelope["payload"])
    assert payload == rfc8785.dumps(statement())  # the payload is the RFC 8785 form
    assert result.payload_digest == payload_digest(envelope)
    assert payload_digest(envelope) == "sha256:" + hashlib.sha256(payload).hexdigest()


def test_signing_is_deterministic():
    assert sign(statement(), KEY, KID) == sign(statement(), KEY, KID)


def test_subjects_are_sorted_and_found_by_digest():
    built = build_statement([("b", "11" * 32), ("a", "22" * 32), ("c", "11" * 32)], {})
    assert [s["name"] for s in built["subject"]] == ["a", "b", "c"]
    assert built["subject"][0] == {"name": "a", "digest": {"sha256": "22" * 32}}
    assert subject_names_for(built, "11" * 32) == ["b", "c"]
    assert subject_names_for(built, ("22" * 32).upper()) == ["a"]
    assert subject_names_for(built, "33" * 32) == []
    with pytest.raises(AttestationInvalid):
        build_statement([("a", "XYZ")], {})


@pytest.mark.parametrize("position", [0, 40, -2])
def test_a_one_byte_change_to_the_payload_is_rejected_by_both(position):
    envelope = sign(statement(), KEY, KID)
    payload = bytearray(base64.b64decode(envelope["payload"]))
    payload[position] ^= 0x01
    tampered = reencode(envelope, bytes(payload))
    assert reason_of(tampered) == "signature does not verify with the published key"
    assert not sslib_verifies(tampered)


def test_a_signature_by_an_unpublished_key_is_rejected():
    other = seeded_key(2)
    envelope = sign(statement(), other, key_id(other.public_key()))
    assert reason_of(envelope) == "signing key id is not in the JWKS"
    # Claiming the published key's id does not help: the signature is checked with its key.
    forged = sign(statement(), other, KID)
    assert reason_of(forged) == "signature does not verify with the published key"
    assert not sslib_verifies(forged)


def test_a_key_id_that_is_not_the_thumbprint_is_rejected():
    entry = {**jwk_entry(KEY), "kid": "my-key-1"}
    envelope = sign(statement(), KEY, "my-key-1")
    assert sslib_verifies(envelope) is False  # its key id is the thumbprint: no match either
    assert (
        reason_of(envelope, jwks_of(entry))
        == "key id is not the RFC 7638 thumbprint of the published key"
    )
    # A JWKS entry naming our kid but holding another key fails the same way.
    swapped = {**jwk_entry(seeded_key(3)), "kid": KID}
    assert reason_of(sign(statement(), KEY, KID), jwks_of(swapped)) == (
        "key id is not the RFC 7638 thumbprint of the published key"
    )


# --- the hash chain -------------------------------------------------------------------------


def test_a_chain_verifies_link_by_link():
    envelopes = chain(KEY, 3)
    assert payload_of(envelopes[0])["predicate"]["previous"] is None
    assert verify(envelopes[0], JWKS).statement["predicate"]["sequence"] == 1
    for prev, this in itertools.pairwise(envelopes):
        result = verify(this, JWKS, previous=prev)
        assert result.statement["predicate"]["previous"] == payload_digest(prev)
        assert sslib_verifies(this)


def test_a_wrong_previous_digest_is_rejected():
    first, _second, third = chain(KEY, 3)
    assert reason_of(third, previous=first) == (
        "previous digest does not match the previous attestation"
    )
    wrong = sign(statement(predicate(2, "sha256:" + "0" * 64)), KEY, KID)
    assert verify(wrong, JWKS).keyid == KID  # well formed on its own
    assert reason_of(wrong, previous=first) == (
        "previous digest does not match the previous attestation"
    )


def test_a_wrong_sequence_is_rejected():
    first = chain(KEY, 1)[0]
    skipped = sign(statement(predicate(3, payload_digest(first))), KEY, KID)
    assert reason_of(skipped, previous=first) == (
        "sequence does not follow the previous attestation's"
    )


def test_the_first_names_no_previous_and_only_the_first():
    assert reason_of(sign(statement(predicate(2, None)), KEY, KID)) == (
        "only the first attestation (sequence 1) may name no previous"
    )
    assert reason_of(sign(statement(predicate(1, "sha256:" + "a" * 64)), KEY, KID)) == (
        "the first attestation (sequence 1) must name no previous"
    )
    for bad in ("sha256:" + "A" * 64, "a" * 64, 7):
        assert reason_of(sign(statement(predicate(2, bad)), KEY, KID)) == (
            "predicate previous is not sha256:<64 hex digits>"
        )


def test_a_bad_previous_envelope_is_named():
    first, second = chain(KEY, 2)
    tampered = reencode(first, base64.b64decode(first["payload"]) + b" ")
    assert reason_of(second, previous=tampered) == (
        "previous attestation: signature does not verify with the published key"
    )


def test_an_attestation_issued_before_its_previous_is_rejected():
    first = chain(KEY, 1)[0]
    early = predicate(2, payload_digest(first), issued_at="2026-11-28T00:00:00Z")
    assert reason_of(sign(statement(early), KEY, KID), previous=first) == (
        "issued before the previous attestation"
    )


# --- key validity windows (rotation and revocation) -----------------------------------------


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_the_key_must_be_valid_when_the_attestation_was_issued():
    envelope = sign(statement(predicate(1, issued_at="2026-11-29T17:00:00Z")), KEY, KID)
    issued = epoch("2026-11-29T17:00:00")
    ok = [jwk_entry(KEY, nbf=issued), jwk_entry(KEY, nbf=NBF, exp=issued + 1)]
    for entry in ok:
        assert verify(envelope, jwks_of(entry)).keyid == KID
    assert reason_of(envelope, jwks_of(jwk_entry(KEY, nbf=issued + 1))) == (
        "signing key was not yet valid when the attestation was issued"
    )
    # Revoked at the instant of issue (exp is exclusive): the attestation no longer verifies.
    assert reason_of(envelope, jwks_of(jwk_entry(KEY, exp=issued))) == (
        "signing key had expired or was revoked when issued"
    )
    # `at` overrides the time the window is checked at (naive means UTC).
    assert reason_of(envelope, jwks_of(jwk_entry(KEY, exp=issued + 1)), at=datetime(2027, 1, 1))
    assert verify(envelope, jwks_of(jwk_entry(KEY, exp=issued + 1)), at=datetime(2026, 6, 1))


def test_an_old_key_still_verifies_old_attestations_after_rotation():
    old, new = KEY, seeded_key(4)
    rotated = epoch("2026-11-29T17:30:00")
    jwks = jwks_of(jwk_entry(old, exp=rotated), jwk_entry(new, nbf=rotated))
    before = sign(statement(predicate(1, issued_at="2026-11-29T17:00:00Z")), old, KID)
    after = sign(
        statement(predicate(2, payload_digest(before), issued_at="2026-11-29T18:00:00Z")),
        new,
        key_id(new.public_key()),
    )
    assert verify(before, jwks).keyid == KID
    assert verify(after, jwks, previous=before).keyid == key_id(new.public_key())
    late_old = sign(
        statement(predicate(2, payload_digest(before), issued_at="2026-11-29T18:00:00Z")), old, KID
    )
    assert reason_of(late_old, jwks) == "signing key had expired or was revoked when issued"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"nbf": "0"}, "published key nbf is not epoch seconds"),
        ({"exp": 1.5}, "published key exp is not epoch seconds"),
        ({"kty": "EC"}, "published key is not an OKP Ed25519 key"),
        ({"crv": "Ed448"}, "published key is not an OKP Ed25519 key"),
        ({"alg": "ES256"}, "published key is not for EdDSA signatures"),
        ({"use": "enc"}, "published key is not for EdDSA signatures"),
        ({"x": RFC8037_X + "="}, "published key x is not 32 bytes of base64url"),
        ({"x": None}, "published key x is not 32 bytes of base64url"),
    ],
)
def test_a_malformed_published_key_is_rejected(change, reason):
    assert reason_of(sign(statement(), KEY, KID), jwks_of({**jwk_entry(KEY), **change})) == reason


def test_a_kid_listed_twice_or_a_jwks_without_keys_is_rejected():
    envelope = sign(statement(), KEY, KID)
    assert reason_of(envelope, jwks_of(jwk_entry(KEY), jwk_entry(KEY))) == (
        "JWKS lists the signing key id twice"
    )
    assert reason_of(envelope, {"keys": "none"}) == "JWKS has no keys list"
    assert reason_of(envelope, []) == "JWKS has no keys list"


# --- malformed envelopes and payloads -------------------------------------------------------

GOOD = sign(statement(), KEY, KID)
SIG = GOOD["signatures"][0]["sig"]
ONE_SIGNATURE = "envelope must carry exactly one signature"
NO_VERIFY = "signature does not verify with the published key"
NOT_STATEMENT = f"payload is not an in-toto Statement ({STATEMENT_TYPE})"
BAD_SUBJECT = "a subject lacks a name or a sha256 digest"
BAD_SEQUENCE = "predicate sequence is not a positive integer"
OFFSET_TIME = "2026-11-29T17:00:00+00:00"  # the same instant, but not our one spelling
BAD_TIME = "predicate issued_at is not an RFC 3339 UTC time (...Z)"


def without(field: str) -> dict:
    return {k: v for k, v in GOOD.items() if k != field}


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        ([], "envelope is not a JSON object"),
        (without("payload"), "envelope has no payload"),
        (without("payloadType"), "envelope has no payloadType"),
        (without("signatures"), "envelope has no signatures"),
        ({**GOOD, "payloadType": "application/json"}, f"payloadType is not {PAYLOAD_TYPE}"),
        ({**GOOD, "payload": "not base64!"}, "payload is not base64"),
        ({**GOOD, "payload": "abcde"}, "payload is not base64"),
        ({**GOOD, "payload": 12}, "payload is not base64"),
        ({**GOOD, "signatures": []}, ONE_SIGNATURE),
        ({**GOOD, "signatures": GOOD["signatures"] * 2}, ONE_SIGNATURE),
        ({**GOOD, "signatures": {}}, ONE_SIGNATURE),
        ({**GOOD, "signatures": ["sig"]}, "signature needs keyid and sig"),
        ({**GOOD, "signatures": [{"sig": SIG}]}, "signature needs keyid and sig"),
        ({**GOOD, "signatures": [{"keyid": 1, "sig": "AA=="}]}, "signature keyid is not text"),
        ({**GOOD, "signatures": [{"keyid": KID, "sig": "%%"}]}, "signature is not base64"),
        ({**GOOD, "signatures": [{"keyid": KID, "sig": "AAAA"}]}, NO_VERIFY),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
def test_a_malformed_envelope_is_rejected_with_a_reason(envelope, reason):
    assert reason_of(envelope) == reason


def test_url_safe_and_unpadded_base64_are_accepted_as_dsse_requires():
    payload = base64.b64decode(GOOD["payload"])
    sig = base64.b64decode(GOOD["signatures"][0]["sig"])
    urlsafe = {
        **GOOD,
        "payload": base64.urlsafe_b64encode(payload).decode().rstrip("="),
        "signatures": [{"keyid": KID, "sig": base64.urlsafe_b64encode(sig).decode().rstrip("=")}],
    }
    assert verify(urlsafe, JWKS).payload_digest == payload_digest(GOOD)


def canonical_statement_with(**changes) -> bytes:
    return rfc8785.dumps({**statement(), **changes})


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "payload is not UTF-8"),
        (b"{not json", "payload is not JSON"),
        (b'{"a":1.5}', "payload contains a float (amounts are decimal strings)"),
        (b'{"a":NaN}', "payload contains NaN"),
        (b'{"a":1,"a":1}', "payload has a duplicate object key"),
        (b'"\\ud800"', "payload is not canonical JSON: text contains a lone surrogate"),
        (b"[" * 101 + b"]" * 101, "payload JSON nested too deeply"),
        (b"[" * 100000 + b"]" * 100000, "payload JSON nested too deeply"),
        (b'["' + b"[" * 200 + b'"]', NOT_STATEMENT),  # brackets in a string do not count
        (json.dumps(statement()).encode(), "payload is not canonical JSON (RFC 8785)"),
        (rfc8785.dumps(statement()) + b"\n", "payload is not canonical JSON (RFC 8785)"),
        (b"[]", NOT_STATEMENT),
        (canonical_statement_with(_type="x"), NOT_STATEMENT),
        (canonical_statement_with(predicateType="x"), f"predicateType is not {PREDICATE_TYPE}"),
        (canonical_statement_with(subject={}), "statement subject is not a list"),
        (canonical_statement_with(subject=[{"name": "a", "digest": {"sha1": "00"}}]), BAD_SUBJECT),
        (canonical_statement_with(subject=["a"]), BAD_SUBJECT),
        (canonical_statement_with(predicate=[]), "statement predicate is not an object"),
        (canonical_statement_with(predicate=predicate(sequence=0)), BAD_SEQUENCE),
        (canonical_statement_with(predicate=predicate(sequence=True)), BAD_SEQUENCE),
        (
            canonical_statement_with(predicate={"sequence": 1, "previous": None}),
            "predicate has no issued_at",
        ),
        (
            canonical_statement_with(predicate={"sequence": 1, "issued_at": "2026-11-29T17:00Z"}),
            "predicate has no previous (null on the first attestation)",
        ),
        (canonical_statement_with(predicate=predicate(issued_at=OFFSET_TIME)), BAD_TIME),
        (canonical_statement_with(predicate=predicate(issued_at="2026-13-29T17:00:00Z")), BAD_TIME),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
def test_a_malformed_payload_is_rejected_even_when_signed(payload, reason):
    envelope = signed_bytes(payload)
    assert sslib_verifies(envelope)  # the signature is good: the payload itself is refused
    assert reason_of(envelope) == reason


def test_payload_digest_needs_a_payload():
    for bad in ({}, [], {"payload": "!"}):
        with pytest.raises(AttestationInvalid):
            payload_digest(bad)  # type: ignore[arg-type]


def test_evidence_digest_is_a_subject():
    result = verify(GOOD, JWKS)
    assert subject_names_for(result.statement, hashlib.sha256(STATEMENT_BYTES).hexdigest()) == [
        "statement-custodian-a.csv"
    ]


# --- the published vector -------------------------------------------------------------------

# Not under tests/vectors/: the Merkle tests read every file there as a proof vector.
VECTOR = Path(__file__).resolve().parent / "vector_rfc8037.json"


def test_the_rfc8037_vector_is_reproduced_and_verified_independently():
    vector = json.loads(VECTOR.read_text(encoding="utf-8"))
    private_key = rfc8037_key()
    assert vector["private_key_d"] == RFC8037_D
    envelope = sign(vector["statement"], private_key, RFC8037_KID)
    assert envelope == vector["envelope"]
    result = verify(vector["envelope"], vector["jwks"])
    assert (result.keyid, result.payload_digest) == (RFC8037_KID, vector["payload_digest"])
    assert sslib_verifies(vector["envelope"], private_key)
    docs = (VECTOR.parents[2] / "docs" / "attestation-format.md").read_text(encoding="utf-8")
    assert vector["envelope"]["signatures"][0]["sig"] in docs
    assert vector["payload_digest"] in docs


# --- nothing but AttestationInvalid escapes -------------------------------------------------

any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


def replace_at(value, path: list[int], new):
    """``value`` with the node reached by ``path`` (indexes into dict items or lists) replaced."""
    if not path or not isinstance(value, (dict, list)) or not value:
        return new
    index = path[0] % len(value)
    if isinstance(value, dict):
        key = list(value)[index]
        return {**value, key: replace_at(value[key], path[1:], new)}
    return [*value[:index], replace_at(value[index], path[1:], new), *value[index + 1 :]]


@settings(max_examples=300, deadline=None)
@given(
    target=st.sampled_from(["envelope", "jwks", "previous"]),
    path=st.lists(st.integers(min_value=0, max_value=10), max_size=4),
    new=any_json,
)
def test_any_corruption_gives_a_reason_never_another_exception(target, path, new):
    first, second = chain(KEY, 2)
    parts = {"envelope": second, "jwks": JWKS, "previous": first}
    parts[target] = replace_at(parts[target], path, new)
    try:
        verify(parts["envelope"], parts["jwks"], previous=parts["previous"])
    except AttestationInvalid as exc:
        assert exc.reason and exc.reason.isprintable()


@settings(max_examples=300, deadline=None)
@given(path=st.lists(st.integers(min_value=0, max_value=10), max_size=6), new=any_json)
def test_a_signed_but_odd_statement_gives_a_verdict_and_printable_lines(path, new):
    # The signature is good, so every statement check and the report's display code run.
    odd = replace_at(statement(), path, new)
    try:
        payload = canonical_json(odd)
    except AttestationInvalid:
        payload = json.dumps(odd).encode()
    envelope = signed_bytes(payload)
    with tempfile.TemporaryDirectory() as tmp:
        env_path, keys_path = Path(tmp, "env.json"), Path(tmp, "keys.json")
        env_path.write_text(json.dumps(envelope), encoding="utf-8")
        keys_path.write_text(json.dumps(JWKS), encoding="utf-8")
        valid, lines = attestation_report(
            {"attestation": str(env_path), "keys": str(keys_path), "previous": None, "evidence": []}
        )
    assert lines[-1] == "VALID" if valid else lines[-1].startswith("INVALID: ")
    assert all(line.isascii() and line.isprintable() for line in lines)
    try:
        verify(envelope, JWKS)
    except AttestationInvalid:
        assert not valid
    else:
        assert valid


def test_rfc3339_writes_the_one_spelling_the_verifier_reads():
    from datetime import timedelta, timezone

    from audits.core.attestation import rfc3339

    paris = timezone(timedelta(hours=1))
    assert rfc3339(datetime(2026, 11, 29, 18, 0, tzinfo=paris)) == "2026-11-29T17:00:00Z"
    assert rfc3339(datetime(2026, 11, 29, 17, 0, 0, 1500)) == "2026-11-29T17:00:00.001500Z"
    pred = predicate(1, issued_at=rfc3339(datetime(2026, 11, 29, 17, 0, 0, 1500, tzinfo=UTC)))
    assert verify(sign(statement(pred), KEY, KID), JWKS).keyid == KID


def test_deep_nesting_is_refused_before_parsing_even_with_a_high_recursion_limit():
    # json's C parser would overflow the C stack here and kill the process, not raise.
    envelope = signed_bytes(b"[" * 2_000_000 + b"]" * 2_000_000)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000_000)
    try:
        assert reason_of(envelope) == "payload JSON nested too deeply"
    finally:
        sys.setrecursionlimit(limit)


def test_canonical_json_refuses_deep_nesting():
    with pytest.raises(AttestationInvalid, match="nested too deeply"):
        canonical_json(functools.reduce(lambda inner, _: [inner], range(100), []))
    # MAX_DEPTH levels are fine for both the encoder and the parser's pre-check.
    deepest = canonical_json(functools.reduce(lambda inner, _: [inner], range(99), []))
    assert deepest == b"[" * 100 + b"]" * 100
    assert reason_of(signed_bytes(deepest)) == NOT_STATEMENT


@pytest.mark.parametrize("document", [{"\ud800": 1}, {"a": {"b\udfff": "x"}}])
def test_a_lone_surrogate_object_name_is_refused_with_a_reason(document):
    # Sorting names by their UTF-16 encoding used to raise UnicodeEncodeError first.
    with pytest.raises(AttestationInvalid, match="lone surrogate"):
        canonical_json(document)
