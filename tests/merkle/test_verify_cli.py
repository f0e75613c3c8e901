"""``python -m audits.verify`` as a user would run it: no Django, clean INVALID on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert "balance:  2.000000000000000000 AAPLx" in lines
    assert "balance:  1.000000 USDC" in lines
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
