"""Whole-request deadlines and what the node client refuses to do (proxies, redirects).

The slow and misbehaving nodes are loopback servers: fakes at the network edge only.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from audits.core import devchain
from audits.core.evm import RpcRejected, RpcUnavailable, read_supply

from .conftest import CHAIN_A

pytestmark = pytest.mark.chain

NOBODY = "0x000000000000000000000000000000000000dEaD"
HOLDER = devchain.DEV_ACCOUNTS[1]


def _read_request(conn: socket.socket) -> bytes:
    """Read one HTTP request (headers and Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def _answer(request: bytes, result: object) -> bytes:
    req = json.loads(request.partition(b"\r\n\r\n")[2])
    return json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": result}).encode()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    """Start loopback TCP servers; ``handle(conn)`` runs per connection in its own thread."""
    servers: list[socket.socket] = []
    stop = threading.Event()

    def make(handle: Callable[[socket.socket], None]) -> str:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)
        srv.settimeout(0.2)
        servers.append(srv)

        def serve(conn: socket.socket) -> None:
            # OSError: the client hung up, which is what a deadline does.
            with conn, contextlib.suppress(OSError):
                handle(conn)

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, _ = srv.accept()
                except OSError:
                    continue
                threading.Thread(target=serve, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return f"http://127.0.0.1:{srv.getsockname()[1]}"

    yield make
    stop.set()
    for srv in servers:
        srv.close()


def _trickler(interval: float, *, headers_at_once: bool) -> Callable[[socket.socket], None]:
    """A node that answers eth_chainId correctly, one byte every ``interval`` seconds."""

    def handle(conn: socket.socket) -> None:
        while True:
            request = _read_request(conn)
            if not request:
                return
            body = _answer(request, hex(CHAIN_A)) + b" " * 200
            head = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            if headers_at_once:
                conn.sendall(head)
                head = b""
            for byte in head + body:
                time.sleep(interval)
                conn.sendall(bytes([byte]))

    return handle


@pytest.mark.parametrize(
    "headers_at_once", [False, True], ids=["trickled-headers", "trickled-body"]
)
def test_a_trickling_node_is_abandoned_at_the_deadline(raw_server, headers_at_once):
    # One byte every 0.2 s never trips a 1 s per-read timeout; the answer would take ~50 s.
    url = raw_server(_trickler(0.2, headers_at_once=headers_at_once))
    started = time.monotonic()
    with pytest.raises(RpcUnavailable) as info:
        read_supply([url], CHAIN_A, NOBODY, 18, timeout=1.0)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.0
    assert "did not answer eth_chainId within 1s" in str(info.value)
    assert info.value.retryable


def test_the_deadline_covers_the_whole_read_from_one_url_then_fails_over(raw_server, chain_a):
    token = devchain.deploy_token(chain_a.url, "Apple", "AAPLX", 18)
    devchain.mint(chain_a.url, token, HOLDER, 7)
    slow = raw_server(_trickler(0.05, headers_at_once=True))  # each call ~10 s
    started = time.monotonic()
    obs = read_supply([slow, chain_a.url], CHAIN_A, token, 18, timeout=0.6)
    assert time.monotonic() - started < 1.8
    assert obs.total_supply_raw == 7 and obs.rpc == chain_a.url


def test_total_timeout_bounds_the_read_across_urls(silent_url, chain_a):
    token = devchain.deploy_token(chain_a.url, "Apple", "AAPLX", 18)
    started = time.monotonic()
    with pytest.raises(RpcUnavailable) as info:
        read_supply(
            [silent_url, silent_url, chain_a.url], CHAIN_A, token, 18, timeout=1, total_timeout=1.5
        )
    assert time.monotonic() - started < 2.2
    assert "no time left to try RPC" in str(info.value)


def test_proxies_from_the_environment_are_not_used(monkeypatch, fake_node, chain_a):
    token = devchain.deploy_token(chain_a.url, "Apple", "AAPLX", 18)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, fake_node.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    obs = read_supply([chain_a.url], CHAIN_A, token, 18)
    assert obs.rpc == chain_a.url
    assert fake_node.calls == []  # the "proxy" saw nothing


def test_redirects_are_refused_not_followed(raw_server, fake_node, chain_a):
    fake_node.answers["eth_chainId"] = hex(CHAIN_A)

    def redirect(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n"
            % fake_node.url.encode()
        )

    url = raw_server(redirect)
    with pytest.raises(RpcRejected) as info:
        read_supply([url, chain_a.url], CHAIN_A, NOBODY, 18)
    assert "HTTP 307" in str(info.value)
    assert fake_node.calls == []


def test_userinfo_in_the_url_is_sent_as_basic_auth(raw_server):
    seen: list[bytes] = []

    def node(conn: socket.socket) -> None:
        request = _read_request(conn)
        seen.append(request)
        body = _answer(request, hex(5))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    url = raw_server(node).replace("http://", "http://user:p%40ss@")
    with pytest.raises(Exception, match="serves chain id 5"):
        read_supply([url], CHAIN_A, NOBODY, 18)
    expected = base64.b64encode(b"user:p@ss")
    assert b"Authorization: Basic " + expected in seen[0]
    assert b"p%40ss" not in seen[0].split(b"\r\n")[0]  # not in the request line


def test_an_oversized_answer_is_refused(raw_server):
    def node(conn: socket.socket) -> None:
        request = _read_request(conn)
        req = json.loads(request.partition(b"\r\n\r\n")[2])
        body = b'{"jsonrpc":"2.0","id":%d,"result":"0x1","pad":"%s"}' % (
            req["id"],
            b"x" * (2 << 20),
        )
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    with pytest.raises(RpcUnavailable, match="more than 1048576 bytes"):
        read_supply([raw_server(node)], 1, NOBODY, 18)


def test_check_blocks_report_the_canonical_hash_after_a_reorg(private_chain):
    url = private_chain.url
    token = devchain.deploy_token(url, "Apple xStock", "AAPLX", 18)
    devchain.mint(url, token, HOLDER, 100)
    devchain.mine(url, 3)
    devchain.mint(url, token, HOLDER, 50)  # at the head
    before = read_supply([url], CHAIN_A, token, 18)
    assert before.total_supply_raw == 150

    devchain.reorg(url, 2)  # the second mint is gone
    after = read_supply(
        [url], CHAIN_A, token, 18, confirmations=1, check_blocks=[before.block_number, 10**9]
    )

    assert after.block_number == before.block_number - 1 and after.total_supply_raw == 100
    assert set(after.canonical_hashes) == {before.block_number}  # 10**9: above the head
    assert after.canonical_hashes[before.block_number] != before.block_hash
