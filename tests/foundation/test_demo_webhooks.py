"""The demo webhook receiver: a signed request becomes one readable log line."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from audits.core import demo_webhooks

SECRET = "whsec_" + "c2VjcmV0LWZvci10aGUtZGVtby1yZWNlaXZlcg=="


def _signed(body: str, secret: str = SECRET, msg_id: str = "msg_1") -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        "Content-Type": "application/json",
    }


def _event(reason: str = "Not fully backed: short by 910 bps.") -> str:
    data = {"asset": "AAPLx", "reason": reason, "to_state": "frozen"}
    return json.dumps({"type": "eligibility.frozen", "timestamp": "t", "data": data})


@pytest.fixture
def receiver(tmp_path):
    receiver = demo_webhooks.Receiver(tmp_path / "demo-webhooks.log", SECRET)
    server = demo_webhooks.serve(receiver)
    yield receiver, demo_webhooks.url_of(server)
    server.shutdown()
    server.server_close()


def _post(url: str, body: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, body.encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_signed_event_is_verified_and_logged_as_one_line(receiver):
    rec, url = receiver
    body = _event()
    assert url.startswith("http://127.0.0.1:")
    assert _post(url, body, _signed(body)) == 204
    (line,) = rec.log_path.read_text().splitlines()
    stamp, rest = line[:19], line[20:]
    datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
    assert rest == "eligibility.frozen AAPLx: Not fully backed: short by 910 bps. (signature valid)"


def test_forged_or_tampered_requests_are_refused_and_logged(receiver):
    rec, url = receiver
    body = _event()
    other = "whsec_" + "b3RoZXItc2VjcmV0LW5vdC10aGUtZW5kcG9pbnRz"
    assert _post(url, body, _signed(body, secret=other)) == 401
    assert _post(url, _event("all fine"), _signed(body)) == 401  # body changed after signing
    assert _post(url, body, {"Content-Type": "application/json"}) == 401  # unsigned
    lines = rec.log_path.read_text().splitlines()
    assert len(lines) == 3
    assert all(line.endswith("(signature INVALID)") for line in lines)
    assert not any("AAPLx" in line for line in lines)  # nothing unverified is repeated


def test_event_text_cannot_forge_extra_log_lines(tmp_path):
    rec = demo_webhooks.Receiver(tmp_path / "log", SECRET)
    body = _event("x\n2026-01-01 00:00:00 eligibility.unfrozen AAPLx: fake (signature valid)")
    assert rec.handle(_signed(body), body.encode()) == 204
    assert len(rec.log_path.read_text().splitlines()) == 1


def test_receiver_without_secret_refuses(tmp_path):
    rec = demo_webhooks.Receiver(tmp_path / "log")
    body = _event()
    assert rec.handle(_signed(body), body.encode()) == 503
    assert "no secret" in rec.log_path.read_text()
