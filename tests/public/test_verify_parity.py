"""The browser verifier (static/porapp/js/dsse-verify.js) against the Python reference verifier
(audits.core.attestation.verify): on a corpus of valid envelopes and of every kind of invalid
one, and on random corruptions of a real envelope, both must agree on valid/invalid and on the
reason, word for word. All evaluated in one page, in batches."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audits import attestations
from audits.core import attestation as core
from tests.attestation.helpers import (
    NBF,
    RFC8037_KID,
    RFC8037_X,
    chain,
    jwk_entry,
    jwks_of,
    payload_of,
    predicate,
    seeded_key,
    statement,
)
from tests.attestations.conftest import NOW, key_file, reconcile, world  # noqa: F401
from tests.webpage import assert_clean

VECTOR = Path(__file__).parent.parent / "attestation" / "vector_rfc8037.json"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KEY = seeded_key(1)
KID = core.key_id(KEY.public_key())
JWKS = jwks_of(jwk_entry(KEY))

# Each case: (label, envelope JSON text, JWKS JSON text, previous JSON text or None, at).
# JSON text, not objects, so the browser sees exactly what Python's json.loads sees (1.0 is a
# float to both, not the integer Playwright's serialiser would make of it).
JS_VERIFY = """async (cases) => {
  const v = await import('/static/porapp/js/dsse-verify.js');
  const out = [];
  for (const [label, env, keys, prev, at] of cases) {
    try {
      await v.verifyAttestation(v.parseJson(env, 'envelope'), v.parseJson(keys), {
        previous: prev === null ? null : v.parseJson(prev),
        at: at === null ? null : new Date(at * 1000),
      });
      out.push('VALID');
    } catch (err) {
      out.push(err instanceof v.VerifyError ? err.reason : 'JS ERROR ' + err);
    }
  }
  return out;
}"""


def python_verdict(envelope: str, jwks: str, previous: str | None, at: int | None) -> str:
    try:
        json.loads(envelope)
    except ValueError:
        return "envelope is not JSON"
    try:
        core.verify(
            json.loads(envelope),
            json.loads(jwks),
            previous=json.loads(previous) if previous is not None else None,
            at=datetime.fromtimestamp(at, UTC) if at is not None else None,
        )
    except core.AttestationInvalid as exc:
        return exc.reason
    return "VALID"


def signed_bytes(payload: bytes, key=KEY, kid=KID, payload_type=core.PAYLOAD_TYPE) -> dict:
    sig = key.sign(core.pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": kid, "sig": base64.b64encode(sig).decode()}],
    }


def signed(stmt: dict, key=KEY) -> dict:
    return core.sign(stmt, key, core.key_id(key.public_key()))


def urlsafe(text: str) -> str:
    return text.replace("+", "-").replace("/", "_")


def with_pred(**changes) -> dict:
    pred = predicate()
    for name, value in changes.items():
        if value is ...:
            del pred[name]
        else:
            pred[name] = value
    return signed(statement(pred))


def corpus() -> list[tuple[str, object, object, object, int | None]]:
    first, second, third = chain(KEY, 3)
    good = first
    stmt_bytes = core.canonical_json(statement())
    # One environment per case; jwks/previous may be objects (dumped) or raw JSON text.
    cases: list[tuple[str, object, object, object, int | None]] = []

    def add(label, envelope, jwks=JWKS, previous=None, at=None):
        cases.append((label, envelope, jwks, previous, at))

    def changed(**fields):
        env = copy.deepcopy(good)
        for name, value in fields.items():
            if value is ...:
                del env[name]
            else:
                env[name] = value
        return env

    def sig_changed(**fields):
        env = copy.deepcopy(good)
        env["signatures"][0].update(fields)
        for name, value in fields.items():
            if value is ...:
                del env["signatures"][0][name]
        return env

    def key_changed(**fields):
        entry = jwk_entry(KEY)
        for name, value in fields.items():
            if value is ...:
                del entry[name]
            else:
                entry[name] = value
        return jwks_of(entry)

    add("valid #1", first)
    add("valid #2 with its previous", second, previous=first)
    add("valid #3 without its previous", third)
    add(
        "valid URL-safe",
        {
            **good,
            "payload": urlsafe(good["payload"]),
            "signatures": [{**good["signatures"][0], "sig": urlsafe(good["signatures"][0]["sig"])}],
        },
    )
    add(
        "valid unpadded",
        {
            **good,
            "payload": good["payload"].rstrip("="),
            "signatures": [
                {**good["signatures"][0], "sig": good["signatures"][0]["sig"].rstrip("=")}
            ],
        },
    )
    add("valid at a given time", first, at=NBF + 10)
    add("valid with extra key fields", first, jwks=key_changed(exp=NBF * 2, use=...))
    add("envelope is a list", [good])
    add("envelope is a string", "envelope")
    for field in ("payloadType", "payload", "signatures"):
        add(f"no {field}", changed(**{field: ...}))
    add("other payloadType", changed(payloadType="application/json"))
    add("payloadType not text", changed(payloadType=1))
    add("payload bad character", changed(payload=good["payload"][:-4] + "AA!="))
    add("payload 3 padding", changed(payload=good["payload"].rstrip("=") + "==="))
    add("payload length 1 mod 4", changed(payload="QUJDR"))
    add("payload not text", changed(payload=123))
    add("signatures empty", changed(signatures=[]))
    add("two signatures", changed(signatures=good["signatures"] * 2))
    add("signatures not a list", changed(signatures=good["signatures"][0]))
    add("signature without sig", sig_changed(sig=...))
    add("signature without keyid", sig_changed(keyid=...))
    add("signature entry a string", changed(signatures=["sig"]))
    add("keyid not text", sig_changed(keyid=5))
    add("sig not base64", sig_changed(sig="*" * 88))
    add("JWKS without keys", good, jwks={"key": []})
    add("JWKS keys not a list", good, jwks={"keys": {}})
    add("unpublished key", signed(statement(), seeded_key(2)))
    add("kid listed twice", good, jwks=jwks_of(jwk_entry(KEY), jwk_entry(KEY)))
    add("kty RSA", good, jwks=key_changed(kty="RSA"))
    add("crv X25519", good, jwks=key_changed(crv="X25519"))
    add("alg ES256", good, jwks=key_changed(alg="ES256"))
    add("use enc", good, jwks=key_changed(use="enc"))
    add("alg null", good, jwks=key_changed(alg=None))
    add("x padded", good, jwks=key_changed(x=RFC8037_X + "="))
    add("x missing", good, jwks=key_changed(x=...))
    x = jwk_entry(KEY)["x"]
    add("x non-canonical last character", good, jwks=key_changed(x=x[:-1] + chr(ord(x[-1]) ^ 1)))
    attacker = seeded_key(3)
    add("attacker key under the real kid", good, jwks=key_changed(x=jwk_entry(attacker)["x"]))
    tampered = bytearray(stmt_bytes)
    tampered[40] ^= 1
    add("tampered payload", {**good, "payload": base64.b64encode(bytes(tampered)).decode()})
    add(
        "signature of another type",
        signed_bytes(stmt_bytes, payload_type="text/plain") | {"payloadType": core.PAYLOAD_TYPE},
    )
    add("payload not UTF-8", signed_bytes(b'{"a":"\xff"}'))
    add("payload UTF-8 surrogate", signed_bytes(b'{"a":"\xed\xa0\x80"}'))
    add("payload with BOM", signed_bytes(b"\xef\xbb\xbf" + stmt_bytes))
    add("nested 101", signed_bytes(b"[" * 101 + b"]" * 101))
    add("nested 101 with a float", signed_bytes(b"[" * 101 + b"1.5" + b"]" * 101))
    add("nested 100 empty", signed_bytes(b"[" * 100 + b"]" * 100))
    add("nested 100 with a value", signed_bytes(b"[" * 100 + b"1" + b"]" * 100))
    add("brackets in strings do not nest", signed_bytes(b'["' + b"[" * 200 + b'"]'))
    add("not JSON", signed_bytes(b'{"a":}'))
    add("trailing garbage", signed_bytes(stmt_bytes + b"x"))
    add("trailing whitespace", signed_bytes(stmt_bytes + b" "))
    add("float", signed_bytes(b'{"a":1.0}'))
    add("exponent", signed_bytes(b'{"a":1e5}'))
    add("float after a duplicate", signed_bytes(b'{"a":{"b":1,"b":2},"c":1.5}'))
    add("duplicate before a float", signed_bytes(b'{"a":{"b":1,"b":2}}'))
    add("NaN", signed_bytes(b'{"a":NaN}'))
    add("-Infinity", signed_bytes(b"[-Infinity]"))
    add("control character in a string", signed_bytes(b'["a\nb"]'))
    add("bad escape", signed_bytes(b'["\\x"]'))
    add("leading zero", signed_bytes(b"[01]"))
    add("minus zero", signed_bytes(b"[-0]"))
    add("huge integer", signed_bytes(b'{"b":"\\ud800","a":9007199254740992}'))
    add("integer at the limit", signed_bytes(b"[9007199254740991]"))
    add("lone surrogate first", signed_bytes(b'{"a":"\\ud800","b":9007199254740992}'))
    add("escaped pair is canonical raw", signed_bytes(b'["\\ud83d\\ude00"]'))
    add("4301 digits", signed_bytes(b"[" + b"1" * 4301 + b"]"))
    add("unsorted keys", signed_bytes(b'{"b":1,"a":2}'))
    add("escaped slash", signed_bytes(b'["\\/"]'))
    add("upper-case escape", signed_bytes(b'["\\u001F"]'))
    add("lower-case escape", signed_bytes(b'["\\u001f"]'))
    add("\\u007f escaped", signed_bytes(b'["\\u007f"]'))
    add("object keys sorted by UTF-16", signed_bytes('{"\ufb01":1,"\U0001f600":2}'.encode()))
    add("not a Statement", signed_bytes(b"[]"))
    add("wrong _type", signed({**statement(), "_type": "https://in-toto.io/Statement/v0.1"}))
    add("wrong predicateType", signed({**statement(), "predicateType": "x"}))
    add("subject not a list", signed({**statement(), "subject": {}}))
    add("subject without digest", signed({**statement(), "subject": [{"name": "a"}]}))
    add(
        "subject upper-case hex",
        signed({**statement(), "subject": [{"name": "a", "digest": {"sha256": "A" * 64}}]}),
    )
    add("subject a string", signed({**statement(), "subject": ["a"]}))
    add("predicate a list", signed({**statement(), "predicate": []}))
    add("sequence 0", with_pred(sequence=0))
    add("sequence true", with_pred(sequence=True))
    add("sequence text", with_pred(sequence="1"))
    add("no issued_at", with_pred(issued_at=...))
    add("issued_at a number", with_pred(issued_at=5))
    add("no previous", with_pred(previous=...))
    add("null previous on #2", with_pred(sequence=2, previous=None))
    add("previous malformed", with_pred(sequence=2, previous="sha256:" + "A" * 64))
    add("previous on #1", with_pred(previous="sha256:" + "a" * 64))
    add("issued_at +00:00", with_pred(issued_at="2026-11-29T17:01:00+00:00"))
    add("issued_at 30 February", with_pred(issued_at="2026-02-30T17:01:00Z"))
    add("issued_at 29 February 2028", with_pred(issued_at="2028-02-29T17:01:00.5Z"))
    add("issued_at 29 February 2100", with_pred(issued_at="2100-02-29T17:01:00Z"))
    add("issued_at hour 24", with_pred(issued_at="2026-11-29T24:00:00Z"))
    add("issued_at second 60", with_pred(issued_at="2026-11-29T17:01:60Z"))
    add("issued_at year 0", with_pred(issued_at="0000-11-29T17:01:00Z"))
    add("issued_at 7 fraction digits", with_pred(issued_at="2026-11-29T17:01:00.1234567Z"))
    # Envelope and JWKS texts read as Python's json.loads reads them (the last duplicate wins).
    good_text = json.dumps(good)
    add(
        "envelope text with a duplicate payload",
        good_text.replace('"payload":', '"payload": "x", "payload":', 1),
    )
    add("envelope text with the bad duplicate last", good_text[:-1] + ', "payloadType": "x"}')
    add("envelope text not JSON", good_text[:-1])
    add("nbf with an exponent", good, jwks=json.dumps(key_changed()).replace(f"{NBF}", "1e9"))
    add("nbf NaN", good, jwks=json.dumps(key_changed()).replace(f"{NBF}", "NaN"))
    add("nbf a float", good, jwks=json.dumps(key_changed()).replace(f"{NBF}", f"{NBF}.0"))
    add("exp text", good, jwks=key_changed(exp="2027"))
    add("nbf true", good, jwks=key_changed(nbf=True))
    add("not yet valid", good, jwks=key_changed(nbf=NBF * 2))
    issued = int(datetime(2026, 11, 29, 17, 1, tzinfo=UTC).timestamp())
    add("nbf exactly issued_at", good, jwks=key_changed(nbf=issued))
    add("exp exactly issued_at", good, jwks=key_changed(exp=issued))
    add("exp one second later", good, jwks=key_changed(exp=issued + 1))
    add("expired at a given time", good, jwks=key_changed(exp=NBF + 100), at=NBF + 100)
    add("huge nbf", good, jwks=key_changed(nbf=10**30))
    add("previous invalid", second, previous={**first, "payloadType": "x"})
    add("previous is the wrong attestation", third, previous=first)
    add("previous is itself", second, previous=second)
    add(
        "sequence does not follow",
        signed(statement(predicate(3, core.payload_digest(first)))),
        previous=first,
    )
    early = predicate(2, core.payload_digest(first))
    early["issued_at"] = "2026-11-29T17:00:59.999999Z"
    add("issued before the previous", signed(statement(early)), previous=first)
    early["issued_at"] = "2026-11-29T17:01:00Z"
    add("issued at the same time as the previous", signed(statement(early)), previous=first)
    return cases


def as_text(value) -> str:
    return value if isinstance(value, str) and value.startswith(("{", "[")) else json.dumps(value)


def js_verdicts(page, cases) -> list[tuple[str, str]]:
    texts = [
        (label, as_text(env), as_text(keys), None if prev is None else as_text(prev), at)
        for label, env, keys, prev, at in cases
    ]
    return list(zip([t[0] for t in texts], page.evaluate(JS_VERIFY, texts), strict=True))


def evaluate(page, cases) -> list[tuple[str, str, str]]:
    texts = [
        (label, as_text(env), as_text(keys), None if prev is None else as_text(prev), at)
        for label, env, keys, prev, at in cases
    ]
    js = page.evaluate(JS_VERIFY, texts)
    return [
        (label, python_verdict(*rest), got) for (label, *rest), got in zip(texts, js, strict=True)
    ]


@pytest.fixture
def page(live_server, open_page):
    page = open_page(f"{live_server.url}/attestations/verify/")
    yield page
    assert_clean(page)


def test_js_and_python_agree_on_every_case(page):
    results = evaluate(page, corpus())
    assert len(results) >= 25
    disagreements = [r for r in results if r[1] != r[2]]
    assert disagreements == []
    verdicts = {label: python for label, python, _ in results}
    # The corpus covers both outcomes and many distinct reasons.
    assert verdicts["valid URL-safe"] == verdicts["valid unpadded"] == "VALID"
    assert verdicts["tampered payload"] == "signature does not verify with the published key"
    assert verdicts["float after a duplicate"] == "payload has a duplicate object key"
    assert len(set(verdicts.values())) >= 40, sorted(set(verdicts.values()))


def test_a_lone_surrogate_key_is_refused_by_both_with_the_same_reason(page):
    # Python's verifier once crashed here with UnicodeEncodeError (sorting keys by their
    # UTF-16 encoding) instead of refusing with a reason.
    envelope = signed_bytes(b'{"\\ud800":1}')
    with pytest.raises(core.AttestationInvalid) as python:
        core.verify(envelope, JWKS)
    ((_, js),) = js_verdicts(page, [("key", envelope, JWKS, None, None)])
    assert js == python.value.reason
    assert js == "payload is not canonical JSON: text contains a lone surrogate"


def test_js_known_answers(page):
    vector = json.loads(VECTOR.read_text(encoding="utf-8"))
    got = page.evaluate(
        """async ([x, vector]) => {
          const v = await import('/static/porapp/js/dsse-verify.js');
          const env = v.parseJson(JSON.stringify(vector.envelope));
          const keys = v.parseJson(JSON.stringify(vector.jwks));
          const verified = await v.verifyAttestation(env, keys);
          const pae = new TextDecoder().decode(
            v.pae('http://example.com/HelloWorld', new TextEncoder().encode('hello world')));
          return {
            kid: await v.keyId({kty: 'OKP', crv: 'Ed25519', x}),
            pae,
            digest: await v.payloadDigest(env),
            verifiedDigest: verified.payloadDigest,
            statement: v.canonicalJson(verified.statement),
            canonical: v.canonicalJson(
              {b: [1, 'é\\n\\u0001', null], a: {'\\u{1F600}': true, '\\uFB01': false}}),
          };
        }""",
        [RFC8037_X, vector],
    )
    assert got["kid"] == RFC8037_KID
    assert got["pae"] == "DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert got["digest"] == got["verifiedDigest"] == vector["payload_digest"]
    assert got["statement"].encode() == core.canonical_json(vector["statement"])
    assert (
        got["canonical"]
        == core.canonical_json(
            {"b": [1, "é\n\u0001", None], "a": {"\U0001f600": True, "\ufb01": False}}
        ).decode()
    )


def test_subject_names_for(page):
    stmt = statement()
    digest = stmt["subject"][0]["digest"]["sha256"]
    got = page.evaluate(
        """async ([s, d]) => {
          const v = await import('/static/porapp/js/dsse-verify.js');
          return [v.subjectNamesFor(s, d.toUpperCase()), v.subjectNamesFor(s, '0'.repeat(64))];
        }""",
        [stmt, digest],
    )
    assert got == [core.subject_names_for(stmt, digest), []] and got[0] == [
        "statement-custodian-a.csv"
    ]


# --- random corruption of a real envelope ----------------------------------------------------

BASE64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=!. "
mutation = st.tuples(
    st.sampled_from(["payload-byte", "payload-char", "sig-char", "keyid-char", "type-char"]),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=1, max_value=255),
    st.sampled_from(BASE64_CHARS),
)


def mutate(envelope: dict, how: tuple[str, int, int, str]) -> dict:
    kind, where, xor, char = how
    env = copy.deepcopy(envelope)
    sig = env["signatures"][0]

    def swap(text: str) -> str:
        n = where % len(text)
        new = char if char != text[n] else chr(ord(char) ^ 1)
        return text[:n] + new + text[n + 1 :]

    if kind == "payload-byte":
        raw = bytearray(base64.b64decode(env["payload"]))
        raw[where % len(raw)] ^= xor
        env["payload"] = base64.b64encode(bytes(raw)).decode()
    elif kind == "payload-char":
        env["payload"] = swap(env["payload"])
    elif kind == "sig-char":
        sig["sig"] = swap(sig["sig"])
    elif kind == "keyid-char":
        sig["keyid"] = swap(sig["keyid"])
    else:
        env["payloadType"] = swap(env["payloadType"])
    return env


def same_bytes(env: dict, real: dict) -> bool:
    def raw(e):
        sig = e["signatures"][0]
        return core._b64decode(e["payload"], "p"), core._b64decode(sig["sig"], "s"), sig["keyid"]

    return env["payloadType"] == real["payloadType"] and raw(env) == raw(real)


def test_random_corruptions_of_a_real_envelope(page, world, key_file):  # noqa: F811
    from audits.attestation_keys import jwks as published

    world.backed()
    reconcile(world)
    real = json.loads(attestations.issue("changed", NOW).envelope)
    keys = published()
    assert evaluate(page, [("real", real, keys, None, None)]) == [("real", "VALID", "VALID")]
    assert payload_of(real)["predicate"]["sequence"] == 1

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(mutation, min_size=12, max_size=12))
    def batch(hows):
        cases = [(repr(h), mutate(real, h), keys, None, None) for h in hows]
        results = evaluate(page, cases)
        for (label, python, js), (_, env, *_rest) in zip(results, cases, strict=True):
            assert python == js, label
            if python == "VALID":  # only another spelling of the same bytes may pass
                assert same_bytes(env, real), label

    batch()
