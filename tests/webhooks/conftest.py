"""A real HTTP receiver on loopback that verifies every request as a margin engine would."""

from __future__ import annotations

import datetime as dt
import ssl
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
    hold: float = 0.0  # seconds to keep the connection open after the (partial) body


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """Answers with the scripted replies in turn (the last one repeats) and records requests."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.sni: list[str | None] = []
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
                    if "Content-Length" not in reply.headers:
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    self.wfile.flush()
                    if reply.hold:
                        receiver.release.wait(reply.hold)
                except OSError:
                    pass  # the sender gave up (timeout)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/hooks/margin?src=porapp"
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


def _certificate(tmp_path):
    """A test CA and a certificate for `localhost` signed by it; returns their PEM paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def build(subject, issuer, key, signer, *, ca: bool, san=None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build("porapp test CA", "porapp test CA", ca_key, ca_key, ca=True)
    leaf = build("localhost", "porapp test CA", key, ca_key, ca=False, san="localhost")
    paths = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch):
    """An https receiver whose certificate names `localhost`, issued by a CA that the process
    trusts through SSL_CERT_FILE, the way an operator adds a CA to a host."""
    paths = _certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(paths["ca"]))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(paths["cert"], paths["key"])
    r = Receiver(tls=context)
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
