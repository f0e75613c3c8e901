"""A vanished block never counts: readings orphaned by reorgs on a real anvil chain."""

from __future__ import annotations

from decimal import Decimal

import pytest

from audits import supply
from audits.core import devchain
from audits.models import Chain, SupplyReading

from .conftest import CHAIN_A, E18, HOLDER

pytestmark = [pytest.mark.chain, pytest.mark.django_db]


@pytest.fixture
def reorg_chain(db, private_chain) -> Chain:
    """A private anvil read at the head (0 confirmations), as a careless setup would."""
    return Chain.objects.create(
        chain_id=CHAIN_A, name="Anvil", rpc_urls=private_chain.url, confirmations=0
    )


def _mint_then_mint_at_head(url: str, token: str) -> int:
    """100 tokens well below the head, then 50 more in the head block; returns the head."""
    devchain.mint(url, token, HOLDER, 100 * E18)
    devchain.mine(url, 3)
    return devchain.mint(url, token, HOLDER, 50 * E18)


def test_raising_confirmations_after_a_reorg_never_publishes_the_orphaned_figure(
    api, asset, reorg_chain, private_chain, deploy
):
    """Issue #9 point 10, the exact scenario: 0 -> 1 confirmations after a 2-block reorg."""
    url = private_chain.url
    dep = deploy(asset, reorg_chain)
    head = _mint_then_mint_at_head(url, dep.address)
    before = supply.read_deployment(dep.pk)
    assert (before.block_number, before.total_supply, before.confirmations) == (head, 150, 0)

    devchain.reorg(url, 2)  # replaces the head block: the 50-token mint never happened
    Chain.objects.filter(pk=reorg_chain.pk).update(confirmations=1)
    after = supply.read_deployment(dep.pk)

    assert (after.block_number, after.total_supply, after.confirmations) == (head - 1, 100, 1)
    before.refresh_from_db()
    assert before.orphaned_at is not None
    assert before.canonical_hash and before.canonical_hash != before.block_hash
    body = api.get(f"/api/v1/assets/{asset.code}/supply/").json()
    assert body["complete"] is True
    assert body["circulating"] == "100.000000000000000000"  # not the pre-reorg 150
    assert body["deployments"][0]["reading"]["id"] == after.pk
    rows = {r["id"]: r for r in api.get("/api/v1/supply-readings/").json()["results"]}
    assert rows[before.pk]["orphaned_at"] is not None
    assert rows[after.pk]["orphaned_at"] is None and rows[after.pk]["confirmations"] == 1


def test_a_reorg_that_replaces_a_mint_is_learned_at_the_same_height_for_every_token(
    asset, reorg_chain, private_chain, deploy
):
    url = private_chain.url
    first = deploy(asset, reorg_chain)
    second = deploy(asset, reorg_chain)
    devchain.mint(url, second.address, HOLDER, 5 * E18)
    head = _mint_then_mint_at_head(url, first.address)
    old_first = supply.read_deployment(first.pk)
    old_second = supply.read_deployment(second.pk)
    assert old_first.block_number == old_second.block_number == head
    assert supply.asset_supply(asset).circulating == Decimal(155)

    devchain.reorg(url, 2)
    new_first = supply.read_deployment(first.pk)  # same height, another hash

    assert (new_first.block_number, new_first.total_supply) == (head, 100)
    # Block hashes belong to the chain: the other token's reading at that height is
    # orphaned too, without reading it again, and the asset has no total until it is.
    orphaned = SupplyReading.objects.filter(orphaned_at__isnull=False)
    assert set(orphaned.values_list("pk", flat=True)) == {old_first.pk, old_second.pk}
    result = supply.asset_supply(asset)
    assert result.circulating is None
    assert f"block {head} was reorganised away" in result.reason

    supply.read_deployment(second.pk)
    assert supply.asset_supply(asset).circulating == Decimal(105)


def test_a_block_read_again_as_canonical_is_no_longer_orphaned(
    asset, reorg_chain, private_chain, deploy
):
    # anvil cannot bring back replaced blocks, so the earlier orphaning is stored directly:
    # e.g. a backup node on a short-lived fork had reported another hash at this height.
    url = private_chain.url
    dep = deploy(asset, reorg_chain)
    _mint_then_mint_at_head(url, dep.address)
    original = supply.read_deployment(dep.pk)
    SupplyReading.objects.filter(pk=original.pk).update(
        orphaned_at=original.attempted_at, canonical_hash="0x" + "ee" * 32
    )
    assert supply.asset_supply(asset).circulating is None

    again = supply.read_deployment(dep.pk)  # the node still holds this block at its height

    assert again.pk == original.pk and again.orphaned_at is None and again.canonical_hash == ""
    assert supply.asset_supply(asset).circulating == Decimal(150)


def test_deep_enough_confirmations_are_not_touched_by_a_shallow_reorg(
    asset, reorg_chain, private_chain, deploy
):
    url = private_chain.url
    Chain.objects.filter(pk=reorg_chain.pk).update(confirmations=3)
    dep = deploy(asset, reorg_chain)
    _mint_then_mint_at_head(url, dep.address)
    devchain.mine(url, 3)
    first = supply.read_deployment(dep.pk)
    devchain.reorg(url, 2)
    second = supply.read_deployment(dep.pk)
    assert second.pk == first.pk and second.orphaned_at is None
    assert not SupplyReading.objects.filter(orphaned_at__isnull=False).exists()
