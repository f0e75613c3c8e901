"""read_deployment on real anvil chains: what is stored for good reads and for every failure."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from web3 import Web3

from audits import supply
from audits.core import devchain
from audits.core.evm import RpcUnavailable, redact_url, to_tokens
from audits.models import Chain, ExcludedAddress, SupplyReading
from audits.tasks import read_supply_for_deployment

from .conftest import CHAIN_A, CHAIN_B, CONFIRMATIONS, E18, HOLDER, OTHER, TREASURY, settle

pytestmark = [pytest.mark.chain, pytest.mark.django_db]

UINT256_MAX = 2**256 - 1


def _block(url: str, number: int) -> dict:
    return Web3(Web3.HTTPProvider(url)).eth.get_block(number)


def test_reading_is_stored_with_its_block_and_rereading_it_stores_nothing_new(
    asset, chain_row_a, chain_a, deploy
):
    dep = deploy(asset, chain_row_a)
    devchain.mint(chain_a.url, dep.address, HOLDER, 1000 * E18 + 5 * 10**17)
    settle(chain_a.url)
    head = devchain.head(chain_a.url)

    reading = supply.read_deployment(dep.pk, task_id="t-1")

    reading.refresh_from_db()
    block = _block(chain_a.url, head - CONFIRMATIONS)
    assert (reading.status, reading.source) == ("ok", "chain")
    assert reading.block_number == head - CONFIRMATIONS
    assert reading.block_hash == block["hash"].to_0x_hex()
    assert int(reading.block_timestamp.timestamp()) == block["timestamp"]
    assert reading.as_of == reading.block_timestamp
    assert reading.decimals == 18
    assert reading.total_supply_raw == Decimal(1000 * E18 + 5 * 10**17)
    assert reading.total_supply == Decimal("1000.5")
    assert reading.circulating == Decimal("1000.5")
    assert reading.excluded_raw == 0 and reading.excluded_balances == {}
    assert reading.rpc == chain_a.url and reading.error == ""
    assert reading.task_id == "t-1"

    # No new block: the same block is read again and the stored reading is returned.
    again = supply.read_deployment(dep.pk, task_id="t-2")
    assert again.pk == reading.pk
    assert SupplyReading.objects.filter(deployment=dep).count() == 1
    assert again.last_confirmed_at >= reading.last_confirmed_at
    assert reading.confirmations == CONFIRMATIONS and reading.orphaned_at is None

    devchain.mine(chain_a.url, 1)
    newer = supply.read_deployment(dep.pk)
    assert newer.pk != reading.pk and newer.block_number == reading.block_number + 1


def test_excluded_addresses_are_subtracted(asset, chain_row_a, chain_a, deploy):
    dep = deploy(asset, chain_row_a, decimals=6)
    devchain.mint(chain_a.url, dep.address, HOLDER, 700_000000)
    devchain.mint(chain_a.url, dep.address, TREASURY, 250_000000)
    devchain.mint(chain_a.url, dep.address, OTHER, 1)
    settle(chain_a.url)
    ExcludedAddress.objects.create(deployment=dep, address=TREASURY, label="issuer treasury")
    # An inactive exclusion is not subtracted.
    ExcludedAddress.objects.create(deployment=dep, address=OTHER, label="old", active=False)

    reading = supply.read_deployment(dep.pk)

    assert reading.total_supply_raw == 950_000001
    assert reading.excluded_balances == {TREASURY: "250000000"}
    assert reading.excluded_raw == 250_000000
    assert reading.circulating_raw == 700_000001
    assert reading.circulating == Decimal("700.000001")


def test_reorg_shallower_than_confirmations_leaves_stored_reading_unchanged(
    asset, private_chain, deploy
):
    url = private_chain.url
    chain = Chain.objects.create(chain_id=CHAIN_A, name="private", rpc_urls=url, confirmations=5)
    dep = deploy(asset, chain)
    devchain.mint(url, dep.address, HOLDER, 100 * E18)
    devchain.mine(url, 10)
    devchain.burn(url, dep.address, HOLDER, 40 * E18)  # at the head, inside the reorg window

    stored = supply.read_deployment(dep.pk)
    assert stored.total_supply == 100

    devchain.reorg(url, 3)  # replaces the newest 3 blocks with empty ones: the burn is gone
    again = supply.read_deployment(dep.pk)

    assert again.pk == stored.pk
    assert SupplyReading.objects.filter(deployment=dep).count() == 1
    fresh = SupplyReading.objects.get(pk=stored.pk)
    assert (fresh.block_number, fresh.block_hash, fresh.total_supply_raw) == (
        stored.block_number,
        stored.block_hash,
        100 * E18,
    )
    assert _block(url, fresh.block_number)["hash"].to_0x_hex() == fresh.block_hash


def _assert_failed_without_amount(reading: SupplyReading, error_class: str) -> None:
    reading.refresh_from_db()
    assert reading.status == "failed"
    assert reading.error.startswith(error_class + ":"), reading.error
    amounts = [
        reading.total_supply_raw,
        reading.total_supply,
        reading.excluded_raw,
        reading.circulating_raw,
        reading.circulating,
        reading.block_number,
        reading.block_timestamp,
    ]
    assert amounts == [None] * len(amounts)


def test_decimals_mismatch_is_stored_as_error_without_amount(asset, chain_row_a, chain_a, deploy):
    dep = deploy(asset, chain_row_a, decimals=6)
    devchain.mint(chain_a.url, dep.address, HOLDER, 5)
    settle(chain_a.url)
    dep.decimals = 18  # configured wrongly
    dep.save()

    reading = supply.read_deployment(dep.pk)

    _assert_failed_without_amount(reading, "DecimalsMismatch")
    assert "decimals() = 6" in reading.error and not reading.retryable


def test_chain_id_mismatch_is_stored_as_error_without_amount(asset, chain_a, db):
    # The row says chain B, but its URL serves chain A: a pasted wrong URL.
    chain = Chain.objects.create(chain_id=CHAIN_B, name="B?", rpc_urls=chain_a.url)
    token = devchain.deploy_token(chain_a.url, "x", "X", 18)
    devchain.mint(chain_a.url, token, HOLDER, E18)
    dep = chain.deployments.create(asset=asset, address=token, decimals=18)

    reading = supply.read_deployment(dep.pk)

    _assert_failed_without_amount(reading, "ChainIdMismatch")
    assert f"serves chain id {CHAIN_A}, expected {CHAIN_B}" in reading.error


def test_connection_refused_is_recorded_and_retried_with_one_row_per_task(
    asset, chain_row_a, deploy, dead_url
):
    dep = deploy(asset, chain_row_a)
    Chain.objects.filter(pk=chain_row_a.pk).update(rpc_urls=dead_url)

    with pytest.raises(RpcUnavailable):
        supply.read_deployment(dep.pk)  # the service re-raises so the task can retry
    assert SupplyReading.objects.filter(deployment=dep).count() == 1

    # Eager Celery runs the retries inline: the first try plus max_retries.
    result = read_supply_for_deployment.apply(args=[dep.pk], task_id="retry-me")

    assert isinstance(result.result, RpcUnavailable)
    failed = SupplyReading.objects.get(deployment=dep, task_id="retry-me")
    _assert_failed_without_amount(failed, "RpcUnavailable")
    assert failed.attempts == 1 + read_supply_for_deployment.max_retries
    assert failed.retryable and "Connection refused" in failed.error
    assert not SupplyReading.objects.filter(deployment=dep, status="ok").exists()


def test_timeout_is_recorded_and_retried(asset, chain_row_a, deploy, silent_url):
    dep = deploy(asset, chain_row_a)
    Chain.objects.filter(pk=chain_row_a.pk).update(rpc_urls=silent_url, rpc_timeout=1)

    # Start as if 4 retries were spent: one more retry, so 2 attempts of 1 s each.
    read_supply_for_deployment.apply(args=[dep.pk], task_id="slow", retries=4)

    failed = SupplyReading.objects.get(deployment=dep, task_id="slow")
    _assert_failed_without_amount(failed, "RpcUnavailable")
    assert failed.attempts == 2
    assert "did not answer eth_chainId within 1s" in failed.error


def test_other_deployments_are_read_although_one_chain_is_down(
    asset, chain_row_a, chain_row_b, chain_b, deploy, dead_url
):
    down = deploy(asset, chain_row_a)
    up = deploy(asset, chain_row_b, decimals=6)
    devchain.mint(chain_b.url, up.address, HOLDER, 3_000000)
    settle(chain_b.url)
    Chain.objects.filter(pk=chain_row_a.pk).update(rpc_urls=dead_url)

    for dep in (down, up):
        read_supply_for_deployment.apply(args=[dep.pk], retries=5)

    assert SupplyReading.objects.get(deployment=down).status == "failed"
    assert SupplyReading.objects.get(deployment=up).circulating == 3


def test_rpc_url_placeholders_are_expanded_at_call_time_and_never_stored_or_logged(
    asset, chain_row_a, chain_a, deploy, monkeypatch, caplog
):
    dep = deploy(asset, chain_row_a)
    settle(chain_a.url)
    template = f"{chain_a.url}/?apikey=${{PORAPP_TEST_RPC_KEY}}"
    Chain.objects.filter(pk=chain_row_a.pk).update(rpc_urls=f"{template}\n")

    missing = supply.read_deployment(dep.pk)
    _assert_failed_without_amount(missing, "RpcNotConfigured")
    assert "${PORAPP_TEST_RPC_KEY} is not set" in missing.error and not missing.retryable

    monkeypatch.setenv("PORAPP_TEST_RPC_KEY", "s3cret-key")
    # Our own loggers at DEBUG. (urllib3 logs request paths at DEBUG: keep it at INFO.)
    caplog.set_level(logging.DEBUG, logger="audits")
    ok = supply.read_deployment(dep.pk)

    assert ok.status == "ok"
    assert ok.rpc == redact_url(chain_a.url + "/?apikey=x") == f"{chain_a.url}/…"
    stored = SupplyReading.objects.filter(deployment=dep).values_list("rpc", "error")
    assert "s3cret-key" not in repr(list(stored))
    assert "s3cret-key" not in caplog.text


def test_chain_without_rpc_url_is_not_scheduled_and_reads_fail_visibly(asset, deploy, chain_a):
    chain = Chain.objects.create(chain_id=CHAIN_A, name="no rpc", rpc_urls=chain_a.url)
    dep = deploy(asset, chain)
    assert supply.deployments_to_read() == [dep.pk]
    Chain.objects.filter(pk=chain.pk).update(rpc_urls="")
    assert supply.deployments_to_read() == []

    reading = supply.read_deployment(dep.pk)
    _assert_failed_without_amount(reading, "RpcNotConfigured")


def test_database_refuses_an_amount_on_a_failed_reading(asset, chain_row_a, deploy):
    dep = deploy(asset, chain_row_a)
    with pytest.raises(IntegrityError), transaction.atomic():
        SupplyReading.objects.create(
            deployment=dep,
            status="failed",
            error="x",
            total_supply_raw=0,
            attempted_at=timezone.now(),
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        SupplyReading.objects.create(
            deployment=dep, status="ok", source="chain", attempted_at=timezone.now()
        )


def test_uint256_amounts_survive_the_database_exactly(asset, chain_row_a, deploy):
    dep = deploy(asset, chain_row_a)
    now = timezone.now()
    tokens = to_tokens(UINT256_MAX, 36)
    reading = SupplyReading.objects.create(
        deployment=dep, status="ok", source="chain", block_number=1, block_hash="0x" + "ab" * 32,
        block_timestamp=now, as_of=now, decimals=36, total_supply_raw=Decimal(UINT256_MAX),
        total_supply=tokens, circulating_raw=Decimal(UINT256_MAX), circulating=tokens,
        attempted_at=now,
    )  # fmt: skip
    back = SupplyReading.objects.get(pk=reading.pk)
    assert int(back.total_supply_raw) == UINT256_MAX
    assert back.total_supply == tokens
    assert str(back.circulating) == (
        "115792089237316195423570985008687907853269.984665640564039457584007913129639935"
    )
