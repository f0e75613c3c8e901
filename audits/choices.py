"""Enumerations stored in the database, in one place."""

from django.db import models


class AssetKind(models.TextChoices):
    STOCK = "stock", "Stock"
    ETF = "etf", "ETF"


class StatementFormat(models.TextChoices):
    CSV = "csv", "CSV"
    JSON = "json", "JSON"
    SEMT002 = "semt002", "ISO 20022 semt.002"


class StatementStatus(models.TextChoices):
    # Stored raw, not yet validated (only seen if processing was interrupted).
    RECEIVED = "received", "Received"
    # A statement sent as several messages (semt.002 pages), some not yet arrived. Never counts.
    INCOMPLETE = "incomplete", "Incomplete (pages missing)"
    # One message of a multi-page statement, joined to it (`part_of`); the statement is decided.
    PAGE = "page", "Page of a statement"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    SUPERSEDED = "superseded", "Superseded"
    # Checking hit an unexpected internal error STATEMENT_MAX_CHECK_ATTEMPTS times: final until
    # an admin retries it. Never counts as reserves.
    FAILED = "failed", "Failed (internal error)"


class StatementSource(models.TextChoices):
    """Where a statement's figures come from; travels with every figure derived from it."""

    CUSTODIAN_SIGNED = "custodian-signed", "custodian-signed"
    CUSTODIAN_UPLOADED = "custodian-uploaded", "custodian-uploaded"
    ADMIN_ENTERED = "admin-entered", "entered by admin on the custodian's behalf"


class SignatureStatus(models.TextChoices):
    NONE = "none", "No signature"
    VALID = "valid", "Valid"
    INVALID = "invalid", "Does not verify"
    UNKNOWN_KEY = "unknown-key", "Unknown or revoked key"
    MALFORMED = "malformed", "Malformed header"


class SupplySource(models.TextChoices):
    """Where a supply figure comes from; the label travels with the figure."""

    CHAIN = "chain", "on-chain"
    MANUAL = "manual", "issuer-reported (manual)"


class ReadingStatus(models.TextChoices):
    OK = "ok", "ok"
    FAILED = "failed", "failed"


class ReconciliationStatus(models.TextChoices):
    """The outcome of comparing an asset's reserves with its supply."""

    HEALTHY = "healthy", "Healthy"
    WARNING = "warning", "Warning"
    BREACH = "breach", "Breach"
    # Users' balances (the published liability snapshot) exceed the reserves.
    UNDERCOLLATERALIZED = "undercollateralized", "Liabilities exceed reserves"
    STALE = "stale", "Stale evidence"
    UNKNOWN = "unknown", "Unknown"


class EligibilityState(models.TextChoices):
    """Whether an asset counts as margin collateral."""

    ELIGIBLE = "eligible", "Eligible"
    FROZEN = "frozen", "Frozen"


class WebhookEventType(models.TextChoices):
    """What a webhook subscriber can be sent: one message per eligibility transition."""

    FROZEN = "eligibility.frozen", "Asset frozen"
    UNFROZEN = "eligibility.unfrozen", "Asset unfrozen"
    HAIRCUT_CHANGED = "eligibility.haircut_changed", "Haircut changed"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    # Gave up after the retry schedule, or the endpoint answered 410 / was disabled.
    FAILED = "failed", "Failed"
