"""The Verify button and the check-a-file page in a real browser, on attestations issued by
`audits.attestations.issue`: valid ones say Valid and show what was signed; a payload changed
on the way (a tampering network or server) or in the file, a key nobody published, a JWKS with
an attacker's key under our kid and a wrong previous attestation each say Invalid, with the
Python verifier's reason."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

import pytest

from audits import attestations
from audits.attestation_keys import jwks as published_jwks
from audits.core import attestation as core
from tests.attestation.helpers import jwk_entry, seeded_key
from tests.attestations.conftest import NOW, key_file, reconcile, world  # noqa: F401
from tests.webpage import DESKTOP, PHONE, assert_clean, axe, no_sideways_scroll, serious

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The file World.backed() submits for each custodian (500 of 1000 each).
EVIDENCE = b"isin,quantity,account,balance_type\nUS0378331005,500,A1,settled\n"
EVIDENCE_DIGEST = hashlib.sha256(EVIDENCE).hexdigest()
BAD_SIGNATURE = "signature does not verify with the published key"


@pytest.fixture
def issued(world, key_file):  # noqa: F811
    """Attestations #1 and #2 (linked), as the service issues them."""
    world.backed()
    reconcile(world)
    first = attestations.issue("changed", NOW)
    second = attestations.issue("heartbeat", NOW + timedelta(hours=24))
    return first, second


def envelope(attestation) -> dict:
    return json.loads(attestation.envelope)


def tampered(attestation) -> bytes:
    """The envelope with one byte of its payload changed (a figure: reserves 1000 become 2000)."""
    env = envelope(attestation)
    payload = base64.b64decode(env["payload"])
    where = payload.index(b'"1000')
    changed = payload[:where] + b'"2' + payload[where + 2 :]
    assert len(changed) == len(payload) and changed != payload
    return json.dumps({**env, "payload": base64.b64encode(changed).decode()}).encode()


def result(page) -> tuple[str, str]:
    """(verdict, text) of the result box once a check has finished."""
    box = page.wait_for_selector("#verify-result[data-verdict]")
    return box.get_attribute("data-verdict"), " ".join(box.inner_text().split())


def press_verify(page) -> tuple[str, str]:
    page.focus("#verify-button")
    page.keyboard.press("Enter")
    return result(page)


def accessible(page) -> None:
    assert serious(axe(page)) == []
    no_sideways_scroll(page)
    assert_clean(page)


def test_verify_button_says_valid_and_shows_what_was_signed(live_server, open_page, issued):
    first, second = issued
    signed = attestations.statement_of(second)["predicate"]
    kid = second.key.kid

    page = open_page(f"{live_server.url}/attestations/2/", DESKTOP)
    verdict, text = press_verify(page)
    assert verdict == "valid", text
    assert text.startswith("Valid")
    assert f"signature by key {kid} verifies" in text
    assert "key id is the key's RFC 7638 thumbprint" in text
    assert f"key valid at issue time ({signed['issued_at']})" in text
    assert "payload is canonical JSON" in text
    assert f"chain link to #1 checked ({core.payload_digest(envelope(first))})" in text
    assert signed["issued_at"] in text and signed["previous"] in text
    (asset,) = signed["assets"]
    rows = page.locator("#verify-result tbody tr").all_inner_texts()
    assert [r.split() for r in rows] == [
        [asset["code"], asset["status"], json.dumps(asset["eligible"]), str(asset["ratio"])]
    ]
    assert page.locator("#verify-result dd").first.inner_text() == "2"
    assert page.is_enabled("#verify-button")
    assert page.evaluate("document.activeElement.id") == "verify-button"  # focus kept
    accessible(page)

    page = open_page(f"{live_server.url}/attestations/1/", PHONE)
    verdict, text = press_verify(page)
    assert verdict == "valid" and "first attestation: no previous" in text, text
    accessible(page)


def test_a_payload_changed_on_the_way_is_invalid(live_server, open_page, issued):
    _, second = issued
    page = open_page("about:blank")
    page.route(
        "**/attestations/2/envelope.json",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=tampered(second)
        ),
    )
    page.goto(f"{live_server.url}/attestations/2/")
    verdict, text = press_verify(page)
    assert verdict == "invalid", text
    assert text == f"Invalid Reason: {BAD_SIGNATURE}"
    assert page.locator("#verify-result table").count() == 0  # nothing unverified is shown
    assert_clean(page)


def test_a_jwks_with_an_attackers_key_under_our_kid_is_invalid(live_server, open_page, issued):
    keys = published_jwks()
    keys["keys"][0]["x"] = jwk_entry(seeded_key(7))["x"]
    page = open_page("about:blank")
    page.route(
        "**/.well-known/jwks.json",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(keys)
        ),
    )
    page.goto(f"{live_server.url}/attestations/2/")
    verdict, text = press_verify(page)
    assert verdict == "invalid"
    assert text == "Invalid Reason: key id is not the RFC 7638 thumbprint of the published key"
    assert_clean(page)


def choose(page, selector: str, name: str, data: bytes) -> None:
    page.set_input_files(
        selector, files=[{"name": name, "mimeType": "application/json", "buffer": data}]
    )


def check_file(page, env: bytes, previous: bytes | None = None, evidence=()) -> tuple[str, str]:
    choose(page, "#envelope-file", "attestation.dsse.json", env)
    if previous is None:
        page.set_input_files("#previous-file", files=[])
    else:
        choose(page, "#previous-file", "previous.dsse.json", previous)
    page.set_input_files(
        "#evidence-file",
        files=[{"name": n, "mimeType": "text/csv", "buffer": b} for n, b in evidence],
    )
    page.click("#verify-file button[type=submit]")
    return result(page)


def test_check_a_file_page(live_server, open_page, issued):
    first, second = issued
    one = first.envelope.encode()
    two = second.envelope.encode()
    stranger = core.sign(
        attestations.statement_of(second), seeded_key(9), core.key_id(seeded_key(9).public_key())
    )
    subjects = attestations.statement_of(second)["subject"]
    assert EVIDENCE_DIGEST in [s["digest"]["sha256"] for s in subjects]

    for viewport in (DESKTOP, PHONE):
        page = open_page(f"{live_server.url}/attestations/verify/", viewport)
        accessible(page)

        verdict, text = check_file(page, two, one, [("statement.csv", EVIDENCE)])
        assert verdict == "valid", text
        assert "chain link to #1 checked" in text
        assert f'evidence file "statement.csv" sha256:{EVIDENCE_DIGEST} is subject' in text
        accessible(page)

        verdict, text = check_file(page, tampered(second))
        assert (verdict, text) == ("invalid", f"Invalid Reason: {BAD_SIGNATURE}")

        verdict, text = check_file(page, json.dumps(stranger).encode())
        assert text == "Invalid Reason: signing key id is not in the JWKS"

        verdict, text = check_file(page, two, two)
        assert text == "Invalid Reason: previous digest does not match the previous attestation"

        verdict, text = check_file(page, one, None, [("other.csv", b"not evidence\n")])
        other = hashlib.sha256(b"not evidence\n").hexdigest()
        assert text == (
            f'Invalid Reason: evidence file "other.csv" (sha256:{other}) '
            "is not a subject of this attestation"
        )
        verdict, text = check_file(page, b"not json")
        assert text == "Invalid Reason: envelope file is not JSON"
        accessible(page)


DISABLED = [
    (
        "Object.defineProperty(Crypto.prototype, 'subtle', {get: () => undefined})",
        "no Web Crypto here",
    ),
    (
        "SubtleCrypto.prototype.importKey = "
        "() => Promise.reject(new DOMException('no', 'NotSupportedError'))",
        "cannot check Ed25519 signatures",
    ),
]


def test_a_browser_without_ed25519_says_it_cannot_check(live_server, open_page, issued):
    # "Cannot check" is not "Invalid": the attestation was never judged.
    for disable, says in DISABLED:
        page = open_page("about:blank")
        page.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))
        page.add_init_script(disable)
        page.goto(f"{live_server.url}/attestations/1/")
        verdict, text = press_verify(page)
        assert verdict == "unsupported", text
        assert text.startswith("Cannot check in this browser") and says in text
        assert "Invalid" not in text
        assert_clean(page)
