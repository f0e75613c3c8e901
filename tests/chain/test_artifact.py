"""The committed ReserveToken artifact must match its Solidity source."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess

import pytest

from audits.core import devchain

ROOT = devchain.PROJECT_ROOT


def test_artifact_source_sha256_matches_sol_file():
    art = devchain.load_artifact()
    digest = hashlib.sha256(devchain.SOURCE_PATH.read_bytes()).hexdigest()
    assert art["sourceSha256"] == digest, (
        "contracts/ReserveToken.sol changed without rebuilding the artifact: run `npm run compile`"
    )


def test_artifact_records_compiler_and_matches_pragma():
    art = devchain.load_artifact()
    pragma = re.search(r"pragma solidity (\S+);", devchain.SOURCE_PATH.read_text()).group(1)
    assert art["compiler"]["version"].startswith(pragma + "+commit.")
    assert art["settings"]["optimizer"] == {"enabled": True, "runs": 200}
    assert re.fullmatch(r"0x[0-9a-f]{200,}", art["bytecode"])
    names = {e["name"] for e in art["abi"] if e["type"] == "function"}
    assert {"decimals", "totalSupply", "balanceOf", "transfer", "mint", "burn"} <= names


@pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / "node_modules" / "solc").is_dir(),
    reason="needs node and `npm ci`",
)
def test_recompiling_reproduces_the_committed_artifact():
    proc = subprocess.run(
        ["node", "contracts/compile.js", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
