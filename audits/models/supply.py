"""On-chain supply: readings of each token deployment's supply, and addresses left out of it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from audits.choices import ReadingStatus, SupplySource
from audits.models.fields import ExactDecimalField
from audits.models.reference import TokenDeployment
from audits.validators import validate_evm_address


class ExcludedAddress(models.Model):
    """A holder whose balance is not circulating supply (issuer treasury, burn address, escrow)."""

    deployment = models.ForeignKey(
        TokenDeployment, on_delete=models.CASCADE, related_name="excluded_addresses"
    )
    address = models.CharField(
        max_length=42,
        validators=[validate_evm_address],
        help_text="EIP-55 checksummed address whose balance is subtracted from the supply.",
    )
    label = models.CharField(max_length=100, help_text="Why it is excluded, e.g. issuer treasury.")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["deployment", "address"]
        verbose_name_plural = "excluded addresses"
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "address"], name="unique_excluded_address_per_deployment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.label} {self.address}"


# Raw amounts are uint256 base units; whole-token amounts have up to 78 digits and up to
# 36 decimals (the largest decimals a deployment may have).
RAW_DIGITS = 78
TOKEN_DIGITS, TOKEN_PLACES = 114, 36


def _raw_field(help_text: str) -> ExactDecimalField:
    return ExactDecimalField(
        max_digits=RAW_DIGITS, decimal_places=0, null=True, blank=True, help_text=help_text
    )


def _token_field(help_text: str) -> ExactDecimalField:
    return ExactDecimalField(
        max_digits=TOKEN_DIGITS,
        decimal_places=TOKEN_PLACES,
        null=True,
        blank=True,
        help_text=help_text,
    )


class SupplyReading(models.Model):
    """One attempt to learn a deployment's supply: from the chain at a named block, or manual.

    A failed attempt is stored with its error and no amounts (database constraints refuse
    amounts on a failed reading), so an outage is never mistaken for a supply of zero.
    """

    deployment = models.ForeignKey(
        TokenDeployment, on_delete=models.PROTECT, related_name="supply_readings"
    )
    source = models.CharField(
        max_length=8, choices=SupplySource.choices, default=SupplySource.CHAIN
    )
    status = models.CharField(max_length=8, choices=ReadingStatus.choices)

    block_number = models.PositiveBigIntegerField(null=True, blank=True)
    block_hash = models.CharField(max_length=66, blank=True)
    block_timestamp = models.DateTimeField(null=True, blank=True)
    as_of = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the figure was true: the block's timestamp, or the issuer's as-of date.",
    )

    decimals = models.PositiveSmallIntegerField(null=True, blank=True)
    total_supply_raw = _raw_field("totalSupply() in base units.")
    total_supply = _token_field("Total supply in whole tokens.")
    excluded_balances = models.JSONField(
        default=dict, blank=True, help_text="Excluded address -> balance in base units (string)."
    )
    excluded_raw = _raw_field("Sum of the excluded balances in base units.")
    circulating_raw = _raw_field("Total minus excluded, in base units.")
    circulating = _token_field("Circulating supply in whole tokens.")

    rpc = models.CharField(
        "RPC endpoint", max_length=255, blank=True, help_text="Redacted: scheme, host and port."
    )
    error = models.TextField(blank=True)
    retryable = models.BooleanField(default=False, help_text="The error may resolve by itself.")
    attempts = models.PositiveIntegerField(default=1)
    attempted_at = models.DateTimeField(
        db_index=True, help_text="When it was taken; a failed reading: its latest attempt."
    )
    last_confirmed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the figure was last confirmed: chain, the last read that pinned this "
        "same block; manual, the issuer's as-of date. Freshness is judged from this.",
    )
    confirmations = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Chain readings: how many blocks behind the head the read was pinned.",
    )
    orphaned_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a read found another block canonical at this height. An orphaned "
        "reading never counts.",
    )
    canonical_hash = models.CharField(
        max_length=66,
        blank=True,
        help_text="Orphaned readings: the block hash found canonical at this height instead.",
    )
    task_id = models.CharField(max_length=255, blank=True, db_index=True)

    reference = models.TextField(
        blank=True, help_text="Manual readings: where the issuer reported this figure."
    )
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-attempted_at", "-id"]
        indexes = [models.Index(fields=["deployment", "status", "-attempted_at"])]
        constraints = [
            # Re-reading a block must return the stored reading, never add a second one.
            models.UniqueConstraint(
                fields=["deployment", "block_hash"],
                condition=Q(status="ok", source="chain"),
                name="one_ok_reading_per_block",
            ),
            models.CheckConstraint(
                condition=~Q(status="failed")
                | Q(
                    total_supply_raw__isnull=True,
                    total_supply__isnull=True,
                    excluded_raw__isnull=True,
                    circulating_raw__isnull=True,
                    circulating__isnull=True,
                    block_number__isnull=True,
                ),
                name="failed_reading_has_no_amount",
            ),
            models.CheckConstraint(
                condition=~Q(status="failed") | ~Q(error=""),
                name="failed_reading_has_error",
            ),
            models.CheckConstraint(
                condition=~Q(status="ok")
                | Q(
                    total_supply_raw__isnull=False,
                    total_supply__isnull=False,
                    circulating_raw__isnull=False,
                    circulating__isnull=False,
                    decimals__isnull=False,
                    as_of__isnull=False,
                ),
                name="ok_reading_has_amount",
            ),
            models.CheckConstraint(
                condition=~Q(status="ok", source="chain")
                | (
                    Q(block_number__isnull=False, block_timestamp__isnull=False) & ~Q(block_hash="")
                ),
                name="chain_reading_names_its_block",
            ),
            models.CheckConstraint(
                condition=~Q(source="manual") | (Q(status="ok") & ~Q(reference="")),
                name="manual_reading_is_ok_with_reference",
            ),
            models.CheckConstraint(
                condition=Q(orphaned_at__isnull=True) | Q(status="ok", source="chain"),
                name="only_chain_readings_are_orphaned",
            ),
        ]

    def __str__(self) -> str:
        where = f"block {self.block_number}" if self.block_number is not None else self.source
        return f"{self.deployment} @ {where}: {self.status}"

    @property
    def orphaned(self) -> bool:
        return self.orphaned_at is not None
