"""The demo chains: `rundemo`'s devchain command, then configure + mint, read live supply."""

from __future__ import annotations

import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest

from audits import demo, supply
from audits.models import Asset, Chain

pytestmark = [pytest.mark.chain, pytest.mark.django_db]


@pytest.fixture
def demo_chains(tmp_path):
    """`python -m audits.core.devchain serve` exactly as rundemo runs it, on free ports."""
    out = tmp_path / "devchain.json"
    argv = demo.devchain_serve_command(out, tmp_path / "log", ports={31337: 0, 31338: 0})
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 60
        while not out.exists():
            assert proc.poll() is None, "devchain serve exited"
            assert time.monotonic() < deadline, "demo chains not ready"
            time.sleep(0.1)
        yield out
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_demo_chains_show_live_supply_matching_the_custodians_holdings(demo_chains):
    demo.load_demo_data()
    demo.configure_demo_chains(demo_chains)
    demo.mint_demo_supply(demo_chains)

    assert {c.confirmations for c in Chain.objects.all()} == {0}
    for deployment_id in supply.deployments_to_read():
        assert supply.read_deployment(deployment_id).status == "ok"

    settled = {isin: Decimal(qty) for rows in demo.DEMO_HOLDINGS.values() for isin, qty, _ in rows}
    for row in supply.latest_supply_by_asset():
        assert row.circulating == settled[row.asset.isin], row.asset.code
        # The treasury mint on each of the two chains is excluded from circulating supply.
        assert row.total_supply == row.circulating + 2 * Decimal(demo.DEMO_TREASURY_TOKENS)
    assert Asset.objects.count() == 4
