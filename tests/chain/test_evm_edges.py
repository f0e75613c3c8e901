"""Edges of the supply reader against scripted nodes on loopback (no anvil needed).

Remote nodes are outside the machine, so they are faked at the network edge: small HTTP servers
on 127.0.0.1 that answer JSON-RPC as a script says and record what they were sent. Messages are
asserted whole: they are what an operator reads when a supply cannot be read.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from eth_utils import to_checksum_address

from audits.core.evm import (
    MAX_ANSWER_BYTES,
    ChainIdMismatch,
    ContractCallFailed,
    DecimalsMismatch,
    InvalidAddress,
    NegativeCirculatingSupply,
    RpcRejected,
    RpcUnavailable,
    SupplyReadError,
    read_supply,
    redact_url,
    to_tokens,
)

TOKEN = "0x000000000000000000000000000000000000dEaD"
HOLDER_A = to_checksum_address("0x" + "11" * 20)
HOLDER_B = to_checksum_address("0x" + "a2" * 20)
HASH = "0x" + "ab" * 32
OTHER_HASH = "0x" + "cd" * 32
STAMP = 1_764_000_000

Answer = Callable[[dict[str, Any]], Any]


@dataclass
class Node:
    """A scripted JSON-RPC endpoint; ``script[method](request)`` gives the result, or a
    ``Reply`` for full control of status, headers and body."""

    url: str = ""
    script: dict[str, Answer] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        return [r["method"] for r in self.requests]

    def params(self, method: str) -> list[list[Any]]:
        return [r["params"] for r in self.requests if r["method"] == method]


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _result(req: dict[str, Any], value: Any) -> Reply:
    return Reply(body=json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": value}).encode())


def _error(req: dict[str, Any], error: Any) -> Reply:
    return Reply(body=json.dumps({"jsonrpc": "2.0", "id": req["id"], "error": error}).encode())


@pytest.fixture
def serve() -> Iterator[Callable[[], Node]]:
    """Start scripted nodes on loopback; each call gives a new one."""
    servers: list[ThreadingHTTPServer] = []

    def start() -> Node:
        node = Node()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                req = json.loads(raw)
                node.requests.append(req)
                node.headers.append(dict(self.headers.items()))
                node.paths.append(self.path)
                answer = node.script.get(req.get("method"))
                if answer is None:
                    reply = _error(req, {"code": -32601, "message": "method not found"})
                else:
                    value = answer(req)
                    reply = value if isinstance(value, Reply) else _result(req, value)
                self.send_response(reply.status)
                for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args: Any) -> None:
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(srv)
        node.url = f"http://127.0.0.1:{srv.server_address[1]}"
        return node

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def token_node(
    node: Node,
    *,
    chain: int = 1,
    head: int = 16,
    decimals: int = 18,
    total: int = 10**21,
    balances: dict[str, int] | None = None,
    hashes: list[str] | None = None,
    code: Any = "0x6001",
) -> Node:
    """Script ``node`` as a chain holding one ERC-20 at TOKEN."""
    held = balances or {}
    header_hashes = list(hashes or [])

    def header(req: dict[str, Any]) -> Any:
        block_hash = header_hashes.pop(0) if header_hashes else HASH
        return {"number": req["params"][0], "hash": block_hash, "timestamp": hex(STAMP)}

    def call(req: dict[str, Any]) -> Any:
        data = req["params"][0]["data"]
        if data == "0x313ce567":
            value = decimals
        elif data == "0x18160ddd":
            value = total
        else:
            assert data.startswith("0x70a08231") and len(data) == 2 + 8 + 64
            value = held[to_checksum_address("0x" + data[-40:])]
        return f"0x{value:064x}"

    node.script.update(
        {
            "eth_chainId": lambda req: hex(chain),
            "eth_blockNumber": lambda req: hex(head),
            "eth_getBlockByNumber": header,
            "eth_getCode": lambda req: code,
            "eth_call": call,
        }
    )
    return node


def read(node: Node, **kwargs: Any):
    return read_supply([node.url], kwargs.pop("chain", 1), TOKEN, 18, **kwargs)


def refusal(kind: type[SupplyReadError], node: Node, **kwargs: Any) -> str:
    with pytest.raises(kind) as info:
        read(node, **kwargs)
    assert info.value.rpc == node.url
    return str(info.value)


@pytest.fixture
def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- a whole read ------------------------------------------------------------------------------


def test_a_pinned_read_returns_every_field_and_names_the_block_by_hash(serve):
    node = token_node(
        serve(),
        head=20,
        total=10**21,
        balances={HOLDER_A: 3 * 10**20, HOLDER_B: 10**18},
        hashes=[HASH.upper().replace("0X", "0x")] * 2,
    )
    # HOLDER_A is listed twice (once lower-case): it must be subtracted once.
    obs = read(node, excluded=[HOLDER_A, HOLDER_B, HOLDER_A.lower()], confirmations=4)
    assert obs.chain_id == 1
    assert obs.token == TOKEN
    assert obs.block_number == 16
    assert obs.block_hash == HASH  # lower-cased
    assert obs.block_timestamp == datetime.fromtimestamp(STAMP, UTC)
    assert obs.decimals == 18
    assert obs.total_supply_raw == 10**21
    assert obs.excluded_balances == {HOLDER_A: 3 * 10**20, HOLDER_B: 10**18}
    assert obs.circulating_raw == 10**21 - 3 * 10**20 - 10**18
    assert obs.total_supply == Decimal(1000)
    assert obs.circulating == Decimal("699")
    assert obs.rpc == node.url

    assert node.methods == [
        "eth_chainId",
        "eth_blockNumber",
        "eth_getBlockByNumber",
        "eth_getCode",
        "eth_call",
        "eth_call",
        "eth_call",
        "eth_call",
        "eth_getBlockByNumber",
    ]
    assert [r["id"] for r in node.requests] == list(range(1, 10))
    assert all(r["jsonrpc"] == "2.0" for r in node.requests)
    assert all(h["Content-Type"] == "application/json" for h in node.headers)
    assert node.params("eth_chainId") == node.params("eth_blockNumber") == [[]]
    assert node.params("eth_getBlockByNumber") == [["0x10", False]] * 2
    at = {"blockHash": HASH, "requireCanonical": True}
    assert node.params("eth_getCode") == [[TOKEN, at]]
    assert node.params("eth_call") == [
        [{"to": TOKEN, "data": "0x313ce567"}, at],
        [{"to": TOKEN, "data": "0x18160ddd"}, at],
        [{"to": TOKEN, "data": "0x70a08231" + ("11" * 20).rjust(64, "0")}, at],
        [{"to": TOKEN, "data": "0x70a08231" + HOLDER_B[2:].lower().rjust(64, "0")}, at],
    ]


def test_excluded_balances_may_add_up_to_the_total_but_not_beyond(serve):
    node = token_node(serve(), total=10, balances={HOLDER_A: 10})
    assert read(node, excluded=[HOLDER_A]).circulating_raw == 0
    node = token_node(serve(), total=10, balances={HOLDER_A: 7, HOLDER_B: 4})
    with pytest.raises(NegativeCirculatingSupply) as info:
        read(node, excluded=[HOLDER_A, HOLDER_B])
    assert str(info.value) == (
        f"excluded balances of {TOKEN} on chain 1 sum to 11 base units, "
        "more than totalSupply 10 at block 16"
    )
    assert info.value.rpc == node.url


# --- which block -------------------------------------------------------------------------------


def test_confirmations_may_take_the_read_down_to_block_zero_and_no_further(serve):
    assert read(token_node(serve(), head=5), confirmations=5).block_number == 0
    node = token_node(serve(), head=5)
    assert refusal(RpcUnavailable, node, confirmations=6) == (
        f"RPC {node.url} head is block 5, fewer than the 6 confirmations required"
    )


def test_an_explicit_block_up_to_the_safe_head_is_read_and_later_ones_are_not_yet(serve):
    node = token_node(serve(), head=20)
    assert read(node, block=16, confirmations=4).block_number == 16
    assert read(token_node(serve(), head=0), block=0).block_number == 0
    node = token_node(serve(), head=20)
    assert refusal(RpcUnavailable, node, block=17, confirmations=4) == (
        f"block 17 is not available with 4 confirmations via {node.url} (head 20)"
    )


def test_bad_arguments_are_programming_errors_with_their_reason(serve):
    node = token_node(serve())
    with pytest.raises(TypeError) as info:
        read_supply(node.url, 1, TOKEN, 18)
    assert str(info.value) == "rpc_urls must be a sequence of URLs, not a single string"
    for kwargs, message in [
        ({"rpc_urls": []}, "at least one RPC URL is required"),
        ({"confirmations": -1}, "confirmations must be >= 0"),
        ({"block": -1}, "block must be >= 0"),
        ({"timeout": 0}, "timeouts must be > 0"),
        ({"total_timeout": 0}, "timeouts must be > 0"),
        ({"check_blocks": [-1]}, "check_blocks must be block numbers >= 0"),
        ({"check_blocks": [True]}, "check_blocks must be block numbers >= 0"),
        ({"check_blocks": ["1"]}, "check_blocks must be block numbers >= 0"),
    ]:
        args = {"rpc_urls": [node.url], "expected_chain_id": 1, "token": TOKEN}
        args.update(kwargs)
        with pytest.raises(ValueError) as info:
            read_supply(expected_decimals=18, **args)
        assert str(info.value) == message
    assert node.requests == []  # nothing was sent for a bad call
    assert read(node, timeout=0.5, confirmations=0, block=0).block_number == 0


def test_addresses_are_checksummed_and_a_wrong_checksum_is_refused(serve):
    node = token_node(serve(), balances={HOLDER_B: 1})
    assert read_supply([node.url], 1, TOKEN.lower(), 18).token == TOKEN
    upper = "0x" + TOKEN[2:].upper()
    assert read_supply([node.url], 1, upper, 18, excluded=[HOLDER_B.lower()]).token == TOKEN
    wrong = "0x000000000000000000000000000000000000DeAd"
    for token, excluded, message in [
        (wrong, [], f"token address {wrong} has a wrong EIP-55 checksum"),
        ("0xnope", [], "token address '0xnope' is not a 20-byte hex address"),
        (5, [], "token address 5 is not a 20-byte hex address"),
        (TOKEN, [wrong], f"excluded address {wrong} has a wrong EIP-55 checksum"),
        # Mixed case starting right after 0x (only the first letter lower-case).
        ("0xa" + "B" * 39, [], f"token address 0xa{'B' * 39} has a wrong EIP-55 checksum"),
        (TOKEN, ["0x" + "1" * 41], f"excluded address '0x{'1' * 41}' is not a 20-byte hex address"),
    ]:
        with pytest.raises(InvalidAddress) as info:
            read_supply([node.url], 1, token, 18, excluded=excluded)
        assert str(info.value) == message
        assert isinstance(info.value, ValueError)


# --- wrong chain, wrong token ------------------------------------------------------------------


def test_a_node_on_another_chain_is_refused_and_not_failed_over(serve):
    wrong, right = token_node(serve(), chain=5), token_node(serve())
    with pytest.raises(ChainIdMismatch) as info:
        read_supply([wrong.url, right.url], 1, TOKEN, 18)
    assert str(info.value) == f"RPC {wrong.url} serves chain id 5, expected 1"
    assert info.value.rpc == wrong.url
    assert right.requests == []


def test_a_bad_total_supply_word_is_named_as_totalsupply(serve):
    node = token_node(serve())
    call = node.script["eth_call"]
    node.script["eth_call"] = lambda req: (
        "0x" if req["params"][0]["data"] == "0x18160ddd" else call(req)
    )
    assert refusal(ContractCallFailed, node) == (
        f"totalSupply() on {TOKEN} at block 16 via {node.url} returned no data, expected one "
        "32-byte word (is this an ERC-20?)"
    )


def test_a_bad_balance_word_names_the_excluded_address(serve):
    node = token_node(serve(), balances={HOLDER_A: 1})
    call = node.script["eth_call"]
    node.script["eth_call"] = lambda req: (
        "0x" if req["params"][0]["data"].startswith("0x70a08231") else call(req)
    )
    assert refusal(ContractCallFailed, node, excluded=[HOLDER_A]) == (
        f"balanceOf({HOLDER_A}) on {TOKEN} at block 16 via {node.url} returned no data, "
        "expected one 32-byte word (is this an ERC-20?)"
    )


def test_decimals_mismatch(serve):
    node = token_node(serve(), decimals=6)
    assert refusal(DecimalsMismatch, node) == (
        f"{TOKEN} on chain 1 reports decimals() = 6 at block 16, expected 18 (via {node.url})"
    )


@pytest.mark.parametrize("code", ["0x", "0x0", "", None])
def test_no_contract_at_the_address(serve, code):
    node = token_node(serve(), code=code)
    assert refusal(ContractCallFailed, node) == (
        f"no contract at {TOKEN} on chain 1 at block 16 (via {node.url})"
    )


def test_a_revert_is_a_contract_failure_and_other_node_errors_are_unavailability(serve):
    for error, kind, message in [
        (
            {"code": 3, "message": "execution reverted"},
            ContractCallFailed,
            "decimals() reverted on {token} at block 16 via {url}: execution reverted",
        ),
        (
            {"code": -32000, "message": "VM Exception: Revert"},
            ContractCallFailed,
            "decimals() reverted on {token} at block 16 via {url}: VM Exception: Revert",
        ),
        (
            {"code": -32000, "message": "missing trie node"},
            RpcUnavailable,
            "RPC {url} returned error -32000 for eth_call: missing trie node",
        ),
        (
            {"code": -32000, "message": "x" * 400},
            RpcUnavailable,
            "RPC {url} returned error -32000 for eth_call: " + "x" * 300,
        ),
        ("boom", RpcUnavailable, "RPC {url} returned error None for eth_call: "),
    ]:
        node = token_node(serve())
        node.script["eth_call"] = lambda req, error=error: _error(req, error)
        assert refusal(kind, node) == message.format(token=TOKEN, url=node.url)


@pytest.mark.parametrize(
    ("word", "says"),
    [
        (5, "returned 5"),
        ("abc", "returned 'abc'"),
        ("0x", "returned no data, expected one 32-byte word (is this an ERC-20?)"),
        ("0x" + "00" * 31, "returned 31 bytes, expected one 32-byte word (is this an ERC-20?)"),
        ("0x" + "00" * 33, "returned 33 bytes, expected one 32-byte word (is this an ERC-20?)"),
        ("0x" + "zz" * 32, "returned non-hex data"),
    ],
)
def test_a_return_value_that_is_not_one_word(serve, word, says):
    node = token_node(serve())
    node.script["eth_call"] = lambda req: word
    assert refusal(ContractCallFailed, node) == (
        f"decimals() on {TOKEN} at block 16 via {node.url} {says}"
    )


# --- malformed node answers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "value", "what"),
    [
        ("eth_chainId", "1", "chain id: '1'"),
        ("eth_chainId", 1, "chain id: 1"),
        ("eth_chainId", "0xzz", "chain id: '0xzz'"),
        ("eth_chainId", "0x" + "g" * 100, "chain id: '0x" + "g" * 77),
        ("eth_blockNumber", None, "block number: None"),
    ],
)
def test_a_malformed_number_is_unavailability(serve, method, value, what):
    node = token_node(serve())
    node.script[method] = lambda req: value
    assert refusal(RpcUnavailable, node) == f"RPC {node.url} returned a malformed {what}"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "has no block 16"),
        ([], "has no block 16"),
        ({"number": "0x11", "hash": HASH, "timestamp": "0x1"}, "returned a malformed block 16"),
        ({"number": "0x10", "hash": HASH[:-1], "timestamp": "0x1"},
         "returned a malformed block 16"),
        ({"number": "0x10", "hash": HASH + "a", "timestamp": "0x1"},
         "returned a malformed block 16"),
        ({"number": "0x10", "hash": "1x" + HASH[2:], "timestamp": "0x1"},
         "returned a malformed block 16"),
        ({"number": "0x10", "hash": 5, "timestamp": "0x1"}, "returned a malformed block 16"),
        ({"number": "16", "hash": HASH, "timestamp": "0x1"}, "returned a malformed block number: "
         "'16'"),
        ({"number": "0x10", "hash": HASH, "timestamp": 1}, "returned a malformed timestamp: 1"),
    ],
)  # fmt: skip
def test_a_malformed_block_header_is_unavailability(serve, header, message):
    node = token_node(serve())
    node.script["eth_getBlockByNumber"] = lambda req: header
    assert refusal(RpcUnavailable, node) == f"RPC {node.url} {message}"


def test_a_block_reorganised_during_the_read_is_retried_later(serve):
    node = token_node(serve(), hashes=[HASH, OTHER_HASH])
    text = refusal(RpcUnavailable, node)
    assert text == (
        f"block 16 was reorganised during the read via {node.url} ({HASH} -> {OTHER_HASH}); retry"
    )


@pytest.mark.parametrize("status", [500, 503, 599, 408, 429])
def test_overload_and_server_errors_are_unavailability(serve, status):
    node = serve()
    node.script["eth_chainId"] = lambda req: Reply(status=status, body=b"busy")
    assert refusal(RpcUnavailable, node) == f"RPC {node.url} answered HTTP {status} to eth_chainId"


@pytest.mark.parametrize("status", [300, 400, 401, 403, 404, 499])
def test_other_answers_from_300_up_are_rejections(serve, status):
    node = serve()
    node.script["eth_chainId"] = lambda req: Reply(status=status, body=b"no")
    assert refusal(RpcRejected, node) == (
        f"RPC {node.url} answered HTTP {status} to eth_chainId; check the URL and API key"
    )


def test_any_2xx_with_a_json_rpc_body_is_an_answer(serve):
    node = token_node(serve())
    chain_id = node.script["eth_chainId"]
    node.script["eth_chainId"] = lambda req: Reply(
        status=299, body=_result(req, chain_id(req)).body
    )
    assert read(node).chain_id == 1


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (lambda req: b"<html>gateway</html>", "sent a non-JSON answer to eth_chainId"),
        (lambda req: b"[1]", "sent a malformed JSON-RPC answer to eth_chainId"),
        (lambda req: json.dumps({"id": req["id"] + 1, "result": "0x1"}).encode(),
         "sent a malformed JSON-RPC answer to eth_chainId"),
        (lambda req: json.dumps({"id": req["id"]}).encode(), "sent no result for eth_chainId"),
    ],
)  # fmt: skip
def test_a_malformed_json_rpc_answer_is_unavailability(serve, body, says):
    node = serve()
    node.script["eth_chainId"] = lambda req: Reply(body=body(req))
    assert refusal(RpcUnavailable, node) == f"RPC {node.url} {says}"


# --- the network -------------------------------------------------------------------------------


def test_a_refused_connection_names_the_reason_only(dead_url):
    with pytest.raises(RpcUnavailable) as info:
        read_supply([dead_url + "/v3/SECRET?key=SECRET"], 1, TOKEN, 18)
    assert str(info.value) == f"RPC {dead_url}/… unreachable for eth_chainId: Connection refused"
    assert info.value.rpc == f"{dead_url}/…"
    assert info.value.retryable and "SECRET" not in repr(info.value.args)


def test_a_url_that_is_not_http_is_refused_before_anything_is_sent():
    for url, shown in [
        ("http://", "http://?"),
        ("https://", "https://?"),
        ("ftp://node", "ftp://node"),
        ("http://node:99999", "<unparseable RPC URL>"),
    ]:
        with pytest.raises(RpcRejected) as info:
            read_supply([url], 1, TOKEN, 18)
        assert str(info.value) == f"RPC {shown} is not an http(s) URL"
        assert info.value.rpc == shown and not info.value.retryable


def test_a_node_that_never_answers_times_out():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    url = f"http://127.0.0.1:{srv.getsockname()[1]}"
    try:
        with pytest.raises(RpcUnavailable) as info:
            read_supply([url], 1, TOKEN, 18, timeout=0.25)
    finally:
        srv.close()
    assert str(info.value) == (
        f"RPC {url} did not answer eth_chainId within 0.25s "
        "(the deadline for the whole read from this endpoint)"
    )
    assert info.value.rpc == url and info.value.retryable


def test_failover_moves_on_only_after_unavailability(serve, dead_url):
    good = token_node(serve())
    obs = read_supply([dead_url, good.url], 1, TOKEN, 18)
    assert obs.rpc == good.url and obs.total_supply_raw == 10**21
    # One endpoint: its own error, not a summary of one.
    with pytest.raises(RpcUnavailable) as info:
        read_supply([dead_url], 1, TOKEN, 18)
    single = str(info.value)
    assert single == f"RPC {dead_url} unreachable for eth_chainId: Connection refused"
    busy = serve()
    busy.script["eth_chainId"] = lambda req: Reply(status=503)
    with pytest.raises(RpcUnavailable) as info:
        read_supply([dead_url, busy.url + "/key"], 1, TOKEN, 18)
    assert str(info.value) == (
        f"all 2 RPC endpoints failed: {single}; RPC {busy.url}/… answered HTTP 503 to eth_chainId"
    )
    assert info.value.rpc == f"{busy.url}/…"
    # The summary's endpoint is the last one tried, whatever the number of endpoints.
    with pytest.raises(RpcUnavailable) as info:
        read_supply([dead_url, busy.url + "/a", dead_url + "/b"], 1, TOKEN, 18)
    assert str(info.value).startswith("all 3 RPC endpoints failed: ")
    assert info.value.rpc == f"{dead_url}/…"


def test_proxy_variables_do_not_steer_node_traffic(serve, dead_url, monkeypatch):
    # A proxy that refuses every connection: a read that went through it would fail.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, dead_url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    node = token_node(serve())
    assert read(node).total_supply_raw == 10**21
    assert node.methods[0] == "eth_chainId"


@pytest.mark.parametrize("status", [301, 307, 308])
def test_a_redirect_is_not_followed(serve, status):
    target = token_node(serve())
    node = serve()
    node.script["eth_chainId"] = lambda req: Reply(
        status=status, headers={"Location": target.url + "/"}
    )
    assert refusal(RpcRejected, node) == (
        f"RPC {node.url} answered HTTP {status} to eth_chainId; check the URL and API key"
    )
    assert target.requests == []


def test_the_key_in_the_url_reaches_the_node_and_nothing_else(serve):
    node = token_node(serve(), chain=5)
    with pytest.raises(ChainIdMismatch) as info:
        read_supply([node.url + "/v3/KEY?apikey=KEY"], 1, TOKEN, 18)
    assert node.paths == ["/v3/KEY?apikey=KEY"]
    assert str(info.value) == f"RPC {node.url}/… serves chain id 5, expected 1"


# --- errors and helpers ------------------------------------------------------------------------


def test_errors_keep_message_and_endpoint_through_pickling():
    for exc in (
        RpcUnavailable("down", "http://h"),
        RpcRejected("key", "http://h"),
        ContractCallFailed("revert"),
    ):
        back = pickle.loads(pickle.dumps(exc))
        assert (type(back), str(back), back.message, back.rpc) == (
            type(exc),
            str(exc),
            exc.message,
            exc.rpc,
        )
        # Celery's JSON result backend rebuilds an exception from its args alone.
        rebuilt = type(exc)(*exc.args)
        assert (str(rebuilt), rebuilt.rpc) == (str(exc), exc.rpc)
    assert ContractCallFailed("revert").rpc == ""
    assert RpcUnavailable.retryable and not SupplyReadError.retryable
    assert not any(k.retryable for k in (RpcRejected, ChainIdMismatch, DecimalsMismatch))


def test_to_tokens_edges():
    assert to_tokens(1, 255) == Decimal("1E-255")
    assert to_tokens(5, 0) == Decimal(5)
    for bad, message in [
        (256, "decimals must be an int in 0..255, got 256"),
        (-1, "decimals must be an int in 0..255, got -1"),
        (True, "decimals must be an int in 0..255, got True"),
        (18.0, "decimals must be an int in 0..255, got 18.0"),
    ]:
        with pytest.raises(ValueError) as info:
            to_tokens(1, bad)
        assert str(info.value) == message
    with pytest.raises(TypeError) as info:
        to_tokens(True, 18)
    assert str(info.value) == "raw amount must be int, got bool"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://h:1/#frag", "http://h:1/…"),
        ("http://h:1?q", "http://h:1/…"),
        ("http://h:1//", "http://h:1"),
        ("http://h:1/x/", "http://h:1/…"),
        ("/just/a/path", "?://?/…"),
        ("http://h:1/X", "http://h:1/…"),
    ],
)
def test_redact_url_edges(url, shown):
    assert redact_url(url) == shown


# --- the HTTP client: one connection, one deadline, one reconnect --------------------------------


def _request(conn: socket.socket) -> dict[str, Any] | None:
    """Read one HTTP request from ``conn``; its JSON body, or None once the client hung up."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return json.loads(body)


def _http(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body


@pytest.fixture
def raw_node() -> Iterator[Callable[[Callable[[socket.socket, int], None]], str]]:
    """Loopback TCP nodes: ``handle(conn, n)`` runs for the n-th connection (from 1)."""
    stop = threading.Event()
    sockets: list[socket.socket] = []

    def make(handle: Callable[[socket.socket, int], None]) -> str:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        srv.settimeout(0.1)
        sockets.append(srv)

        def accept() -> None:
            n = 0
            while not stop.is_set():
                try:
                    conn, _ = srv.accept()
                except OSError:
                    continue
                n += 1
                # OSError: the client hung up, which is what a deadline does.
                with conn, contextlib.suppress(OSError):
                    handle(conn, n)

        threading.Thread(target=accept, daemon=True).start()
        return f"http://127.0.0.1:{srv.getsockname()[1]}"

    yield make
    stop.set()
    for srv in sockets:
        srv.close()


def test_a_kept_alive_connection_closed_by_the_node_is_reopened_once(raw_node):
    calls: list[tuple[int, str]] = []

    def handle(conn: socket.socket, n: int) -> None:
        # Answers one request per connection, then closes it without saying so (no
        # `Connection: close`), as a node's idle timeout does.
        req = _request(conn)
        if req is None:
            return
        calls.append((n, req["method"]))
        if req["method"] == "eth_chainId":
            body = {"jsonrpc": "2.0", "id": req["id"], "result": "0x1"}
        else:
            body = {"jsonrpc": "2.0", "id": req["id"], "error": {"code": 1, "message": "no"}}
        conn.sendall(_http(json.dumps(body).encode()))

    url = raw_node(handle)
    with pytest.raises(SupplyReadError) as info:
        read_supply([url], 1, TOKEN, 18)
    # The second call met the closed connection and went out again on a new one.
    assert calls == [(1, "eth_chainId"), (2, "eth_blockNumber")]
    assert str(info.value) == f"RPC {url} returned error 1 for eth_blockNumber: no"


def test_a_fresh_connection_closed_without_an_answer_is_not_retried(raw_node):
    connections: list[int] = []

    def handle(conn: socket.socket, n: int) -> None:
        connections.append(n)
        _request(conn)  # read it, then hang up without a word

    url = raw_node(handle)
    with pytest.raises(RpcUnavailable) as info:
        read_supply([url], 1, TOKEN, 18)
    assert str(info.value) == f"RPC {url} unreachable for eth_chainId: RemoteDisconnected"
    time.sleep(0.2)  # a retry would have connected by now
    assert connections == [1]


def test_a_trickled_answer_is_abandoned_at_the_whole_read_deadline(raw_node):
    def handle(conn: socket.socket, n: int) -> None:
        req = _request(conn)
        if req is None:
            return
        body = json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": "0x1"}).encode()
        answer = _http(body + b" " * 100)
        conn.sendall(answer[:40])  # the status line and headers at once, then a byte at a time
        for byte in answer[40:]:
            time.sleep(0.05)
            conn.sendall(bytes([byte]))

    url = raw_node(handle)
    started = time.monotonic()
    with pytest.raises(RpcUnavailable) as info:
        read_supply([url], 1, TOKEN, 18, timeout=0.4)
    assert time.monotonic() - started < 1.5  # a per-receive timeout would wait ~6 s
    assert str(info.value) == (
        f"RPC {url} did not answer eth_chainId within 0.4s "
        "(the deadline for the whole read from this endpoint)"
    )


@pytest.mark.parametrize("extra", [0, 1])
def test_an_answer_of_exactly_the_limit_is_read_and_one_byte_more_refused(raw_node, extra):
    def handle(conn: socket.socket, n: int) -> None:
        while (req := _request(conn)) is not None:
            body = json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": "0x5"}).encode()
            conn.sendall(_http(body.ljust(MAX_ANSWER_BYTES + extra)))

    url = raw_node(handle)
    with pytest.raises(SupplyReadError) as info:
        read_supply([url], 1, TOKEN, 18)
    if extra:
        assert str(info.value) == f"RPC {url} sent more than 1048576 bytes for eth_chainId"
    else:
        assert str(info.value).startswith(f"RPC {url} serves chain id 5")
