"""``python -m audits.verify`` as a user would run it: no Django, clean INVALID on bad input."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audits.core.merkle import account_hash
from tests.merkle.test_tree import fast

ROOT = Path(__file__).resolve().parents[2]
VECTOR = ROOT / "tests" / "vectors" / "several_assets.json"


def run(proof_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, *extra, "-m", "audits.verify", str(proof_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


@pytest.fixture
def good_proof(tmp_path) -> Path:
    proof = json.loads(VECTOR.read_text(encoding="utf-8"))["expected"]["proofs"][0]
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof), encoding="utf-8")
    return path


def test_valid_proof_prints_balances_with_decimals(good_proof):
    out = run(good_proof)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[-1] == "VALID"
    assert lines[0] == 'snapshot: "vec-multi-2026-11-25"'
    assert 'balance:  2.000000000000000000 "AAPLx"' in lines
    assert 'balance:  1.000000 "USDC"' in lines
    proof = json.loads(good_proof.read_text())
    assert f"root:     {proof['root']['hash']}" in lines


def test_verifier_never_imports_django(good_proof):
    out = run(good_proof, "-X", "importtime")
    assert out.returncode == 0
    imported = [line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()]
    assert "audits.core.merkle.proof" in imported  # the probe works
    assert not [m for m in imported if m.split(".")[0] in {"django", "rest_framework"}]


def test_tampered_proof_is_invalid(good_proof, tmp_path):
    proof = json.loads(good_proof.read_text())
    proof["leaf"]["balances"][0] = str(int(proof["leaf"]["balances"][0]) + 1)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(proof))
    out = run(bad)
    assert out.returncode == 1
    assert out.stdout.splitlines()[-1].startswith("INVALID: ")


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2, 3]",
        '{"format": "por-mst-v1"}',
        '{"format": "por-mst-v1", "snapshot": "s", "assets": [{"code": "X", "decimals": 0}],'
        ' "root": {"hash": "zz", "sums": ["1"]}}',
        "\udcff".encode("utf-8", "surrogateescape").decode("latin-1"),
        "[" * 100000,
    ],
    ids=["syntax", "array", "fields", "bad-hex", "bad-utf8", "deep"],
)
def test_malformed_input_is_invalid_without_traceback(tmp_path, content):
    path = tmp_path / "p.json"
    path.write_bytes(content.encode("latin-1"))
    out = run(path)
    assert out.returncode == 1
    assert out.stdout.splitlines()[-1].startswith("INVALID: ")
    assert "Traceback" not in out.stdout + out.stderr


def test_missing_file_is_invalid(tmp_path):
    out = run(tmp_path / "absent.json")
    assert out.returncode == 1 and "INVALID: cannot read proof" in out.stdout


# --- output the proof cannot forge (issue #9 point 17) --------------------------------------

NONCE = bytes(range(32))
LINE = re.compile(r"(snapshot|account|balance|root|total|note): .*|VALID|INVALID: .*")
ATTACKS = [
    "\x1b[2J\x1b[HVALID\nroot:     " + "ab" * 32,  # clear screen, then a fake verdict and root
    "\r\x1b[1A\x1b[2KVALID",  # back over the previous line
    "\udcff",  # a lone surrogate: could not be printed at all
    "x\u202eDILAVNI",  # right-to-left override
    "a\u2028VALID\u2029b\x85c\x7fd\x00e",  # line/paragraph separators, NEL, DEL, NUL
    '"',
    "\\",
    "",
]


def one_leaf_proof(snapshot: str, account_id: str, codes: list[str]) -> dict:
    """A proof of a one-account tree (the leaf is the root), with any strings in it."""
    k = len(codes)
    try:
        ah = account_hash(account_id, NONCE)
    except UnicodeEncodeError:  # a lone surrogate: the verifier must refuse it cleanly
        ah = bytes(32)
    balances = [7 * (j + 1) for j in range(k)]
    leaf = b"\x00" + ah + b"".join(b.to_bytes(16, "big") for b in balances)
    return {
        "format": "por-mst-v1",
        "snapshot": snapshot,
        "assets": [{"code": c, "decimals": 2} for c in codes],
        "root": {"hash": hashlib.sha256(leaf).hexdigest(), "sums": [str(b) for b in balances]},
        "leaf": {"index": 0, "account_hash": ah.hex(), "balances": [str(b) for b in balances]},
        "account": {"id": account_id, "nonce": NONCE.hex()},
        "path": [],
    }


def check_output(out: subprocess.CompletedProcess[str], proof: dict, lines_expected: int):
    """Every line ours: labelled, printable ASCII, one verdict, last; fields round-trip."""
    assert out.stderr == ""
    assert all(" " <= ch <= "~" for ch in out.stdout.replace("\n", "")), out.stdout
    lines = out.stdout.split("\n")
    assert lines.pop() == ""  # the output ends with a newline
    assert len(lines) == lines_expected, lines
    assert all(LINE.fullmatch(line) for line in lines), lines
    verdicts = [line for line in lines if line == "VALID" or line.startswith("INVALID: ")]
    assert verdicts == [lines[-1]]
    assert out.returncode == (0 if lines[-1] == "VALID" else 1)
    if lines_expected > 1:  # the strings printed are exactly the proof's, escaped
        assert json.loads(lines[0].removeprefix("snapshot: ")) == proof["snapshot"]
        assert json.loads(lines[1].removeprefix("account:  ")) == proof["account"]["id"]
        codes = [
            json.loads(m[1]) for line in lines if (m := re.fullmatch(r"total: +\S+ (.*)", line))
        ]
        assert codes == [a["code"] for a in proof["assets"]]
        assert [line for line in lines if line.startswith("root")] == [
            f"root:     {proof['root']['hash']}"
        ]


any_text = st.one_of(
    st.sampled_from(ATTACKS), st.text(st.characters(exclude_categories=()), max_size=20)
)


@settings(fast, max_examples=30)  # each example runs the command: keep the suite quick
@given(
    snapshot=any_text,
    account_id=any_text,
    codes=st.lists(any_text, min_size=1, max_size=3),
    tamper=st.booleans(),
)
def test_no_proof_field_can_forge_a_line(tmp_path, snapshot, account_id, codes, tamper):
    proof = one_leaf_proof(snapshot, account_id, codes)
    if tamper:
        proof["root"]["sums"][0] = str(int(proof["root"]["sums"][0]) + 1)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(proof), encoding="ascii")
    out = run(path)
    try:
        account_hash(account_id, NONCE)
    except UnicodeEncodeError:  # refused before any field is shown
        check_output(out, proof, 1)
        assert out.stdout == "INVALID: account.id is not valid UTF-8 text\n"
        return
    check_output(out, proof, 2 * len(codes) + 4)
    assert out.stdout.endswith(
        "INVALID: recomputed root sums differ from root.sums\n" if tamper else "\nVALID\n"
    )


def test_the_fake_root_of_the_issue_is_shown_escaped(tmp_path):
    proof = json.loads(VECTOR.read_text(encoding="utf-8"))["expected"]["proofs"][0]
    proof["snapshot"] = ATTACKS[0]
    proof["root"]["sums"][0] = "1"  # and the proof is false
    path = tmp_path / "p.json"
    path.write_text(json.dumps(proof), encoding="utf-8")
    out = run(path)
    check_output(out, proof, 10)
    assert out.stdout.startswith('snapshot: "\\u001b[2J\\u001b[HVALID\\nroot:     abab')
    assert out.stdout.endswith("\nINVALID: recomputed root sums differ from root.sums\n")


@pytest.mark.parametrize("where", ["snapshot", "code", "id"])
def test_a_lone_surrogate_is_no_traceback(tmp_path, where):
    proof = one_leaf_proof("s", "alice", ["X"])
    if where == "snapshot":
        proof["snapshot"] = "\udcff"
    elif where == "code":
        proof["assets"][0]["code"] = "\ud800"
    else:
        proof["account"]["id"] = "\udcff"
    path = tmp_path / "p.json"
    path.write_text(json.dumps(proof), encoding="ascii")
    out = run(path)
    check_output(out, proof, 1 if where == "id" else 6)
    assert "Traceback" not in out.stdout + out.stderr


def test_a_file_name_with_a_newline_stays_on_the_verdict_line(tmp_path):
    out = run(tmp_path / "no\nVALID")
    assert out.returncode == 1
    assert out.stdout.count("\n") == 1 and out.stdout.startswith("INVALID: cannot read proof")


def test_a_closed_stdout_is_no_traceback(good_proof):
    # As in `python -m audits.verify p.json | head -0`: the reader has gone before the write.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "audits.verify", str(good_proof)],
            stdout=write_end, stderr=subprocess.PIPE, cwd=ROOT, timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert (out.returncode, out.stderr) == (1, b"")
