"""Custodian statements of holdings: the raw bytes as received, and what was read from them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from audits.choices import SignatureStatus, StatementFormat, StatementSource, StatementStatus
from audits.core.statement_formats import BALANCE_TYPE_CHOICES
from audits.models.fields import ExactDecimalField
from audits.models.reference import Asset, Custodian


class ImmutableError(Exception):
    """Raised on an attempt to change or delete evidence."""


class RawDocument(models.Model):
    """Bytes exactly as uploaded, addressed by their SHA-256. Never modified or deleted."""

    sha256 = models.CharField(max_length=64, unique=True, editable=False)
    content = models.BinaryField(editable=False)
    size = models.PositiveBigIntegerField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "raw document"

    def __str__(self) -> str:
        return f"sha256:{self.sha256[:16]}… ({self.size} bytes)"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ImmutableError("raw documents are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("raw documents are never deleted")


class CustodianKey(models.Model):
    """An Ed25519 public key a custodian signs its statements with."""

    custodian = models.ForeignKey(Custodian, on_delete=models.PROTECT, related_name="keys")
    key_id = models.CharField(max_length=64, unique=True, editable=False)
    public_key = models.BinaryField("raw Ed25519 public key (32 bytes)", editable=False)
    label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["custodian", "-created_at"]
        verbose_name = "custodian signing key"

    def __str__(self) -> str:
        return f"{self.custodian} key {self.key_id}"


class ApiToken(models.Model):
    """A custodian user's API token. Only a hash is stored; the token is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(
        max_length=100, help_text="What the token is for, e.g. 'nightly upload'."
    )
    prefix = models.CharField(max_length=12, editable=False, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class CustodianStatement(models.Model):
    """One upload of a custodian's holdings as of a point in time."""

    custodian = models.ForeignKey(Custodian, on_delete=models.PROTECT, related_name="statements")
    as_of = models.DateTimeField(null=True, blank=True, db_index=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    format = models.CharField(max_length=8, choices=StatementFormat.choices)
    raw = models.ForeignKey(RawDocument, on_delete=models.PROTECT, related_name="statements")
    # The signature header exactly as sent, stored with the bytes, so that an upload
    # interrupted before its checks finished can be checked again later.
    signature_header = models.TextField(blank=True, default="", editable=False)
    signature = models.BinaryField(null=True, blank=True, editable=False)
    signature_key = models.ForeignKey(
        CustodianKey, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signature_status = models.CharField(
        max_length=12, choices=SignatureStatus.choices, default=SignatureStatus.NONE
    )
    source = models.CharField(max_length=20, choices=StatementSource.choices)
    status = models.CharField(
        max_length=12, choices=StatementStatus.choices, default=StatementStatus.RECEIVED
    )
    # [{"line": int|None, "field": str|None, "message": str}, ...]
    rejection_report = models.JSONField(default=list, blank=True)
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="supersedes"
    )
    line_count = models.PositiveIntegerField(default=0)
    # Checking attempts started, counted before each one (so an attempt that kills its process
    # counts too): after STATEMENT_MAX_CHECK_ATTEMPTS a poison upload becomes `failed`.
    check_attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    # The last unexpected error while checking: exception type and message, for admins.
    check_error = models.TextField(blank=True, default="", editable=False)

    # Not stored: the assets it counts as reserves for now, set by statements.mark_counting.
    counts_for: list[Asset]

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            # The same bytes from the same custodian are one statement (idempotent upload).
            models.UniqueConstraint(fields=["custodian", "raw"], name="one_statement_per_upload"),
            # At most one statement stands for a custodian and as-of; older ones are superseded.
            models.UniqueConstraint(
                fields=["custodian", "as_of"],
                condition=models.Q(status="accepted"),
                name="one_accepted_statement_per_as_of",
            ),
        ]

    def __str__(self) -> str:
        when = f"{self.as_of:%Y-%m-%d %H:%M}" if self.as_of else "no as-of"
        return f"{self.custodian} statement {self.pk} ({when}, {self.status})"

    @property
    def sha256(self) -> str:
        return self.raw.sha256


class StatementLine(models.Model):
    """One holding read from an accepted statement."""

    statement = models.ForeignKey(
        CustodianStatement, on_delete=models.PROTECT, related_name="lines"
    )
    line_no = models.PositiveIntegerField()
    isin = models.CharField(max_length=12)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="statement_lines")
    # The parsers allow 20 integer digits and 18 decimals; exact on SQLite too (see the field).
    quantity = ExactDecimalField(max_digits=38, decimal_places=18)
    account = models.CharField("safekeeping account", max_length=64)
    balance_type = models.CharField(max_length=20, choices=BALANCE_TYPE_CHOICES)

    class Meta:
        ordering = ["statement", "line_no", "id"]
        indexes = [models.Index(fields=["statement", "asset"])]

    def __str__(self) -> str:
        return f"{self.isin} {self.quantity} ({self.balance_type})"
