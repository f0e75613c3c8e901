"""Fixtures for the Django side of on-chain supply: real anvil chains and matching Chain rows."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from audits.core import devchain
from audits.models import Asset, Chain, TokenDeployment
from tests.chain import conftest as chain_fixtures
from tests.chain.conftest import CHAIN_A, CHAIN_B

# Real anvil nodes and network-edge fakes, shared with the reader's own tests.
chain_a = chain_fixtures.chain_a
chain_b = chain_fixtures.chain_b
private_chain = chain_fixtures.private_chain
dead_url = chain_fixtures.dead_url
silent_url = chain_fixtures.silent_url

HOLDER, CUSTODY, TREASURY, OTHER = devchain.DEV_ACCOUNTS[1:5]
E18 = 10**18
CONFIRMATIONS = 2


@pytest.fixture
def asset(db) -> Asset:
    return Asset.objects.create(code="AAPLx", name="Apple tokenized", isin="US0378331005")


@pytest.fixture
def chain_row_a(db, chain_a) -> Chain:
    """Chain row for anvil A, reading CONFIRMATIONS blocks behind the head."""
    return Chain.objects.create(
        chain_id=CHAIN_A, name="Anvil A", rpc_urls=chain_a.url, confirmations=CONFIRMATIONS
    )


@pytest.fixture
def chain_row_b(db, chain_b) -> Chain:
    return Chain.objects.create(
        chain_id=CHAIN_B, name="Anvil B", rpc_urls=chain_b.url, confirmations=CONFIRMATIONS
    )


@pytest.fixture
def deploy() -> Callable[..., TokenDeployment]:
    """Deploy a fresh ReserveToken on `chain`'s anvil and register it as a deployment."""

    def make(asset: Asset, chain: Chain, decimals: int = 18, **fields) -> TokenDeployment:
        url = chain.rpc_url_list[0]
        address = devchain.deploy_token(url, asset.name, asset.code, decimals)
        return TokenDeployment.objects.create(
            asset=asset, chain=chain, address=address, decimals=decimals, **fields
        )

    return make


def settle(url: str) -> None:
    """Mine enough blocks that everything so far is CONFIRMATIONS deep."""
    devchain.mine(url, CONFIRMATIONS)
