"""The "check your balance" page (/proofs/verify/) in a real browser, on bundles the service
makes from published trees and attestations signed the way the service signs them: a user's
bundle verifies, pasted, chosen or dropped; a changed balance, a changed sibling, a root the
attestation does not state and a changed attestation are each refused, saying which check
failed and why. And the browser's proof recomputation (mst-verify.js) against the Python
verifier's, case by case, in one page."""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path

import pytest

from audits import liability_proofs
from audits.core.bundle import BundleInvalid, check_attested, check_bundle
from audits.core.merkle import verify_proof
from tests.liabilities.trees import KID, attest, publish
from tests.webpage import DESKTOP, PHONE, assert_clean, axe, no_sideways_scroll, serious

# A function, not a bare expression: Playwright polls an expression with eval(), which the
# page's CSP (no 'unsafe-eval') refuses whenever the first check is not already true.
FILLED = "() => document.querySelector('#bundle-text').value.length > 0"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


@pytest.fixture
def made(liability_storage):
    snapshot = publish(
        {
            "AAPLx": {"u-1": 12_000_000, "u-2": 251_000_000, "u-5": 3},
            "MSFTx": {"u-1": 1_500_000, "u-3": 7},
        }
    )
    attestation = attest(snapshot)
    return snapshot, attestation, liability_proofs.bundle(snapshot.pk, "u-1")


def outcome(page) -> tuple[str, str]:
    box = page.wait_for_selector("#verify-result[data-verdict]")
    return box.get_attribute("data-verdict"), " ".join(box.inner_text().split())


def paste(page, bundle) -> tuple[str, str]:
    text = bundle if isinstance(bundle, str) else json.dumps(bundle, indent=1)
    page.fill("#bundle-text", text)
    page.click("#proof-form button[type=submit]")
    return outcome(page)


def accessible(page) -> None:
    assert serious(axe(page)) == []
    no_sideways_scroll(page)
    assert_clean(page)


def valid_sentence() -> str:
    return (
        "Your 12 AAPLx are included in total liabilities of 263.000003 AAPLx, attested on "
        f"2026-11-28T10:00:00Z by key {KID} (attestation #1). "
        "Your 1.5 MSFTx are included in total liabilities of 1.500007 MSFTx, attested on "
        f"2026-11-28T10:00:00Z by key {KID} (attestation #1)."
    )


def test_a_users_bundle_verifies(live_server, open_page, made):
    snapshot, _, bundle = made
    page = open_page(f"{live_server.url}/proofs/verify/", DESKTOP)
    accessible(page)
    verdict, text = paste(page, bundle)
    assert verdict == "valid", text
    assert text.startswith("Included " + valid_sentence()), text
    assert "signature by key" in text and f"attested for snapshot {snapshot.pk}" in text
    rows = page.locator("#verify-result tbody tr").all_inner_texts()
    assert [r.split() for r in rows] == [
        ["AAPLx", "12", "263.000003"],
        ["MSFTx", "1.5", "1.500007"],
    ]
    assert page.get_attribute("#verify-result", "role") == "status"
    accessible(page)


def test_a_bundle_file_chosen_or_dropped_on_a_phone(live_server, open_page, made):
    _, _, bundle = made
    data = json.dumps(bundle).encode()
    page = open_page(f"{live_server.url}/proofs/verify/", PHONE)
    page.set_input_files(
        "#bundle-file",
        files=[{"name": "bundle.json", "mimeType": "application/json", "buffer": data}],
    )
    page.wait_for_function(FILLED)
    page.click("#proof-form button[type=submit]")
    verdict, text = outcome(page)
    assert verdict == "valid", text
    accessible(page)

    page = open_page(f"{live_server.url}/proofs/verify/", PHONE)
    transfer = page.evaluate_handle(
        """text => {
          const dt = new DataTransfer();
          dt.items.add(new File([text], 'bundle.json', {type: 'application/json'}));
          return dt;
        }""",
        data.decode(),
    )
    page.dispatch_event("#bundle-drop", "drop", {"dataTransfer": transfer})
    page.wait_for_function(FILLED)
    page.click("#proof-form button[type=submit]")
    verdict, text = outcome(page)
    assert verdict == "valid" and valid_sentence() in text, text
    accessible(page)


def changed(bundle, edit) -> dict:
    copied = copy.deepcopy(bundle)
    edit(copied)
    return copied


def test_tampered_bundles_are_refused_with_the_failed_check(live_server, open_page, made):
    snapshot, _, bundle = made
    other = publish({"AAPLx": {"u-1": 99_000_000, "u-2": 1}})
    forged = {**liability_proofs.bundle(other.pk, "u-1"), "snapshot": bundle["snapshot"]}
    forged["attestation"] = bundle["attestation"]
    recompute = "Not verified Failed check: Recomputing your proofs Reason: "
    compare = "Not verified Failed check: Comparing your roots with the attested ones Reason: "
    cases = [
        (
            changed(
                bundle, lambda b: b["proofs"][0]["leaf"]["balances"].__setitem__(0, "99000000")
            ),
            recompute + "proof 1: recomputed root hash differs from root.hash",
        ),
        (
            changed(bundle, lambda b: b["proofs"][1]["path"][0].__setitem__("hash", "0" * 64)),
            recompute + "proof 2: recomputed root hash differs from root.hash",
        ),
        (
            forged,
            compare
            + f"AAPLx: the proof's root is not the root attested for snapshot {snapshot.pk}",
        ),
        ("{not json", "Not verified Failed check: Reading the bundle Reason: bundle is not JSON"),
    ]
    page = open_page(f"{live_server.url}/proofs/verify/", DESKTOP)
    for case, says in cases:
        verdict, text = paste(page, case)
        assert (verdict, text) == ("invalid", says)
        assert page.locator("#verify-result table").count() == 0  # no unverified figures
    accessible(page)


def test_a_snapshot_no_attestation_states_is_refused(live_server, open_page, made):
    # `made` attested another snapshot: the latest attestation names only that one.
    later = publish({"AAPLx": {"u-1": 1}})  # published, never attested
    page = open_page(f"{live_server.url}/proofs/verify/", PHONE)
    verdict, text = paste(page, liability_proofs.bundle(later.pk, "u-1"))
    assert verdict == "invalid"
    assert text == (
        "Not verified Failed check: Comparing your roots with the attested ones Reason: "
        f"AAPLx: the attestation's liabilities are of another snapshot, not snapshot {later.pk}"
    )
    accessible(page)


def test_a_changed_attestation_is_refused(live_server, open_page, made):
    _, attestation, bundle = made
    envelope = json.loads(attestation.envelope)
    payload = base64.b64decode(envelope["payload"]).replace(b'"263000003"', b'"263000004"')
    envelope["payload"] = base64.b64encode(payload).decode()
    page = open_page("about:blank")
    page.route(
        "**/attestations/1/envelope.json",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(envelope)
        ),
    )
    page.goto(f"{live_server.url}/proofs/verify/")
    verdict, text = paste(page, bundle)
    assert (verdict, text) == (
        "invalid",
        "Not verified Failed check: Verifying the signed attestation Reason: "
        "attestation: signature does not verify with the published key",
    )
    assert_clean(page)


# --- parity with the Python verifier ------------------------------------------------------------

JS_CHECK = """async (cases) => {
  const d = await import('/static/porapp/js/dsse-verify.js');
  const m = await import('/static/porapp/js/mst-verify.js');
  const out = [];
  for (const [kind, text] of cases) {
    try {
      const value = d.parseJson(text, 'proof');
      if (kind === 'proof') {
        const r = await m.verifyProof(value);
        out.push(r.valid ? ['VALID', r.balances.map(String), r.rootHash] : [r.reason, [], '']);
      } else {
        const b = await m.checkBundle(value);
        out.push(['VALID', b.proofs.flatMap(p => p.result.balances.map(String)), b.snapshotId]);
      }
    } catch (err) {
      out.push([err instanceof m.BundleError ? err.reason : 'JS ERROR ' + err, [], '']);
    }
  }
  return out;
}"""


def python_check(kind: str, text: str) -> list:
    value = json.loads(text)
    if kind == "proof":
        r = verify_proof(value)
        return [
            ("VALID" if r.valid else r.reason),
            [str(b) for b in r.balances] if r.valid else [],
            r.root_hash if r.valid else "",
        ]
    try:
        snapshot_id, _, checked = check_bundle(value)
    except BundleInvalid as exc:
        return [exc.reason, [], ""]
    return ["VALID", [str(b) for c in checked for b in c.result.balances], snapshot_id]


def proof_cases(bundle) -> list[tuple[str, str]]:
    cases: list[tuple[str, str]] = []
    vector_proofs = []
    for name in ("one_account", "several_assets", "padding"):
        vector = json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))
        vector_proofs += vector["expected"]["proofs"]
    base = vector_proofs[1]  # several_assets: k = 3
    for proof in vector_proofs:
        cases.append(("proof", json.dumps(proof)))

    def edit(change) -> str:
        p = copy.deepcopy(base)
        change(p)
        return json.dumps(p)

    for change in (
        lambda p: p["leaf"]["balances"].__setitem__(0, str(int(p["leaf"]["balances"][0]) + 1)),
        lambda p: p["path"][0].__setitem__("hash", "0" * 64),
        lambda p: p["path"][1]["sums"].__setitem__(2, "5"),
        lambda p: p["leaf"].__setitem__("index", p["leaf"]["index"] ^ 1),
        lambda p: p["leaf"].__setitem__("index", 4),
        lambda p: p["account"].__setitem__("id", p["account"]["id"] + "x"),
        lambda p: p["account"].__setitem__("nonce", "A" * 64),
        lambda p: p.pop("account"),
        lambda p: p.__setitem__("format", "por-mst-v2"),
        lambda p: p["leaf"]["balances"].__setitem__(1, "01"),
        lambda p: p["leaf"]["balances"].__setitem__(1, str(1 << 128)),
        lambda p: p["root"]["sums"].__setitem__(0, "0"),
        lambda p: p["path"][0]["sums"].__setitem__(0, str((1 << 128) - 1)),
        lambda p: p["assets"][0].__setitem__("decimals", 256),
        lambda p: p["assets"].pop(),
        lambda p: p.pop("root"),
        lambda p: p["path"].append("x"),
        lambda p: p.__setitem__("path", [p["path"][0]] * 65),
        lambda p: p.__setitem__("snapshot", 5),
    ):
        cases.append(("proof", edit(change)))
    # JSON texts only a careful reader tells apart.
    text = json.dumps(base)
    as_float = re.sub(r'"index": ([0-9]+)', r'"index": \1.0', text)
    as_bool = re.sub(r'"index": [0-9]+', '"index": true', text)
    assert as_float != text and as_bool != text
    cases.append(("proof", as_float))
    cases.append(("proof", as_bool))
    cases.append(("proof", edit(lambda p: p["account"].__setitem__("id", "\ud800"))))
    cases.append(("proof", edit(lambda p: p["leaf"].__setitem__("index", 1 << 70))))

    cases.append(("bundle", json.dumps(bundle)))
    for change in (
        lambda b: b["proofs"][0]["leaf"]["balances"].__setitem__(0, "1"),
        lambda b: b["proofs"][1]["path"][0].__setitem__("hash", "0" * 64),
        lambda b: b["account"].__setitem__("id", "u-2"),
        lambda b: b["account"].__setitem__("nonce", "0" * 63),
        lambda b: b.__setitem__("format", "x"),
        lambda b: b.__setitem__("proofs", {}),
        lambda b: b["proofs"].append(b["proofs"][0]),
        lambda b: b["proofs"].__setitem__(0, []),
        lambda b: b.__setitem__("snapshot", {"as_of": "x"}),
        lambda b: b["snapshot"].__setitem__("id", 1.5),
        lambda b: [p.pop("account") for p in b["proofs"]],
    ):
        copied = copy.deepcopy(bundle)
        change(copied)
        cases.append(("bundle", json.dumps(copied)))
    return cases


def test_js_and_python_recompute_proofs_alike(live_server, open_page, made):
    _, _, bundle = made
    page = open_page(f"{live_server.url}/proofs/verify/")
    cases = proof_cases(bundle)
    js = page.evaluate(JS_CHECK, [list(c) for c in cases])
    python = [python_check(kind, text) for kind, text in cases]
    disagreements = [(c, p, j) for c, p, j in zip(cases, python, js, strict=True) if p != j]
    assert disagreements == []
    verdicts = [p[0] for p in python]
    # Both outcomes, and many distinct reasons.
    assert verdicts.count("VALID") >= 8
    assert "recomputed root hash differs from root.hash" in verdicts
    assert "proof 1: recomputed root hash differs from root.hash" in verdicts
    assert verdicts.count("leaf.index must be an integer in [0, 2**2)") == 4  # 4, 1.0, true, 2**70
    assert len(set(verdicts)) >= 20, sorted(set(verdicts))
    assert_clean(page)


def test_a_browser_without_web_crypto_cannot_check(live_server, open_page, made):
    # "Cannot check" is not "Not verified": the bundle was never judged.
    _, _, bundle = made
    page = open_page("about:blank")
    page.add_init_script(
        "Object.defineProperty(Crypto.prototype, 'subtle', {get: () => undefined})"
    )
    page.goto(f"{live_server.url}/proofs/verify/")
    verdict, text = paste(page, bundle)
    assert verdict == "unsupported", text
    assert text.startswith("Cannot check in this browser") and "no Web Crypto here" in text
    assert "Not verified" not in text
    assert_clean(page)


JS_ATTESTED = """async ([bundleText, predicates]) => {
  const d = await import('/static/porapp/js/dsse-verify.js');
  const m = await import('/static/porapp/js/mst-verify.js');
  const checked = await m.checkBundle(d.parseJson(bundleText));
  return predicates.map((text) => {
    try {
      const found = m.checkAttested(checked.snapshotId, checked.proofs, d.parseJson(text));
      return ['VALID', found.map((i) => `${i.code} ${i.balance} ${i.total} ${i.decimals}`)];
    } catch (err) {
      return [err instanceof m.BundleError ? err.reason : 'JS ERROR ' + err, []];
    }
  });
}"""


def test_js_and_python_compare_roots_with_the_attestation_alike(live_server, open_page, made):
    snapshot, attestation, bundle = made
    predicate = json.loads(attestation.payload)["predicate"]

    def edit(change) -> str:
        p = copy.deepcopy(predicate)
        change(p)
        return json.dumps(p)

    def liabilities(n, **fields):
        return lambda p: p["assets"][n]["liabilities"].update(fields)

    attested_units = predicate["assets"][0]["liabilities"]["root_sum_units"]
    texts = [json.dumps(predicate)] + [
        edit(change)
        for change in (
            liabilities(0, root_sum_units=int(attested_units)),
            liabilities(0, root_hash="ab" * 32),
            liabilities(1, root_sum_units="1500008"),
            liabilities(1, root_sum_units="01500007"),
            liabilities(1, root_sum_units=-1),
            liabilities(1, root_sum_units=1.5),
            liabilities(0, snapshot=str(snapshot.pk)),
            liabilities(0, snapshot=snapshot.pk + 1),
            liabilities(0, snapshot=True),
            lambda p: p["assets"][1].update(liabilities=None),
            lambda p: p["assets"][1].pop("liabilities"),
            lambda p: p["assets"].append(p["assets"][0]),
            lambda p: p["assets"].pop(),
            lambda p: p.update(assets={}),
        )
    ]
    _, _, checked = check_bundle(bundle)
    python = []
    for text in texts:
        try:
            found = check_attested(str(snapshot.pk), checked, json.loads(text))
        except BundleInvalid as exc:
            python.append([exc.reason, []])
            continue
        python.append(["VALID", [f"{i.code} {i.balance} {i.total} {i.decimals}" for i in found]])
    page = open_page(f"{live_server.url}/proofs/verify/")
    js = page.evaluate(JS_ATTESTED, [json.dumps(bundle), texts])
    assert [j for j, p in zip(js, python, strict=True) if j != p] == []
    verdicts = [p[0] for p in python]
    assert verdicts[:3] == ["VALID", "VALID", python[2][0]]
    assert python[0][1] == ["AAPLx 12000000 263000003 6", "MSFTx 1500000 1500007 6"]
    assert len(set(verdicts)) == 6, verdicts
    assert_clean(page)
