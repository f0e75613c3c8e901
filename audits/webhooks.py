"""Webhooks to margin engines, following the Standard Webhooks specification.

`publish` records one delivery per subscribed endpoint inside the caller's transaction (the
eligibility transition and its deliveries commit or vanish together) and queues one task per
delivery once committed. `deliver` claims a delivery with a conditional UPDATE, signs the stored
body with `standardwebhooks` and POSTs it once; the retry schedule lives in the database
(`next_attempt_at`), so nothing is lost if a worker dies: `due_deliveries` finds it again.

Outbound requests go only to public addresses (unless WEBHOOK_ALLOW_PRIVATE_ADDRESSES): the
host is resolved and checked at every attempt, and the connection goes to the address that was
checked, so a DNS answer that changes between check and connect cannot point us inside.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from celery import current_app
from django.conf import settings
from django.core.mail import mail_admins
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from audits.choices import DeliveryStatus, WebhookEventType
from audits.core.deadline_http import deadline_response_class
from audits.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

DELIVER_TASK = "audits.tasks.deliver_webhook"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks marker, not a secret
# Delays after each failed attempt (Standard Webhooks' suggested schedule): 8 attempts over
# about 28 hours, then the delivery is failed.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
JITTER = 0.2  # +-20%, so receivers coming back up are not hit by every retry at once
RETRY_AFTER_MAX = timedelta(hours=24)  # a receiver's Retry-After is honoured up to this
RETRY_AFTER_MIN = timedelta(seconds=1)
EXCERPT_CHARS = 500
_READ_BYTES = 4096  # of the answer: only an excerpt is kept
USER_AGENT = "porapp-webhooks/1"
_random = secrets.SystemRandom()


class UnsafeURL(ValueError):
    """The URL is not one webhooks may be sent to; the message names the reason, not the URL."""


# --------------------------------------------------------------------------- endpoints


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def create_endpoint(
    url: str, *, event_types=(), description: str = "", created_by=None
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; return it and its signing secret, to be shown to the admin once."""
    check_url(url)
    types = [WebhookEventType(t).value for t in event_types]
    secret = new_secret()
    endpoint = WebhookEndpoint.objects.create(
        url=url,
        description=description,
        secret=secret,
        event_types=types,
        created_by=created_by,
    )
    return endpoint, secret


def enable_endpoint(endpoint_id: int) -> None:
    """Re-enable an endpoint (admin): failed deliveries stay failed until sent again."""
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(
        active=True, disabled_at=None, disabled_reason="", failing_since=None
    )


# --------------------------------------------------------------------------- URL checks


@dataclass(frozen=True)
class Target:
    """Where one attempt goes: the URL's parts and the checked address to connect to."""

    https: bool
    host: str
    port: int
    path: str
    address: str


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address inside an IPv6 one reaches that IPv4 host: judge the IPv4 address.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return _forbidden(embedded)
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global  # also shared (100.64/10), documentation and benchmark ranges
    )


def check_url(url: str) -> Target:
    """Refuse anything but http(s) without credentials to a public address; resolve the host.

    Returns the target with the address to connect to. Every address the name resolves to must
    be allowed, so a name that mixes a public and a private address is refused.
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise UnsafeURL("not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("only http and https URLs are allowed")
    if not host:
        raise UnsafeURL("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("credentials in the URL are not allowed; the signature authenticates")
    https = parts.scheme == "https"
    port = port or (443 if https else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeURL("the host name does not resolve") from None
    addresses = []
    for _family, _type, _proto, _name, sockaddr in infos:
        addresses.append(str(sockaddr[0]).split("%", 1)[0])
    if not addresses:
        raise UnsafeURL("the host name does not resolve")
    if not settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        for address in addresses:
            if _forbidden(ipaddress.ip_address(address)):
                raise UnsafeURL(
                    "the host resolves to a loopback, private, link-local or otherwise "
                    "non-public address"
                )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(https=https, host=host, port=port, path=path, address=addresses[0])


# --------------------------------------------------------------------------- publishing


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def publish(event_type: str, msg_id: str, payload: dict) -> list[int]:
    """Record one delivery of this event per subscribed active endpoint; return their ids.

    Must run inside the caller's transaction. Publishing the same `msg_id` again returns the
    deliveries already recorded and creates none. Tasks are sent only once committed.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("publish() must be called inside the transaction recording the event")
    kind = WebhookEventType(event_type).value
    body = json.dumps(
        {"type": kind, "timestamp": _iso(timezone.now()), "data": payload},
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
        sort_keys=True,
    )
    now = timezone.now()
    ids, new = [], []
    # Few endpoints: filtering event types in Python keeps it portable (no JSON contains on SQLite).
    for endpoint in WebhookEndpoint.objects.filter(active=True).order_by("pk"):
        if not endpoint.subscribed_to(kind):
            continue
        delivery, created = WebhookDelivery.objects.get_or_create(
            endpoint=endpoint,
            msg_id=msg_id,
            defaults={"event_type": kind, "body": body, "next_attempt_at": now},
        )
        ids.append(delivery.pk)
        if created:
            new.append(delivery.pk)
    if new:
        # robust: a broker outage after commit must not fail the caller; the sweeper sends them.
        transaction.on_commit(functools.partial(_send, new), robust=True)
    return ids


def _send(delivery_ids: list[int], countdown: float | None = None) -> None:
    # By name: services sit below the tasks module.
    for delivery_id in delivery_ids:
        current_app.send_task(DELIVER_TASK, args=[delivery_id], countdown=countdown)


def due_deliveries(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Pending deliveries whose next attempt is due and which no worker holds."""
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def redeliver(delivery_id: int) -> bool:
    """Send a delivery again now (admin), whatever its state, with a fresh retry schedule.

    Refused (False) while its endpoint is disabled. The attempt log keeps every earlier try.
    """
    with transaction.atomic():
        updated = (
            WebhookDelivery.objects.filter(pk=delivery_id, endpoint__active=True)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=timezone.now()))
            .update(
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=timezone.now(),
                claimed_until=None,
                delivered_at=None,
            )
        )
        if updated:
            transaction.on_commit(functools.partial(_send, [delivery_id]), robust=True)
    return bool(updated)


# --------------------------------------------------------------------------- delivering


def lease() -> timedelta:
    """How long a claim holds: longer than any attempt can take."""
    return timedelta(seconds=2 * settings.WEBHOOK_TIMEOUT + 60)


def retry_delay(attempt_no: int, retry_after: timedelta | None = None) -> timedelta | None:
    """Delay after failed attempt number `attempt_no` (1-based), or None after the last one."""
    if attempt_no >= MAX_ATTEMPTS:
        return None
    if retry_after is not None:
        return min(max(retry_after, RETRY_AFTER_MIN), RETRY_AFTER_MAX)
    base = RETRY_SCHEDULE[attempt_no - 1].total_seconds()
    return timedelta(seconds=base * _random.uniform(1 - JITTER, 1 + JITTER))


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """`Retry-After` as seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when - now, timedelta(0))


def deliver(delivery_id: int) -> datetime | None:
    """Make one attempt of a due delivery, if this worker can claim it.

    Returns when the next attempt is due (the caller may schedule it), or None when there is
    nothing more to do now: delivered, failed, or not claimed (another worker holds it, it is
    not due, or it is finished). Receiver errors are recorded, never raised.
    """
    now = timezone.now()
    until = now + lease()
    claimed = (
        WebhookDelivery.objects.filter(
            pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=until)
    )
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.active:
        with transaction.atomic():
            WebhookAttempt.objects.create(
                delivery=delivery,
                started_at=now,
                latency_ms=0,
                error="not sent: the endpoint is disabled",
            )
            _finish(delivery, until, status=DeliveryStatus.FAILED)
        return None

    attempt_no = delivery.attempts + 1
    started = timezone.now()
    clock = time.monotonic()
    answer = _attempt(endpoint, delivery, started)
    latency_ms = int((time.monotonic() - clock) * 1000)
    finished = timezone.now()

    next_at: datetime | None = None
    if answer.status is not None and 200 <= answer.status < 300:
        outcome = "delivered"
    elif answer.status == 410:
        outcome = "gone"
    else:
        delay = retry_delay(attempt_no, parse_retry_after(answer.retry_after, finished))
        outcome = "retry" if delay is not None else "failed"
        if delay is not None:
            next_at = finished + delay

    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            started_at=started,
            status_code=answer.status,
            latency_ms=latency_ms,
            response_excerpt=answer.excerpt,
            error=answer.error,
            next_retry_at=next_at,
        )
        fields: dict[str, Any] = {"attempts": attempt_no, "last_status_code": answer.status}
        if outcome == "delivered":
            _finish(
                delivery, until, status=DeliveryStatus.DELIVERED, delivered_at=finished, **fields
            )
            WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=False).update(
                failing_since=None
            )
            return None
        if outcome == "gone":
            _finish(delivery, until, status=DeliveryStatus.FAILED, **fields)
            _disable(endpoint, "the receiver answered 410 Gone", finished)
            return None
        if outcome == "failed":
            _finish(delivery, until, status=DeliveryStatus.FAILED, **fields)
        else:
            _finish(delivery, until, next_attempt_at=next_at, **fields)
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(
            failing_since=started
        )
        failing_since = (
            WebhookEndpoint.objects.filter(pk=endpoint.pk)
            .values_list("failing_since", flat=True)
            .first()
        )
        if failing_since is not None and finished - failing_since >= settings.WEBHOOK_DISABLE_AFTER:
            _disable(endpoint, f"every attempt failed since {_iso(failing_since)}", finished)
            return None
    return next_at


def _finish(delivery: WebhookDelivery, until: datetime, **fields: Any) -> None:
    # Only while our lease holds: a worker that outlived it must not overwrite a newer outcome.
    WebhookDelivery.objects.filter(pk=delivery.pk, claimed_until=until).update(
        claimed_until=None, **fields
    )


def _disable(endpoint: WebhookEndpoint, reason: str, now: datetime) -> None:
    """Disable an endpoint, fail its pending deliveries and tell the admins (once)."""
    disabled = WebhookEndpoint.objects.filter(pk=endpoint.pk, active=True).update(
        active=False, disabled_at=now, disabled_reason=reason
    )
    WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.FAILED, claimed_until=None
    )
    if not disabled:
        return
    # Host only: a URL's path or query may carry the receiver's own credentials.
    logger.warning(
        "webhook endpoint disabled",
        extra={"endpoint": endpoint.pk, "host": endpoint.host, "reason": reason},
    )
    transaction.on_commit(
        functools.partial(
            mail_admins,
            f"Webhook endpoint {endpoint.pk} ({endpoint.host}) disabled",
            f"Webhook endpoint {endpoint.pk} ({endpoint.host}) was disabled: {reason}.\n"
            "Its pending deliveries were marked failed. Re-enable it in the admin once the "
            "receiver works, then send the failed deliveries again.",
            fail_silently=True,
        )
    )


# --------------------------------------------------------------------------- HTTP


@dataclass
class Answer:
    status: int | None = None
    retry_after: str | None = None
    excerpt: str = ""
    error: str = ""


def _attempt(endpoint: WebhookEndpoint, delivery: WebhookDelivery, started: datetime) -> Answer:
    try:
        target = check_url(endpoint.url)
    except UnsafeURL as exc:
        return Answer(error=f"refused: {exc}")
    signature = Webhook(endpoint.secret).sign(delivery.msg_id, started, delivery.body)
    headers = {
        "webhook-id": delivery.msg_id,
        "webhook-timestamp": str(int(started.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    try:
        return post(target, delivery.body.encode(), headers, float(settings.WEBHOOK_TIMEOUT))
    except TimeoutError:
        return Answer(error=f"no answer within {settings.WEBHOOK_TIMEOUT}s")
    except ssl.SSLError as exc:
        return Answer(error=f"TLS error: {exc.reason or exc.__class__.__name__}")
    except (OSError, http.client.HTTPException) as exc:
        return Answer(error=f"{exc.__class__.__name__}: {exc}"[:500])


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the checked address; Host header from the URL's host."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """Connects to the checked address; SNI and certificate checked against the URL's host."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=tls_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        try:
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
        except BaseException:
            sock.close()
            raise


def tls_context() -> ssl.SSLContext:
    """The system's trusted CAs (OpenSSL's defaults, so SSL_CERT_FILE adds a private CA), with
    certificate and host name checks."""
    return ssl.create_default_context()


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST once, within `timeout` seconds for the whole exchange; never follow redirects."""
    deadline = time.monotonic() + timeout
    cls = _PinnedHTTPS if target.https else _PinnedHTTP
    conn = cls(target.host, target.port, address=target.address, timeout=timeout)
    conn.response_class = deadline_response_class(deadline)
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        if conn.sock is not None:
            conn.sock.settimeout(remaining)
        response = conn.getresponse()
        answer = Answer(status=response.status, retry_after=response.getheader("Retry-After"))
        try:
            answer.excerpt = excerpt(response.read(_READ_BYTES))
        except (OSError, http.client.HTTPException) as exc:
            # The status line is the answer; a body that stalls or breaks does not undo it.
            answer.error = f"answer body not read: {exc.__class__.__name__}"
        return answer
    finally:
        conn.close()


def excerpt(raw: bytes) -> str:
    """The answer's first characters, with control characters escaped for the admin."""
    text = raw.decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )
