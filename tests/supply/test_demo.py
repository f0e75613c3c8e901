"""The demo chains: `rundemo`'s devchain command, then configure + mint, read live supply."""

from __future__ import annotations

import io
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


def _eligibility(code: str):
    from audits.models import Eligibility

    return Eligibility.objects.select_related("latest").get(asset__code=code)


def test_demo_starts_eligible_then_breach_freezes_and_restore_recovers(
    demo_chains, tmp_path, settings, capsys
):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from audits import eligibility, reconciliation

    settings.VAR_DIR = tmp_path
    call_command("load_demo")
    demo.configure_demo_chains(demo_chains)
    demo.mint_demo_supply(demo_chains)
    demo.read_demo_supply()
    admin = get_user_model().objects.get(username="admin")

    # Start: every demo asset reconciled healthy N times and approved by the admin.
    lines = demo.start_healthy(admin)
    assert lines == [f"{code}: eligible (approved by admin)" for code in sorted(demo.DEMO_MINTS)]
    for code in demo.DEMO_MINTS:
        row = _eligibility(code)
        assert (row.state, row.latest.status) == ("eligible", "healthy"), (code, row.reason)
    assert demo.start_healthy(admin)[0] == "AAPLx: eligible (healthy)"  # idempotent

    # Breach: 100 unbacked AAPLx on 1000 backed is 1000 bps short; the next run freezes it.
    capsys.readouterr()
    call_command("demo_breach", "AAPLx")
    out = capsys.readouterr().out
    assert "Minted 100 AAPLx" in out and "/api/v1/collateral/eligibility" in out
    assert str(tmp_path / "demo-webhooks.log") in out
    aapl = Asset.objects.get(code="AAPLx")
    (result,) = reconciliation.reconcile_assets([aapl.pk])
    assert result.status == "breach"
    row = _eligibility("AAPLx")
    assert row.state == "frozen"
    assert "short by 910 bps" in row.reason  # 1100 supply, 1000 reserves: ceil(100/1100)
    assert _eligibility("MSFTx").state == "eligible"
    with pytest.raises(eligibility.TransitionRefused):
        eligibility.approve_unfreeze(aapl.pk, admin, "too early")

    # Restore: burned back; healthy again, and after N healthy runs the admin may unfreeze.
    call_command("demo_restore", "AAPLx")
    out = capsys.readouterr().out
    assert "Burned the 100 unbacked AAPLx" in out and "Approve unfreeze" in out
    assert not (tmp_path / "demo-breach-AAPLx.json").exists()
    runs = eligibility.policy_for(aapl).healthy_runs_to_unfreeze
    for _ in range(runs - 1):
        reconciliation.reconcile_assets([aapl.pk])
    assert _eligibility("AAPLx").latest.status == "healthy"
    with pytest.raises(eligibility.TransitionRefused):  # one run short
        eligibility.approve_unfreeze(aapl.pk, admin, "one run short")
    reconciliation.reconcile_assets([aapl.pk])
    eligibility.approve_unfreeze(aapl.pk, admin, "backed again")
    assert _eligibility("AAPLx").state == "eligible"
    call_command("demo_restore", "AAPLx")
    assert "Nothing to burn" in capsys.readouterr().out


def test_demo_breach_reaches_the_demo_webhook_receiver(demo_chains, tmp_path, settings):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from audits import reconciliation, webhooks
    from audits.core import demo_webhooks

    if not hasattr(webhooks, "create_endpoint"):
        pytest.skip("this build has no webhook delivery (audits.webhooks.create_endpoint)")
    settings.VAR_DIR = tmp_path
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    call_command("load_demo", stdout=io.StringIO())
    demo.configure_demo_chains(demo_chains)
    demo.mint_demo_supply(demo_chains)
    demo.read_demo_supply()
    admin = get_user_model().objects.get(username="admin")
    receiver = demo_webhooks.Receiver(tmp_path / "demo-webhooks.log")
    server = demo_webhooks.serve(receiver)
    try:
        receiver.secret = demo.register_demo_webhook(demo_webhooks.url_of(server), admin)
        demo.start_healthy(admin)
        call_command("demo_breach", "AAPLx", "--amount", "5", stdout=io.StringIO())
        reconciliation.reconcile_assets([Asset.objects.get(code="AAPLx").pk])
        for delivery_id in webhooks.due_deliveries():
            webhooks.deliver(delivery_id)
    finally:
        server.shutdown()
        server.server_close()
    lines = [line[20:] for line in receiver.log_path.read_text().splitlines()]
    unfrozen = sorted(line.split(":")[0] for line in lines if "unfrozen" in line)
    assert unfrozen == [f"eligibility.unfrozen {code}" for code in sorted(demo.DEMO_MINTS)]
    assert lines[-1].startswith("eligibility.frozen AAPLx: Not fully backed: reserves 1000 AAPLx")
    assert all(line.endswith("(signature valid)") for line in lines)
