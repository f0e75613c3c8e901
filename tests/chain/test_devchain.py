"""audits.core.devchain: anvil process control, token helpers and the CLI, on real anvil."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from audits.core import devchain
from audits.core.evm import read_supply

from .conftest import CHAIN_A

pytestmark = pytest.mark.chain

HOLDER = devchain.DEV_ACCOUNTS[1]


def _balance(url: str, token: str, who: str) -> int:
    return devchain._token(devchain._w3(url), token).functions.balanceOf(who).call()


def test_find_anvil_honours_env_and_explains_missing(monkeypatch, tmp_path):
    real = devchain.find_anvil()
    monkeypatch.setenv("ANVIL_BIN", str(real))
    assert devchain.find_anvil() == real
    monkeypatch.setenv("ANVIL_BIN", str(tmp_path / "nope"))
    with pytest.raises(devchain.AnvilNotFound, match="ANVIL_BIN"):
        devchain.find_anvil()
    monkeypatch.delenv("ANVIL_BIN")
    monkeypatch.setattr(devchain, "PROJECT_ROOT", tmp_path)
    with pytest.raises(devchain.AnvilNotFound, match="npm ci"):
        devchain.find_anvil()


def test_anvil_process_lifecycle(tmp_path):
    log = tmp_path / "a.log"
    with devchain.start_anvil(777, log_path=log) as node:
        assert node.url.startswith("http://127.0.0.1:") and node.port > 0
        assert devchain._w3(node.url).eth.chain_id == 777
        assert [a.lower() for a in devchain._w3(node.url).eth.accounts[:2]] == [
            a.lower() for a in devchain.DEV_ACCOUNTS[:2]
        ]
    assert node.process.poll() is not None
    assert "Listening on" in log.read_text()
    with pytest.raises(requests.ConnectionError):
        requests.post(node.url, json={}, timeout=2)


def test_deploy_is_deterministic_on_a_fresh_chain(private_chain):
    # First contract of the first dev account: same address on every fresh anvil.
    addr = devchain.deploy_token(private_chain.url, "Apple", "AAPLX", 18)
    assert addr == "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def test_mint_burn_and_owner_only(chain_a, token_a):
    b1 = devchain.mint(chain_a.url, token_a, HOLDER, 10)
    b2 = devchain.burn(chain_a.url, token_a, HOLDER, 4)
    assert b2 == b1 + 1
    assert _balance(chain_a.url, token_a, HOLDER) == 6
    with pytest.raises(devchain.TxFailed, match="mint reverted: NotOwner"):
        devchain.mint(chain_a.url, token_a, HOLDER, 1, sender=HOLDER)
    with pytest.raises(devchain.TxFailed, match=r"burn reverted: InsufficientBalance\(.*6, 7\)"):
        devchain.burn(chain_a.url, token_a, HOLDER, 7)
    assert _balance(chain_a.url, token_a, HOLDER) == 6
    with pytest.raises(ValueError):
        devchain.mint(chain_a.url, token_a, HOLDER, -1)


def test_cli_mint_burn_supply_in_process(chain_a, token_a, capsys):
    base = ["--rpc", chain_a.url, "--token", token_a]
    assert devchain.main(["mint", *base, "--to", HOLDER, "--tokens", "2.5"]) == 0
    assert devchain.main(["burn", *base, "--frm", HOLDER, "--amount", "5"]) == 0
    assert _balance(chain_a.url, token_a, HOLDER) == 2_500_000_000_000_000_000 - 5
    capsys.readouterr()
    assert devchain.main(["supply", *base, "--exclude", HOLDER]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total_supply_raw"] == str(2_500_000_000_000_000_000 - 5)
    assert out["circulating_raw"] == "0"
    with pytest.raises(SystemExit):
        devchain.main(["mint", *base, "--to", HOLDER, "--tokens", "0.0000000000000000001"])


def test_cli_as_a_module_mints_on_a_running_chain(chain_a, token_a):
    env = {**os.environ, "PYTHONPATH": str(devchain.PROJECT_ROOT)}
    cmd = [sys.executable, "-m", "audits.core.devchain", "mint", "--rpc", chain_a.url]
    cmd += ["--token", token_a, "--to", HOLDER, "--amount", "123"]
    proc = subprocess.run(
        cmd, cwd=devchain.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("minted in block ")
    assert read_supply([chain_a.url], CHAIN_A, token_a, 18).total_supply_raw == 123


def test_cli_serve_deploys_and_writes_addresses(tmp_path, capsys):
    out = tmp_path / "chain.json"
    code = devchain.main(
        [
            "serve",
            "--chain",
            "31337",
            "--chain",
            "8453",
            "--token",
            "31337:AAPLX:18:Apple xStock",
            "--token",
            "8453:AAPLX:6:Apple xStock",
            "--token",
            "8453:SPYX:6",
            "--initial-supply",
            "1000",
            "--out",
            str(out),
            "--log-dir",
            str(tmp_path),
            "--no-wait",
        ]
    )
    assert code == 0
    data = json.loads(out.read_text())
    assert data["deployer"] == devchain.DEPLOYER
    chains = {c["chain_id"]: c for c in data["chains"]}
    assert set(chains) == {31337, 8453}
    assert [(t["symbol"], t["decimals"]) for t in chains[8453]["tokens"]] == [
        ("AAPLX", 6),
        ("SPYX", 6),
    ]
    assert chains[31337]["tokens"][0]["name"] == "Apple xStock"
    assert chains[8453]["tokens"][1]["name"] == "SPYX"
    assert chains[31337]["tokens"][0]["address"] == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    assert (tmp_path / "anvil-8453.log").exists()


def test_start_on_a_busy_port_fails_with_anvils_own_words(chain_a):
    with pytest.raises(devchain.AnvilStartError, match="exited with code"):
        devchain.start_anvil(CHAIN_A, port=chain_a.port, startup_timeout=10)
