"""Per-asset supply across chains: exact sums, and no total unless every chain counts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audits import supply
from audits.core import devchain
from audits.models import Chain, SupplyReading

from .conftest import E18, HOLDER, settle

pytestmark = [pytest.mark.chain, pytest.mark.django_db]


def _on(result: supply.AssetSupply, dep) -> supply.DeploymentSupply:
    return next(d for d in result.deployments if d.deployment.pk == dep.pk)


@pytest.fixture
def two_chains(asset, chain_row_a, chain_row_b, chain_a, chain_b, deploy):
    """One asset on two chains: 18 decimals on A, 6 on B."""
    on_a = deploy(asset, chain_row_a, decimals=18)
    on_b = deploy(asset, chain_row_b, decimals=6)
    devchain.mint(chain_a.url, on_a.address, HOLDER, 1000 * E18 + 1)  # 1000.000000000000000001
    devchain.mint(chain_b.url, on_b.address, HOLDER, 250_250000)  # 250.25
    settle(chain_a.url)
    settle(chain_b.url)
    return on_a, on_b


def test_two_chains_with_different_decimals_are_summed_exactly(asset, two_chains):
    for dep in two_chains:
        assert supply.read_deployment(dep.pk).status == "ok"

    result = supply.asset_supply(asset)

    assert [d.state for d in result.deployments] == ["ok", "ok"]
    assert result.circulating == Decimal("1250.250000000000000001")
    assert result.total_supply == Decimal("1250.250000000000000001")
    assert result.reason == "" and not result.includes_manual
    assert [r.asset.code for r in supply.latest_supply_by_asset()] == ["AAPLx"]


def test_no_total_while_a_chain_has_no_reading_or_only_a_failure(asset, two_chains, dead_url):
    on_a, on_b = two_chains
    supply.read_deployment(on_a.pk)

    result = supply.asset_supply(asset)
    assert result.circulating is None and result.total_supply is None
    assert "Anvil B: missing (no reading yet)" in result.reason

    Chain.objects.filter(pk=on_b.chain_id).update(rpc_urls=dead_url)
    with pytest.raises(supply.evm.RpcUnavailable):
        supply.read_deployment(on_b.pk)

    result = supply.asset_supply(asset)
    assert result.circulating is None  # never the partial sum 1000.000000000000000001
    row_b = _on(result, on_b)
    assert row_b.state == "failed" and "Connection refused" in row_b.latest_error.error
    assert "Anvil B: failed (RpcUnavailable" in result.reason


def test_fresh_reading_still_counts_after_a_newer_failure_but_not_once_stale(
    asset, two_chains, dead_url, settings
):
    on_a, on_b = two_chains
    for dep in two_chains:
        supply.read_deployment(dep.pk)
    Chain.objects.filter(pk=on_b.chain_id).update(rpc_urls=dead_url)
    with pytest.raises(supply.evm.RpcUnavailable):
        supply.read_deployment(on_b.pk)

    result = supply.asset_supply(asset)
    assert result.circulating == Decimal("1250.250000000000000001")
    assert _on(result, on_b).latest_error is not None  # shown beside the good reading

    later = timezone.now() + supply.CHAIN_STALE_AFTER + timedelta(minutes=1)
    result = supply.asset_supply(asset, now=later)
    assert result.circulating is None
    assert (_on(result, on_a).state, _on(result, on_b).state) == ("stale", "failed")


def test_manual_supply_is_labelled_and_counted(asset, two_chains, admin_user):
    on_a, on_b = two_chains
    supply.read_deployment(on_a.pk)
    Chain.objects.filter(pk=on_b.chain_id).update(rpc_urls="")

    manual = supply.record_manual_supply(
        on_b, Decimal("99.5"), reference="issuer attestation 2026-11-24", entered_by=admin_user
    )

    assert (manual.source, manual.status, manual.block_number) == ("manual", "ok", None)
    assert manual.get_source_display() == "issuer-reported (manual)"
    assert manual.total_supply_raw == 99_500000 and manual.entered_by == admin_user
    result = supply.asset_supply(asset)
    assert result.circulating == Decimal("1099.500000000000000001")
    assert result.includes_manual
    assert _on(result, on_b).reading.source == "manual"


def test_manual_supply_refuses_sub_unit_amounts_and_empty_references(two_chains, admin_user):
    _, on_b = two_chains
    with pytest.raises(ValidationError, match="finer than one base unit"):
        supply.record_manual_supply(
            on_b, Decimal("1.0000001"), reference="r", entered_by=admin_user
        )
    with pytest.raises(ValidationError):
        supply.record_manual_supply(on_b, Decimal(1), reference=" ", entered_by=admin_user)
    assert not SupplyReading.objects.exists()


def test_inactive_deployments_are_neither_read_nor_required(asset, two_chains):
    on_a, on_b = two_chains
    on_b.active = False
    on_b.save()
    assert supply.deployments_to_read() == [on_a.pk]
    supply.read_deployment(on_a.pk)
    assert supply.asset_supply(asset).circulating == Decimal("1000.000000000000000001")
