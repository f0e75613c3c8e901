"""Liability snapshots: the platform's users' balances at an as-of, and the per-asset Merkle
sum trees built from them (docs/liabilities.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from audits.models.fields import ExactDecimalField
from audits.models.reference import Asset


class PlatformOperator(models.Model):
    """A user who uploads liability snapshots for the platform: a role of its own, never a
    custodian's (a user cannot be both; `liabilities.is_operator` checks)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="platform_operator"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "platform operator"

    def __str__(self) -> str:
        return str(self.user)


class LiabilitySnapshot(models.Model):
    """One upload of users' balances. The raw file is stored (by SHA-256) before anything
    else and kept whatever happens; the snapshot is then checked whole and either rejected
    (every bad row listed by line) or built into one tree per asset and published at once."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        CHECKING = "checking", "Checking and building"
        REJECTED = "rejected", "Rejected"
        PUBLISHED = "published", "Published"
        FAILED = "failed", "Failed"

    FINAL = (Status.REJECTED, Status.PUBLISHED, Status.FAILED)

    as_of = models.DateTimeField(db_index=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    raw_name = models.CharField("stored file", max_length=300, editable=False)
    raw_sha256 = models.CharField(max_length=64, db_index=True, editable=False)
    raw_size = models.PositiveBigIntegerField(editable=False)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.RECEIVED, db_index=True
    )
    # Progress of the job, for the admin and the API.
    phase = models.CharField(max_length=40, blank=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="percent")
    row_count = models.PositiveBigIntegerField(null=True, blank=True)
    # The first errors (up to 1,000: [{"line", "field", "message"}]) and how many in all.
    errors = models.JSONField(default=list, blank=True)
    error_count = models.PositiveBigIntegerField(default=0)
    failure = models.TextField(blank=True, help_text="Why the job failed (not the file's fault).")
    # HMAC key from which each account's nonce is derived: server-side only, never in the
    # API, logs, admin or an attestation (docs/proof-format.md, "Nonces").
    secret = models.BinaryField(editable=False)
    # Work is claimed with a conditional UPDATE; a claim that runs out was a dead worker's.
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "liability snapshot"

    def __str__(self) -> str:
        return f"liability snapshot #{self.pk} as of {self.as_of:%Y-%m-%d %H:%M}"

    def __repr__(self) -> str:  # never the secret
        return f"<LiabilitySnapshot {self.pk} {self.status}>"


class LiabilityTree(models.Model):
    """One asset's Merkle sum tree of a snapshot: its root (the total liabilities in the
    asset's smallest unit) and the tree file, stored by SHA-256 through Django's storage."""

    snapshot = models.ForeignKey(LiabilitySnapshot, on_delete=models.PROTECT, related_name="trees")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="liability_trees")
    root_hash = models.CharField(max_length=64)
    # Integer, smallest units of the asset (< 2**128: 39 digits).
    root_sum = ExactDecimalField(max_digits=40, decimal_places=0)
    account_count = models.PositiveBigIntegerField()
    leaf_count = models.PositiveBigIntegerField(help_text="padded to a power of two")
    file_name = models.CharField(max_length=300)
    file_sha256 = models.CharField(max_length=64)
    file_size = models.PositiveBigIntegerField()
    built_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "asset"], name="one_tree_per_asset")
        ]
        ordering = ["snapshot_id", "asset__code"]

    def __str__(self) -> str:
        return f"{self.asset} tree of snapshot #{self.snapshot_id}"
