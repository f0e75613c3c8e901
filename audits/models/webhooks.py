"""Webhooks to margin engines: subscribed endpoints, one delivery per event and endpoint, and
every attempt made to deliver it (audits/webhooks.py does the work, docs/webhooks.md)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db import models

from audits.choices import DeliveryStatus, WebhookEventType


def _host(url: str) -> str:
    """The URL's host and port only: paths and queries can carry a receiver's own tokens."""
    try:
        return urlsplit(url).netloc.rpartition("@")[2] or "?"
    except ValueError:
        return "?"


class WebhookEndpoint(models.Model):
    """A receiver of eligibility events. Its signing secret is shown once, when it is created."""

    url = models.CharField(max_length=2000, help_text="http(s) URL the events are POSTed to.")
    description = models.CharField(max_length=200, blank=True)
    # The Standard Webhooks `whsec_...` secret. Stored in clear because signing needs it; it is
    # never shown again after creation (not in the admin, __str__/__repr__ or logs).
    secret = models.CharField(max_length=100, editable=False)
    active = models.BooleanField(default=True)
    event_types = models.JSONField(
        default=list,
        blank=True,
        help_text="Event types sent to this endpoint; none selected means all.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Since when every attempt has failed; cleared by the next success.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"webhook endpoint {self.pk} ({self.host})"

    def __repr__(self) -> str:
        return f"<WebhookEndpoint {self.pk} {self.host}>"

    @property
    def host(self) -> str:
        return _host(self.url)

    def subscribed_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookDelivery(models.Model):
    """One event for one endpoint: the exact bytes to send, and where the retries stand."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    # The Standard Webhooks `webhook-id`: one per event, the same for every endpoint, so
    # receivers deduplicate on it; publishing an event twice never makes a second delivery.
    msg_id = models.CharField(max_length=100)
    event_type = models.CharField(max_length=40, choices=WebhookEventType.choices)
    # Serialized once: every retry signs and sends these same bytes.
    body = models.TextField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    # A worker's lease on the delivery while it is sending it (claimed by a conditional UPDATE).
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "msg_id"], name="unique_webhook_delivery_per_endpoint"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.msg_id} to endpoint {self.endpoint_id}"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery, as the receiver answered it (or why it could not)."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    started_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)  # None: no answer
    latency_ms = models.PositiveIntegerField()
    response_excerpt = models.TextField(blank=True)  # first ~500 chars, control chars escaped
    error = models.TextField(blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at", "pk"]

    def __str__(self) -> str:
        return f"attempt at {self.started_at:%Y-%m-%d %H:%M:%S}: {self.status_code or self.error}"
