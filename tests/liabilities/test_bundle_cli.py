"""``python -m audits.verify BUNDLE.json --attestation ENVELOPE.json --keys JWKS.json`` on
bundles made by the service from published trees, against attestations signed the way the
service signs them: a good bundle verifies; a changed balance, a changed sibling, a root or a
total the attestation does not state, and a bad signature each fail with their own reason."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from audits import liability_proofs
from audits.core import verify as cli
from tests.attestation.helpers import jwk_entry, jwks_of
from tests.liabilities.trees import KEY, KID, attest, publish

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
ODD_ID = 'Jos\u00e9\u202e"x'  # non-ASCII, a bidi override and a quote: all escaped


@pytest.fixture
def made(liability_storage, tmp_path):
    snapshot = publish(
        {
            "AAPLx": {"u-1": 12_000_000, "u-2": 251_000_000, ODD_ID: 5},
            "MSFTx": {"u-1": 1_500_000, "u-3": 7},
        }
    )
    attestation = attest(snapshot)
    envelope = json.loads(attestation.envelope)
    return {
        "snapshot": snapshot,
        "bundle": liability_proofs.bundle(snapshot.pk, "u-1"),
        "envelope": envelope,
        "keys": jwks_of(jwk_entry(KEY)),
        "dir": tmp_path,
    }


def files(made, bundle=None, envelope=None) -> list[str]:
    d = made["dir"]
    (d / "bundle.json").write_text(json.dumps(bundle or made["bundle"]), encoding="utf-8")
    (d / "env.json").write_text(json.dumps(envelope or made["envelope"]), encoding="utf-8")
    (d / "jwks.json").write_text(json.dumps(made["keys"]), encoding="utf-8")
    return [
        str(d / "bundle.json"),
        "--attestation",
        str(d / "env.json"),
        "--keys",
        str(d / "jwks.json"),
    ]


def verdict(args: list[str], capsys) -> tuple[int, list[str]]:
    status = cli.main(args)
    return status, capsys.readouterr().out.splitlines()


def test_the_documented_command_verifies_a_bundle(made):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "audits.verify", *files(made)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    pk = made["snapshot"].pk
    attestation = made["envelope"]
    assert attestation
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f'snapshot: "{pk}"',
        'account:  "u-1"',
        'balance:  12.000000 "AAPLx" (proof recomputed)',
        'balance:  1.500000 "MSFTx" (proof recomputed)',
        f'attestation: sequence 1, issued 2026-11-28T10:00:00Z, key "{KID}"',
        f'included: 12 "AAPLx" in total liabilities of 263.000005 "AAPLx" (root '
        f"{made['bundle']['proofs'][0]['root']['hash']})",
        f'included: 1.5 "MSFTx" in total liabilities of 1.500007 "MSFTx" (root '
        f"{made['bundle']['proofs'][1]['root']['hash']})",
        "VALID",
    ]
    assert done.stderr == ""


def changed(made, edit) -> dict:
    bundle = copy.deepcopy(made["bundle"])
    edit(bundle)
    return bundle


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            lambda b: b["proofs"][0]["leaf"]["balances"].__setitem__(0, "120000000"),
            "proof 1: recomputed root hash differs from root.hash",
        ),
        (
            lambda b: b["proofs"][1]["path"][0].__setitem__("hash", "0" * 64),
            "proof 2: recomputed root hash differs from root.hash",
        ),
        (
            lambda b: b["proofs"][0]["path"][0]["sums"].__setitem__(0, "1"),
            "proof 1: recomputed root hash differs from root.hash",
        ),
        (
            lambda b: b["account"].__setitem__("id", "u-2"),
            "proof 1: its account differs from the bundle's",
        ),
        (
            lambda b: [p.pop("account") for p in b["proofs"]] and b["account"].update(id="u-2"),
            "proof 1: leaf.account_hash does not match account id and nonce",
        ),
        (lambda b: b.update(format="por-bundle-v0"), "bundle format must be 'por-bundle-v1'"),
        (lambda b: b.update(proofs=[]), "bundle proofs must be a non-empty list"),
        (
            lambda b: b["proofs"].append(b["proofs"][0]),
            "proof 3: asset AAPLx has an earlier proof",
        ),
    ],
)
def test_a_tampered_bundle_fails_before_any_attestation_check(made, capsys, edit, reason):
    status, lines = verdict(files(made, changed(made, edit)), capsys)
    assert status == 1
    assert lines[-1] == f"INVALID: {reason}"
    assert not any(line.startswith("included:") for line in lines)


def test_a_root_the_attestation_does_not_state_fails(made, capsys):
    snapshot = made["snapshot"]
    cases = [
        (
            lambda p: p["assets"][0]["liabilities"].update(root_hash="ab" * 32),
            f"AAPLx: the proof's root is not the root attested for snapshot {snapshot.pk}",
        ),
        (
            lambda p: p["assets"][1]["liabilities"].update(root_sum_units="1500008"),
            f"MSFTx: the proof's total differs from the total attested for snapshot {snapshot.pk}",
        ),
        (
            lambda p: p["assets"][1].update(liabilities=None),
            "MSFTx: the attestation states no liabilities for this asset",
        ),
        (
            lambda p: p["assets"][0]["liabilities"].update(snapshot=snapshot.pk + 1),
            f"AAPLx: the attestation's liabilities are of another snapshot, not snapshot "
            f"{snapshot.pk}",
        ),
    ]
    for change, reason in cases:
        other = attest(snapshot, change=change)
        status, lines = verdict(files(made, envelope=json.loads(other.envelope)), capsys)
        assert (status, lines[-1]) == (1, f"INVALID: {reason}"), lines
        assert lines[-2].startswith(f"attestation: sequence {other.sequence}")


def test_a_root_of_a_proof_built_over_other_balances_is_not_attested(made, capsys):
    # The platform re-builds a tree in which this user holds more: the proof is consistent
    # in itself, but its root is not the attested one.
    other = publish({"AAPLx": {"u-1": 99_000_000, "u-2": 1}})
    rebuilt = liability_proofs.bundle(other.pk, "u-1")
    forged = {**rebuilt, "snapshot": made["bundle"]["snapshot"]}
    status, lines = verdict(files(made, forged), capsys)
    assert status == 1
    assert lines[-1] == (
        "INVALID: AAPLx: the proof's root is not the root attested for snapshot "
        f"{made['snapshot'].pk}"
    )


def test_a_bad_signature_fails_as_the_attestation(made, capsys):
    envelope = copy.deepcopy(made["envelope"])
    envelope["signatures"][0]["sig"] = "A" * 86 + "=="
    status, lines = verdict(files(made, envelope=envelope), capsys)
    assert (status, lines[-1]) == (
        1,
        "INVALID: attestation: signature does not verify with the published key",
    )


def test_strings_from_the_bundle_are_escaped(made, capsys):
    bundle = liability_proofs.bundle(made["snapshot"].pk, ODD_ID)
    status, lines = verdict(files(made, bundle), capsys)
    assert status == 0, lines
    assert lines[1] == 'account:  "Jos\\u00e9\\u202e\\"x"'
    assert all(line.isascii() and line.isprintable() for line in lines)


def test_usage_and_unreadable_files(made, capsys):
    args = files(made)
    assert cli.main(args[:3]) == 1
    assert "BUNDLE.json" in capsys.readouterr().err
    status, lines = verdict(["/nonexistent.json", *args[1:]], capsys)
    assert status == 1 and lines[-1].startswith("INVALID: cannot read bundle:")
