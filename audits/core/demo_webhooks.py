"""The demo's webhook receiver: what a subscriber of porapp's eligibility events would run.

A small HTTP server on loopback that checks each request's Standard Webhooks signature with
the endpoint's secret and appends one readable line per event to a log file, e.g.::

    2026-11-29 15:04:05 eligibility.frozen AAPLx: Not fully backed: ... (signature valid)

`rundemo` starts it in a thread and registers it as a webhook endpoint. Framework-free: it is
the subscriber's side, which knows nothing of porapp but the secret.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

#: Requests larger than this are refused unread: the receiver has no business with them.
MAX_BODY = 1 << 20


def _one_line(text: str, limit: int = 500) -> str:
    """Text safe for one log line: control characters (newlines included) become spaces."""
    return "".join(ch if ch.isprintable() else " " for ch in text)[:limit]


class Receiver:
    """Verifies requests with the endpoint's secret and logs them; safe across threads."""

    def __init__(self, log_path: Path, secret: str | None = None) -> None:
        self.log_path = log_path
        self.secret = secret
        self._lock = threading.Lock()

    def handle(self, headers: dict[str, str], body: bytes, now: datetime | None = None) -> int:
        """Verify and log one request; the HTTP status to answer with."""
        stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S")
        if not self.secret:
            self._write(f"{stamp} not verified: the receiver has no secret yet (refused)")
            return 503
        try:
            message = Webhook(self.secret).verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:
            self._write(f"{stamp} rejected request: {_one_line(str(exc))} (signature INVALID)")
            return 401
        if not isinstance(message, dict):
            message = {}
        data = message.get("data")
        if not isinstance(data, dict):
            data = {}
        kind = message.get("type", "?")
        asset = data.get("asset", "?")
        reason = data.get("reason", "")
        self._write(
            f"{stamp} {_one_line(str(kind), 60)} {_one_line(str(asset), 40)}: "
            f"{_one_line(str(reason))} (signature valid)"
        )
        return 204

    def _write(self, line: str) -> None:
        with self._lock, self.log_path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")


def serve(receiver: Receiver, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Start the receiver in a daemon thread; `server.server_address` has the port taken."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.send_response(413)
                self.end_headers()
                return
            body = self.rfile.read(length)
            status = receiver.handle({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.end_headers()

        def log_message(self, format: str, *args) -> None:
            pass  # the log file says what matters; no access log on the demo console

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="demo-webhooks", daemon=True).start()
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}/webhooks"
