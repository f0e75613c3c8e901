"""Fixtures: real anvil chains on loopback, plus fakes of remote nodes at the network edge.

Anvil chains are session-scoped (each xdist worker gets its own) and every test deploys
its own token, so tests stay independent without restarting anvil. Tests that rewrite
chain history (reorgs) use a private function-scoped chain instead.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from audits.core import devchain

CHAIN_A = 31337  # anvil's default id
CHAIN_B = 8453  # a second chain (Base's id) for multi-chain cases


def _start(chain_id: int) -> devchain.Anvil:
    try:
        return devchain.start_anvil(chain_id)
    except devchain.AnvilNotFound as exc:
        # Fail, not skip: a missing anvil must not turn the chain suite green.
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def chain_a() -> Iterator[devchain.Anvil]:
    """Anvil with chain id 31337, shared by the session."""
    node = _start(CHAIN_A)
    yield node
    node.stop()


@pytest.fixture(scope="session")
def chain_b() -> Iterator[devchain.Anvil]:
    """A second anvil, chain id 8453, shared by the session."""
    node = _start(CHAIN_B)
    yield node
    node.stop()


@pytest.fixture
def private_chain() -> Iterator[devchain.Anvil]:
    """A fresh anvil for tests that reorganise history."""
    node = _start(CHAIN_A)
    yield node
    node.stop()


@pytest.fixture
def token_a(chain_a: devchain.Anvil) -> str:
    """A fresh 18-decimal ReserveToken on chain A."""
    return devchain.deploy_token(chain_a.url, "Apple xStock", "AAPLX", 18)


@pytest.fixture
def dead_url() -> str:
    """A loopback URL on which nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A TCP server that accepts connections and never answers: a hung remote node."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            held.append(conn)  # keep it open and unread until teardown

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join(timeout=2)
    for conn in held:
        conn.close()
    srv.close()


@dataclass
class FakeNode:
    """A scripted JSON-RPC endpoint standing in for a remote node (network-edge fake).

    ``answers`` maps a method to a JSON result, or to a callable ``params -> response``
    returning ``(http_status, body_bytes)`` for full control.
    """

    url: str = ""
    answers: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (path, method)
    status: int = 200  # force an HTTP status for every request when not 200

    def respond(self, path: str, raw: bytes) -> tuple[int, bytes]:
        if self.status != 200:
            return self.status, b"upstream error"
        req = json.loads(raw)
        self.calls.append((path, req["method"]))
        answer = self.answers.get(req["method"])
        if callable(answer):
            return answer(req)
        if answer is None:
            body = {"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32601, "message": "nf"}}
        else:
            body = {"jsonrpc": "2.0", "id": req["id"], "result": answer}
        return 200, json.dumps(body).encode()


@pytest.fixture
def fake_node() -> Iterator[FakeNode]:
    """Start a :class:`FakeNode` HTTP server on loopback."""
    node = FakeNode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status, body = node.respond(self.path, raw)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    node.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield node
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def rpc_proxy() -> Iterator[Callable[..., str]]:
    """Start loopback JSON-RPC proxies to a real node, with a hook before each forward.

    Call ``rpc_proxy(upstream_url, before=fn)``; ``fn(method)`` runs before the request
    is forwarded, which lets a test change the chain between two calls of one read.
    """
    servers: list[ThreadingHTTPServer] = []

    def make(upstream: str, before: Callable[[str], None]) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                before(json.loads(raw)["method"])
                resp = requests.post(
                    upstream, data=raw, headers={"Content-Type": "application/json"}, timeout=10
                )
                self.send_response(resp.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            def log_message(self, *args: Any) -> None:
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield make
    for srv in servers:
        srv.shutdown()
        srv.server_close()
