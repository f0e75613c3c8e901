"""Whether each asset counts as margin collateral, and every change of that, in order."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from audits.choices import EligibilityState, WebhookEventType
from audits.models.reconciliation import Reconciliation
from audits.models.reference import Asset
from audits.models.statements import ImmutableError


class Eligibility(models.Model):
    """The current collateral state of one asset (one row per asset, created with it).

    A new asset starts frozen: it becomes eligible only on healthy evidence and an admin's
    approval, like any frozen asset. The row is also the asset's reconciliation lock.
    """

    asset = models.OneToOneField(Asset, on_delete=models.PROTECT, related_name="eligibility")
    state = models.CharField(
        max_length=8, choices=EligibilityState.choices, default=EligibilityState.FROZEN
    )
    haircut_bps = models.PositiveIntegerField("haircut (bps)", default=0)
    since = models.DateTimeField(help_text="When the asset entered its current state.")
    reason = models.TextField(default="new asset: no reconciliation yet")
    # Reconciliations in a row (counting re-checks of an unchanged one) that were healthy.
    healthy_streak = models.PositiveIntegerField(default=0)
    # The admin who froze it by hand, if so (a setting can forbid them approving the unfreeze).
    frozen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    frozen_manually = models.BooleanField(default=False)
    latest = models.ForeignKey(
        Reconciliation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="latest reconciliation",
    )
    # Set when a run has been queued and not started: later triggers do not queue another.
    run_queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "collateral eligibility"
        verbose_name_plural = "collateral eligibility"
        ordering = ["asset__code"]

    def __str__(self) -> str:
        return f"{self.asset.code}: {self.state}"

    @property
    def eligible(self) -> bool:
        return self.state == EligibilityState.ELIGIBLE


class EligibilityEvent(models.Model):
    """One transition of an asset's eligibility or haircut. Immutable; `seq` is the public
    cursor, gapless and in commit order (assigned under a lock held until commit)."""

    seq = models.PositiveBigIntegerField(unique=True)
    event_type = models.CharField(max_length=32, choices=WebhookEventType.choices)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="eligibility_events")
    from_state = models.CharField(max_length=8, choices=EligibilityState.choices)
    to_state = models.CharField(max_length=8, choices=EligibilityState.choices)
    from_haircut_bps = models.PositiveIntegerField()
    to_haircut_bps = models.PositiveIntegerField()
    reason = models.TextField()
    reconciliation = models.ForeignKey(
        Reconciliation, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The admin who acted; empty for an automatic transition.",
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["seq"]
        verbose_name = "eligibility event"

    def __str__(self) -> str:
        return f"#{self.seq} {self.asset.code}: {self.from_state} → {self.to_state}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ImmutableError("eligibility events are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("eligibility events are never deleted")

    @property
    def webhook_id(self) -> str:
        """The Standard Webhooks `webhook-id`: one per event, the same on every retry."""
        return f"evt_{self.seq}"


class EventCounter(models.Model):
    """The last `seq` given out. Its row is locked while events are written, so sequence
    numbers commit in order and a consumer reading `after=N` never skips one."""

    name = models.CharField(max_length=32, primary_key=True)
    value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.value}"
