"""A real HTTP receiver on loopback that verifies every request as a margin engine would."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from standardwebhooks.webhooks import Webhook

from audits import webhooks


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0  # seconds before answering


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """Answers with the scripted replies in turn (the last one repeats) and records requests."""

    def __init__(self) -> None:
        self.replies: list[Reply] = [Reply()]
        self.received: list[Received] = []
        self.release = threading.Event()  # set to end every pending delay early
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.received.append(
                    Received(self.path, dict(self.headers.items()), body, time.monotonic())
                )
                index = min(len(receiver.received), len(receiver.replies)) - 1
                reply = receiver.replies[index]
                if reply.delay:
                    receiver.release.wait(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the sender gave up (timeout)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/margin?src=porapp"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def script(self, *replies: Reply) -> None:
        self.replies = list(replies)

    def verified(self, secret: str) -> list[dict]:
        """Every request checked with the Standard Webhooks library, as a receiver would."""
        return [Webhook(secret).verify(r.body, r.headers) for r in self.received]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def make_receiver():
    made: list[Receiver] = []

    def make() -> Receiver:
        made.append(Receiver())
        return made[-1]

    yield make
    for r in made:
        r.close()


PAYLOAD = {
    "asset": "ACME",
    "isin": "US0000000001",
    "from_state": "eligible",
    "to_state": "frozen",
    "eligible": False,
    "haircut_bps": 10000,
    "reason": "reserves below supply",
    "reconciliation_id": 7,
    "event_id": 42,
    "occurred_at": "2026-11-29T15:00:00Z",
}


def publish(event_type: str = "eligibility.frozen", msg_id: str = "msg_1", payload=None):
    with transaction.atomic():
        return webhooks.publish(event_type, msg_id, payload or PAYLOAD)
