"""A failure that will not fix itself removes the figure at once; a transient one does not."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from audits import supply
from audits.core import devchain
from audits.models import Chain, SupplyReading, TokenDeployment

from .conftest import E18, HOLDER, settle

pytestmark = [pytest.mark.chain, pytest.mark.django_db]

REVERT = "0x60006000fd"  # REVERT(0, 0)
STOP = "0x00"  # returns no data


def _set_code(url: str, address: str, code: str) -> None:
    devchain._rpc(devchain._w3(url), "anvil_setCode", [address, code])
    devchain.mine(url, 3)


def _break_decimals(dep: TokenDeployment, url: str, chain_b_url: str) -> None:
    TokenDeployment.objects.filter(pk=dep.pk).update(decimals=6)


def _break_chain_id(dep: TokenDeployment, url: str, chain_b_url: str) -> None:
    Chain.objects.filter(pk=dep.chain_id).update(rpc_urls=chain_b_url)


BREAKERS: dict[str, tuple[Callable[[TokenDeployment, str, str], None], str]] = {
    "revert": (lambda dep, url, _: _set_code(url, dep.address, REVERT), "reverted"),
    "empty return data": (lambda dep, url, _: _set_code(url, dep.address, STOP), "no data"),
    "no code": (lambda dep, url, _: _set_code(url, dep.address, "0x"), "no contract"),
    "decimals mismatch": (_break_decimals, "decimals() = 18"),
    "chain id mismatch": (_break_chain_id, "serves chain id 8453"),
}


@pytest.fixture
def counted(api, asset, chain_row_a, chain_a, deploy) -> TokenDeployment:
    dep = deploy(asset, chain_row_a)
    devchain.mint(chain_a.url, dep.address, HOLDER, 9 * E18)
    settle(chain_a.url)
    assert supply.read_deployment(dep.pk).status == "ok"
    assert api.get(f"/api/v1/assets/{asset.code}/supply/").json()["complete"] is True
    return dep


@pytest.mark.parametrize("breaker", list(BREAKERS))
def test_a_permanent_failure_makes_the_supply_unknown_at_once(
    api, asset, counted, chain_a, chain_b, breaker
):
    brake, message = BREAKERS[breaker]
    brake(counted, chain_a.url, chain_b.url)

    failed = supply.read_deployment(counted.pk)  # not raised: no retry will fix it

    assert failed.status == "failed" and not failed.retryable and message in failed.error
    body = api.get(f"/api/v1/assets/{asset.code}/supply/").json()
    assert body["complete"] is False and body["circulating"] is None
    row = body["deployments"][0]
    assert row["state"] == "failed" and row["counted"] is False
    assert message in row["latest_error"]["error"]
    assert row["reading"]["circulating"] == "9.000000000000000000"  # shown, not counted
    assert row["reading"]["last_confirmed_at"] is not None


def test_a_later_good_read_counts_again_after_a_permanent_failure(asset, counted, chain_a):
    TokenDeployment.objects.filter(pk=counted.pk).update(decimals=6)
    supply.read_deployment(counted.pk)
    assert supply.asset_supply(asset).circulating is None

    TokenDeployment.objects.filter(pk=counted.pk).update(decimals=18)
    devchain.mine(chain_a.url, 1)
    supply.read_deployment(counted.pk)
    assert supply.asset_supply(asset).circulating == Decimal(9)


def test_a_transient_failure_after_a_permanent_one_does_not_bring_the_figure_back(
    asset, counted, dead_url
):
    TokenDeployment.objects.filter(pk=counted.pk).update(decimals=6)
    supply.read_deployment(counted.pk)
    Chain.objects.filter(pk=counted.chain_id).update(rpc_urls=dead_url)
    with pytest.raises(supply.evm.RpcUnavailable):
        supply.read_deployment(counted.pk)
    result = supply.asset_supply(asset)
    assert result.circulating is None and "DecimalsMismatch" in result.reason


def test_a_transient_failure_keeps_the_last_good_figure(api, asset, counted, dead_url):
    Chain.objects.filter(pk=counted.chain_id).update(rpc_urls=dead_url)
    with pytest.raises(supply.evm.RpcUnavailable):
        supply.read_deployment(counted.pk)
    body = api.get(f"/api/v1/assets/{asset.code}/supply/").json()
    assert body["complete"] is True and body["circulating"] == "9.000000000000000000"
    assert "Connection refused" in body["deployments"][0]["latest_error"]["error"]


def test_a_manual_figure_still_counts_for_a_chain_whose_reads_fail_permanently(
    asset, counted, admin_user
):
    TokenDeployment.objects.filter(pk=counted.pk).update(decimals=6)
    supply.read_deployment(counted.pk)
    supply.record_manual_supply(
        TokenDeployment.objects.get(pk=counted.pk),
        Decimal("8.5"),
        reference="issuer report",
        entered_by=admin_user,
    )
    result = supply.asset_supply(asset)
    assert result.circulating == Decimal("8.5") and result.includes_manual


# --------------------------------------------------------------------------- slow node


@pytest.fixture
def trickling_url() -> Iterator[str]:
    """A node that accepts, reads the request and answers one byte every 0.3 s, forever."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                while not stop.is_set():
                    conn.sendall(b"H")
                    time.sleep(0.3)
            except OSError:
                pass

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    srv.close()


def test_a_trickling_node_costs_one_rpc_timeout_and_keeps_the_last_figure(
    asset, counted, trickling_url
):
    Chain.objects.filter(pk=counted.chain_id).update(rpc_urls=trickling_url, rpc_timeout=1)
    started = time.monotonic()
    with pytest.raises(supply.evm.RpcUnavailable):
        supply.read_deployment(counted.pk)
    assert time.monotonic() - started < 2.0
    failed = SupplyReading.objects.filter(deployment=counted, status="failed").get()
    assert "within 1s" in failed.error and failed.retryable
    assert supply.asset_supply(asset).circulating == Decimal(9)
