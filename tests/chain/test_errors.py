"""Failure modes of read_supply: every one is an exception, never a supply of zero."""

from __future__ import annotations

import pickle
import time
import traceback

import pytest

from audits.core import devchain
from audits.core.evm import (
    ChainIdMismatch,
    ContractCallFailed,
    DecimalsMismatch,
    NegativeCirculatingSupply,
    RpcRejected,
    RpcUnavailable,
    SupplyReadError,
    read_supply,
)

from .conftest import CHAIN_A, CHAIN_B

pytestmark = pytest.mark.chain

HOLDER = devchain.DEV_ACCOUNTS[1]
NOBODY = "0x000000000000000000000000000000000000dEaD"
SECRET_PATH = "/v3/SECRETPATHKEY"
SECRET_QUERY = "?apikey=SECRETQUERYKEY"


def _assert_no_secret(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc)) + repr(exc) + repr(exc.args)
    for leak in ("SECRETPATHKEY", "SECRETQUERYKEY", "apikey"):
        assert leak not in text


def test_decimals_mismatch(chain_a):
    token = devchain.deploy_token(chain_a.url, "Six", "SIX", 6)
    with pytest.raises(DecimalsMismatch) as info:
        read_supply([chain_a.url], CHAIN_A, token, 18)
    msg = str(info.value)
    assert "decimals() = 6" in msg and "expected 18" in msg
    assert not info.value.retryable


def test_chain_id_mismatch_is_not_failed_over(chain_a, chain_b):
    token = devchain.deploy_token(chain_a.url, "Apple", "AAPLX", 18)
    with pytest.raises(ChainIdMismatch) as info:
        # chain_b answers first with the wrong id; the correct chain_a must not be tried.
        read_supply([chain_b.url, chain_a.url], CHAIN_A, token, 18)
    assert f"chain id {CHAIN_B}, expected {CHAIN_A}" in str(info.value)
    assert info.value.rpc == chain_b.url


def test_connection_refused_is_retryable_unavailable(dead_url):
    started = time.monotonic()
    with pytest.raises(RpcUnavailable) as info:
        read_supply([dead_url + SECRET_PATH + SECRET_QUERY], CHAIN_A, NOBODY, 18, timeout=5)
    assert time.monotonic() - started < 3
    assert info.value.retryable
    assert "refused" in str(info.value).lower()
    _assert_no_secret(info.value)


def test_hung_node_times_out_within_about_the_timeout(silent_url):
    started = time.monotonic()
    with pytest.raises(RpcUnavailable) as info:
        read_supply([silent_url + SECRET_PATH + SECRET_QUERY], CHAIN_A, NOBODY, 18, timeout=1.0)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.5
    assert "within 1s" in str(info.value)
    _assert_no_secret(info.value)


def test_failover_from_dead_and_hung_urls_to_a_live_one(chain_a, dead_url, silent_url):
    token = devchain.deploy_token(chain_a.url, "Apple", "AAPLX", 18)
    devchain.mint(chain_a.url, token, HOLDER, 42)
    obs = read_supply([dead_url, silent_url, chain_a.url], CHAIN_A, token, 18, timeout=0.5)
    assert obs.total_supply_raw == 42
    assert obs.rpc == chain_a.url


def test_all_urls_down_names_each_without_secrets(dead_url, silent_url):
    with pytest.raises(RpcUnavailable) as info:
        read_supply(
            [dead_url + SECRET_QUERY, silent_url + SECRET_PATH], CHAIN_A, NOBODY, 18, timeout=0.5
        )
    msg = str(info.value)
    assert "all 2 RPC endpoints failed" in msg
    assert dead_url in msg and silent_url in msg
    _assert_no_secret(info.value)


def test_no_contract_at_address(chain_a):
    with pytest.raises(ContractCallFailed) as info:
        read_supply([chain_a.url], CHAIN_A, NOBODY, 18)
    assert "no contract" in str(info.value) and NOBODY in str(info.value)
    with pytest.raises(ContractCallFailed):
        read_supply([chain_a.url], CHAIN_A, HOLDER, 18)  # an externally owned account


def test_reverting_contract_and_empty_return(chain_a):
    w3 = devchain._w3(chain_a.url)
    reverter = "0x00000000000000000000000000000000000bad01"
    silent = "0x00000000000000000000000000000000000bad02"
    devchain._rpc(w3, "anvil_setCode", [reverter, "0x60006000fd"])  # REVERT(0, 0)
    devchain._rpc(w3, "anvil_setCode", [silent, "0x00"])  # STOP: returns no data
    devchain.mine(chain_a.url, 1)
    with pytest.raises(ContractCallFailed) as info:
        read_supply([chain_a.url], CHAIN_A, reverter, 18)
    assert "decimals() reverted" in str(info.value)
    with pytest.raises(ContractCallFailed) as info:
        read_supply([chain_a.url], CHAIN_A, silent, 18)
    assert "returned no data" in str(info.value)


def _scripted(node, *, decimals: int = 18, total: int = 10, balance: int = 0, chain: int = 1):
    node.answers.update(
        {
            "eth_chainId": hex(chain),
            "eth_blockNumber": "0x10",
            "eth_getBlockByNumber": {
                "number": "0x10",
                "hash": "0x" + "ab" * 32,
                "timestamp": "0x1",
            },
            "eth_getCode": "0x6001",
        }
    )

    def call(req):
        data = req["params"][0]["data"]
        value = {"0x313ce567": decimals, "0x18160ddd": total}.get(data[:10], balance)
        body = f'{{"jsonrpc":"2.0","id":{req["id"]},"result":"0x{value:064x}"}}'
        return 200, body.encode()

    node.answers["eth_call"] = call


def test_excluded_more_than_total_is_an_error(fake_node):
    _scripted(fake_node, total=10, balance=11)  # a broken token, faked at the node
    with pytest.raises(NegativeCirculatingSupply) as info:
        read_supply([fake_node.url], 1, NOBODY, 18, excluded=[HOLDER])
    assert "more than totalSupply 10" in str(info.value)


def test_malformed_return_word(fake_node):
    _scripted(fake_node)
    fake_node.answers["eth_call"] = "0x" + "00" * 31  # 31 bytes, not a uint256 word
    with pytest.raises(ContractCallFailed) as info:
        read_supply([fake_node.url], 1, NOBODY, 18)
    assert "31 bytes" in str(info.value)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_http_5xx_and_429_are_unavailable_and_fail_over(fake_node, chain_a, status):
    token = devchain.deploy_token(chain_a.url, "Apple", "AAPLX", 18)
    fake_node.status = status
    with pytest.raises(RpcUnavailable) as info:
        read_supply([fake_node.url + SECRET_PATH + SECRET_QUERY], CHAIN_A, token, 18)
    assert f"HTTP {status}" in str(info.value)
    _assert_no_secret(info.value)
    obs = read_supply([fake_node.url, chain_a.url], CHAIN_A, token, 18)
    assert obs.rpc == chain_a.url


def test_http_401_is_rejected_and_not_failed_over(fake_node, chain_a):
    fake_node.status = 401
    with pytest.raises(RpcRejected) as info:
        read_supply([fake_node.url + SECRET_QUERY, chain_a.url], CHAIN_A, NOBODY, 18)
    assert not info.value.retryable
    assert "API key" in str(info.value)
    _assert_no_secret(info.value)


def test_non_json_answer_is_unavailable(fake_node):
    fake_node.answers["eth_chainId"] = lambda req: (200, b"<html>gateway</html>")
    with pytest.raises(RpcUnavailable):
        read_supply([fake_node.url], 1, NOBODY, 18)


def test_chain_id_mismatch_message_hides_path_and_query(fake_node):
    _scripted(fake_node, chain=5)
    with pytest.raises(ChainIdMismatch) as info:
        read_supply([fake_node.url + SECRET_PATH + SECRET_QUERY], 1, NOBODY, 18)
    assert fake_node.calls[0][0] == SECRET_PATH + SECRET_QUERY  # the key did reach the node
    assert f"RPC {fake_node.url}/… serves chain id 5, expected 1" == str(info.value)
    _assert_no_secret(info.value)


def test_node_error_for_pruned_state_is_unavailable(fake_node):
    _scripted(fake_node)
    fake_node.answers["eth_call"] = lambda req: (
        200,
        b'{"jsonrpc":"2.0","id":%d,"error":{"code":-32000,"message":"missing trie node"}}'
        % req["id"],
    )
    with pytest.raises(RpcUnavailable) as info:
        read_supply([fake_node.url], 1, NOBODY, 18)
    assert "missing trie node" in str(info.value)


@pytest.mark.parametrize(
    "exc",
    [
        RpcUnavailable("down", "http://h"),
        ChainIdMismatch("wrong", "http://h"),
        NegativeCirculatingSupply("neg", ""),
    ],
)
def test_errors_survive_pickling_for_celery(exc):
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert str(back) == str(exc) and back.rpc == exc.rpc
    assert isinstance(back, SupplyReadError)
    assert back.retryable == exc.retryable


def test_bad_arguments_are_programming_errors(chain_a):
    with pytest.raises(TypeError):
        read_supply(chain_a.url, CHAIN_A, NOBODY, 18)  # a str is not a list of URLs
    with pytest.raises(ValueError):
        read_supply([], CHAIN_A, NOBODY, 18)
    with pytest.raises(ValueError):
        read_supply([chain_a.url], CHAIN_A, NOBODY, 18, confirmations=-1)
