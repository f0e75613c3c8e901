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
    """One upload of a custodian's holdings as of a point in time.

    A statement sent as several messages (semt.002 pages) is one row without bytes of its own,
    joining one row per page (`part_of`), each keeping its bytes and signature.
    """

    custodian = models.ForeignKey(Custodian, on_delete=models.PROTECT, related_name="statements")
    as_of = models.DateTimeField(null=True, blank=True, db_index=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    format = models.CharField(max_length=8, choices=StatementFormat.choices)
    # None only for a statement joined from pages: each page row holds its own bytes.
    raw = models.ForeignKey(
        RawDocument, null=True, blank=True, on_delete=models.PROTECT, related_name="statements"
    )
    # The as-of exactly as sent with the upload (None if not given): with the bytes, format and
    # signature header it decides whether an upload repeats an earlier one.
    declared_as_of = models.DateTimeField(null=True, blank=True, editable=False)
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
    # A new attempt after a rejection: the rejected statement it follows.
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="retries"
    )
    # Multi-page statements (semt.002 Pgntn): the statement id joining the pages (StmtId); on a
    # page, the statement it belongs to, its number and whether it said it was the last; on
    # the statement, the number of the last page once that page has arrived.
    statement_ref = models.CharField("statement id (StmtId)", max_length=35, blank=True)
    part_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="pages"
    )
    page_no = models.PositiveIntegerField("page", null=True, blank=True)
    last_page = models.BooleanField(default=False)
    page_count = models.PositiveIntegerField(null=True, blank=True)
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
            models.UniqueConstraint(
                fields=["part_of", "page_no"],
                condition=models.Q(part_of__isnull=False),
                name="one_row_per_page_number",
            ),
            # Pages join the one statement still open for their custodian, id, as-of and format.
            models.UniqueConstraint(
                fields=["custodian", "format", "statement_ref", "as_of"],
                condition=models.Q(raw__isnull=True, status__in=["incomplete", "received"]),
                name="one_open_paged_statement",
            ),
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
    def sha256(self) -> str | None:
        return self.raw.sha256 if self.raw is not None else None

    @property
    def is_paged(self) -> bool:
        """True for a statement joined from pages (it has no bytes of its own)."""
        return self.raw_id is None


class IdempotencyKey(models.Model):
    """An upload's `Idempotency-Key`, remembered per user until `expires_at`.

    `fingerprint` is the SHA-256 of what was sent (custodian, format, as-of, signature header,
    file); the same key with another fingerprint is refused. `statement` is the upload the key
    stands for, and `created` says whether that request stored it (201) or found it (200).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    statement = models.ForeignKey(CustodianStatement, on_delete=models.PROTECT, related_name="+")
    created = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="one_key_per_user")]

    def __str__(self) -> str:
        return f"Idempotency-Key {self.key!r} of {self.user}"


class StatementLine(models.Model):
    """One holding read from an accepted statement."""

    statement = models.ForeignKey(
        CustodianStatement, on_delete=models.PROTECT, related_name="lines"
    )
    line_no = models.PositiveIntegerField()
    # The page the line came from, for a statement sent as several pages.
    page = models.PositiveIntegerField(null=True, blank=True)
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
