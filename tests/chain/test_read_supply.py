"""read_supply against real anvil chains: pinning, history, reorgs, exclusions, multi-chain."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

import pytest
from web3 import Web3

from audits.core import devchain
from audits.core.evm import (
    ContractCallFailed,
    InvalidAddress,
    RpcUnavailable,
    SupplyObservation,
    read_supply,
    to_tokens,
)

from .conftest import CHAIN_A, CHAIN_B

pytestmark = pytest.mark.chain

HOLDER, CUSTODY, TREASURY, OTHER = devchain.DEV_ACCOUNTS[1:5]
E18 = 10**18


def _block(url: str, n: int | str) -> dict:
    return Web3(Web3.HTTPProvider(url)).eth.get_block(n)


def test_reads_supply_at_head_with_block_identity(chain_a, token_a):
    mined_in = devchain.mint(chain_a.url, token_a, HOLDER, 5 * E18)

    obs = read_supply([chain_a.url], CHAIN_A, token_a, 18)

    assert isinstance(obs, SupplyObservation)
    assert obs.chain_id == CHAIN_A
    assert obs.token == Web3.to_checksum_address(token_a)
    assert obs.block_number == mined_in == devchain.head(chain_a.url)
    block = _block(chain_a.url, mined_in)
    assert obs.block_hash == block["hash"].to_0x_hex()
    assert obs.block_timestamp.tzinfo is UTC
    assert int(obs.block_timestamp.timestamp()) == block["timestamp"]
    assert obs.decimals == 18
    assert obs.total_supply_raw == 5 * E18
    assert obs.circulating_raw == 5 * E18
    assert obs.excluded_balances == {}
    assert obs.total_supply == Decimal(5)
    assert obs.rpc == chain_a.url


def test_historic_reads_follow_mints_and_burns(chain_a, token_a):
    deployed_at = devchain.head(chain_a.url)
    b_mint1 = devchain.mint(chain_a.url, token_a, HOLDER, 100)
    devchain.mine(chain_a.url, 2)
    b_mint2 = devchain.mint(chain_a.url, token_a, OTHER, 50)
    b_burn = devchain.burn(chain_a.url, token_a, HOLDER, 30)
    devchain.mine(chain_a.url, 1)

    def at(block: int) -> int:
        return read_supply([chain_a.url], CHAIN_A, token_a, 18, block=block).total_supply_raw

    assert at(deployed_at) == 0  # a real, contract-reported zero at the deploy block
    assert at(b_mint1) == 100
    assert at(b_mint1 + 2) == 100
    assert at(b_mint2) == 150
    assert at(b_burn) == 120
    assert read_supply([chain_a.url], CHAIN_A, token_a, 18).total_supply_raw == 120
    obs = read_supply([chain_a.url], CHAIN_A, token_a, 18, block=b_mint2)
    assert obs.block_number == b_mint2
    assert obs.block_hash == _block(chain_a.url, b_mint2)["hash"].to_0x_hex()


def test_block_before_token_existed_is_an_error_not_zero(chain_a):
    before = devchain.head(chain_a.url)
    token = devchain.deploy_token(chain_a.url, "Late", "LATE", 18)
    with pytest.raises(ContractCallFailed) as info:
        read_supply([chain_a.url], CHAIN_A, token, 18, block=before)
    assert "no contract" in str(info.value)


def test_confirmations_pin_below_head(chain_a, token_a):
    devchain.mint(chain_a.url, token_a, HOLDER, 7)
    minted_at = devchain.head(chain_a.url)
    devchain.mint(chain_a.url, token_a, HOLDER, 3)
    head = devchain.mine(chain_a.url, 2)

    obs = read_supply([chain_a.url], CHAIN_A, token_a, 18, confirmations=3)
    assert obs.block_number == head - 3 == minted_at
    assert obs.total_supply_raw == 7


def test_explicit_block_newer_than_confirmations_allow_is_retryable(chain_a, token_a):
    head = devchain.head(chain_a.url)
    with pytest.raises(RpcUnavailable) as info:
        read_supply([chain_a.url], CHAIN_A, token_a, 18, block=head, confirmations=2)
    assert info.value.retryable
    with pytest.raises(RpcUnavailable):
        read_supply([chain_a.url], CHAIN_A, token_a, 18, block=head + 100)


def test_shallow_reorg_leaves_confirmed_reading_unchanged(private_chain):
    url = private_chain.url
    token = devchain.deploy_token(url, "Apple xStock", "AAPLX", 18)
    devchain.mint(url, token, HOLDER, 100 * E18)
    devchain.mine(url, 10)
    devchain.burn(url, token, HOLDER, 40 * E18)
    head_before = _block(url, "latest")

    confirmed = read_supply([url], CHAIN_A, token, 18, confirmations=5)
    at_head = read_supply([url], CHAIN_A, token, 18)
    assert confirmed.total_supply_raw == 100 * E18
    assert at_head.total_supply_raw == 60 * E18

    devchain.reorg(url, 3)  # replaces the newest 3 blocks (burn included) with empty ones

    head_after = _block(url, "latest")
    assert head_after["number"] == head_before["number"]
    assert head_after["hash"] != head_before["hash"]
    assert read_supply([url], CHAIN_A, token, 18).total_supply_raw == 100 * E18

    again = read_supply([url], CHAIN_A, token, 18, confirmations=5)
    assert again == confirmed  # same block number, hash, timestamp and supply
    by_number = read_supply([url], CHAIN_A, token, 18, block=confirmed.block_number)
    assert by_number.block_hash == confirmed.block_hash


def test_reorg_in_the_middle_of_a_read_is_refused_not_mixed(private_chain, rpc_proxy):
    url = private_chain.url
    token = devchain.deploy_token(url, "Apple xStock", "AAPLX", 18)
    pinned = devchain.mint(url, token, HOLDER, 100)
    devchain.burn(url, token, HOLDER, 100)
    fired: list[str] = []

    def reorg_after_pinning(method: str) -> None:
        # The read has fixed its block hash by now; replace that block before the calls.
        if method == "eth_getCode" and not fired:
            fired.append(method)
            devchain.reorg(url, 2)

    proxied = rpc_proxy(url, before=reorg_after_pinning)
    with pytest.raises(RpcUnavailable) as info:
        read_supply([proxied], CHAIN_A, token, 18, confirmations=1)
    assert fired
    assert info.value.retryable
    # After the reorg the mint is gone from the pinned height: a fresh read says so.
    obs = read_supply([url], CHAIN_A, token, 18, confirmations=1)
    assert obs.block_number == pinned
    assert obs.total_supply_raw == 0


def test_excluded_addresses_are_subtracted_once_and_checksummed(chain_a, token_a):
    devchain.mint(chain_a.url, token_a, HOLDER, 1_000)
    devchain.mint(chain_a.url, token_a, CUSTODY, 300)
    devchain.mint(chain_a.url, token_a, TREASURY, 200)

    obs = read_supply(
        [chain_a.url],
        CHAIN_A,
        token_a,
        18,
        # lowercase and duplicated entries must not double-count
        excluded=[CUSTODY.lower(), TREASURY, CUSTODY, OTHER],
    )
    assert obs.total_supply_raw == 1_500
    assert obs.excluded_balances == {CUSTODY: 300, TREASURY: 200, OTHER: 0}
    assert list(obs.excluded_balances) == [CUSTODY, TREASURY, OTHER]
    assert obs.circulating_raw == 1_000


def test_excluded_address_with_bad_checksum_is_refused(chain_a, token_a):
    bad = CUSTODY[:-1] + ("a" if CUSTODY[-1] != "a" else "b")
    bad = bad[:2] + bad[2:3].swapcase() + bad[3:]  # keep mixed case, break the checksum
    with pytest.raises(InvalidAddress):
        read_supply([chain_a.url], CHAIN_A, token_a, 18, excluded=[bad])
    with pytest.raises(InvalidAddress):
        read_supply([chain_a.url], CHAIN_A, token_a, 18, excluded=["0x1234"])


def test_one_asset_on_two_chains_with_different_decimals_sums_exactly(chain_a, chain_b):
    on_a = devchain.deploy_token(chain_a.url, "Apple xStock", "AAPLX", 18)
    on_b = devchain.deploy_token(chain_b.url, "Apple xStock", "AAPLX", 6)
    devchain.mint(chain_a.url, on_a, HOLDER, 1_500_000_000_000_000_001)  # 1.5 + 1 wei
    devchain.mint(chain_b.url, on_b, HOLDER, 2_250_000)  # 2.25
    devchain.mint(chain_b.url, on_b, CUSTODY, 1_000_000)  # 1.0, excluded (bridge custody)

    obs_a = read_supply([chain_a.url], CHAIN_A, on_a, 18)
    obs_b = read_supply([chain_b.url], CHAIN_B, on_b, 6, excluded=[CUSTODY])

    assert (obs_a.chain_id, obs_b.chain_id) == (CHAIN_A, CHAIN_B)
    total = to_tokens(obs_a.circulating_raw, obs_a.decimals) + to_tokens(
        obs_b.circulating_raw, obs_b.decimals
    )
    assert total == Decimal("3.750000000000000001")
    assert obs_b.total_supply == Decimal("3.25")
    assert obs_b.circulating == Decimal("2.25")
