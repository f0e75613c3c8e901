"""Reserves compared with supply: the per-asset policy, the multiplier history, and the
immutable record of each comparison with the exact evidence it used."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from audits.choices import ReconciliationStatus
from audits.models.fields import ExactDecimalField
from audits.models.liabilities import LiabilityTree
from audits.models.reference import Asset, TokenDeployment
from audits.models.statements import CustodianStatement, ImmutableError
from audits.models.supply import SupplyReading

# Token amounts: a uint256 (78 digits) at up to 36 decimals.
TOKEN_DIGITS, TOKEN_PLACES = 115, 36
MULTIPLIER_DIGITS, MULTIPLIER_PLACES = 36, 18


class AssetPolicy(models.Model):
    """How strictly one asset is reconciled. An asset without a row uses these defaults."""

    asset = models.OneToOneField(Asset, on_delete=models.CASCADE, related_name="policy")
    warning_bps = models.PositiveIntegerField(
        "warning at shortfall (bps)",
        default=1,
        validators=[MaxValueValidator(10_000)],
        help_text="Reserves short of supply by at least this many basis points is a warning "
        "(1 bp: any shortfall).",
    )
    breach_bps = models.PositiveIntegerField(
        "breach at shortfall (bps)",
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(10_000)],
        help_text="Reserves short of supply by at least this many basis points is a breach: "
        "the asset is frozen at once.",
    )
    max_statement_age_sessions = models.PositiveSmallIntegerField(
        "maximum statement age (sessions)",
        default=1,
        validators=[MaxValueValidator(30)],
        help_text="A custodian statement is stale once more than this many sessions of the "
        "asset's home exchange have closed after its as-of (weekends and holidays do not count).",
    )
    max_supply_age = models.DurationField(
        "maximum supply-reading age",
        default=timedelta(minutes=10),
        help_text="A chain's supply reading is stale once it was last confirmed longer ago "
        "than this (chains run around the clock).",
    )
    max_manual_supply_age = models.DurationField(
        "maximum issuer-reported supply age",
        default=timedelta(days=7),
        help_text="An issuer-reported (manual) supply figure, for a chain read without RPC "
        "access, is stale once its as-of is older than this.",
    )
    deduct_pending_deliveries = models.BooleanField(
        default=True,
        help_text="Count settled holdings minus shares already sold but not yet delivered "
        "(the conservative reading).",
    )
    healthy_runs_to_unfreeze = models.PositiveSmallIntegerField(
        "healthy runs before unfreeze",
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Consecutive healthy reconciliations needed before an admin may approve "
        "an unfreeze.",
    )
    base_haircut_bps = models.PositiveIntegerField(
        "haircut (bps)",
        default=0,
        validators=[MaxValueValidator(10_000)],
        help_text="Collateral haircut while healthy.",
    )
    warning_haircut_step_bps = models.PositiveIntegerField(
        "extra haircut at warning (bps)",
        default=0,
        validators=[MaxValueValidator(10_000)],
        help_text="At warning, raise the haircut by this much instead of freezing "
        "(0: a warning changes nothing but is reported).",
    )
    liabilities_required = models.BooleanField(
        "require a liability snapshot",
        default=False,
        help_text="Without a published snapshot of users' balances the asset is unknown (and "
        "frozen). Off: an asset without one is judged on reserves and supply alone.",
    )
    max_liabilities_age = models.DurationField(
        "maximum liability snapshot age",
        default=timedelta(days=2),
        help_text="The newest published liability snapshot is stale once its as-of is older "
        "than this (clock time: tokens change hands at weekends too).",
    )

    class Meta:
        verbose_name = "reconciliation policy"
        verbose_name_plural = "reconciliation policies"

    def __str__(self) -> str:
        return f"policy of {self.asset.code}"


class MultiplierChange(models.Model):
    """A corporate action changing how many shares back one token, from `effective_at` on.

    Like the `newMultiplier` and activation time tokenized-stock oracles publish: before the
    first change the asset's own `shares_per_token` applies; a statement is converted with
    the multiplier in force at its as-of, so statements before and after a split compare
    like with like.
    """

    class Kind(models.TextChoices):
        SPLIT = "split", "Split"
        REVERSE_SPLIT = "reverse-split", "Reverse split"
        STOCK_DIVIDEND = "stock-dividend", "Stock dividend"
        OTHER = "other", "Other"

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="multiplier_changes")
    effective_at = models.DateTimeField(
        "activation time", help_text="From this instant on, the new multiplier applies."
    )
    shares_per_token = ExactDecimalField(
        "new shares per token",
        max_digits=MULTIPLIER_DIGITS,
        decimal_places=MULTIPLIER_PLACES,
        validators=[MinValueValidator(Decimal("0.000000000000000001"))],
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SPLIT)
    note = models.CharField(
        max_length=200, blank=True, help_text="e.g. '2-for-1 split, record date 2026-06-10'."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["asset", "-effective_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["asset", "effective_at"], name="one_multiplier_change_per_instant"
            )
        ]

    def __str__(self) -> str:
        return f"{self.asset.code}: {self.shares_per_token} shares/token from {self.effective_at}"


class Reconciliation(models.Model):
    """One comparison of an asset's reserves with its supply. Immutable once written, but for
    `checked_at` and `checks`: a later run that finds the same inputs and outcome only records
    that it checked, so a stable asset does not add a row a minute."""

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="reconciliations")
    computed_at = models.DateTimeField(
        db_index=True, help_text="The instant staleness was judged at (the run's 'now')."
    )
    checked_at = models.DateTimeField(help_text="The last run that found the same result.")
    checks = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=20, choices=ReconciliationStatus.choices)
    reason = models.TextField()
    reserves = ExactDecimalField(
        max_digits=TOKEN_DIGITS, decimal_places=TOKEN_PLACES, null=True, blank=True
    )
    supply = ExactDecimalField(
        max_digits=TOKEN_DIGITS, decimal_places=TOKEN_PLACES, null=True, blank=True
    )
    ratio = ExactDecimalField(
        "backing ratio", max_digits=TOKEN_DIGITS, decimal_places=8, null=True, blank=True
    )
    shortfall_bps = models.PositiveBigIntegerField(null=True, blank=True)
    # Users' balances in whole tokens (the tree's root sum over 10**decimals), and the
    # reserves over them; null when no published liability snapshot covered the asset.
    liabilities = ExactDecimalField(
        max_digits=TOKEN_DIGITS, decimal_places=TOKEN_PLACES, null=True, blank=True
    )
    coverage = ExactDecimalField(
        "reserves / liabilities", max_digits=TOKEN_DIGITS, decimal_places=8, null=True, blank=True
    )
    liabilities_tree = models.ForeignKey(
        LiabilityTree, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    evidence_as_of = models.DateTimeField(
        null=True, blank=True, help_text="The oldest statement as-of the reserves rest on."
    )
    # The policy as applied (JSON of the core Policy), so a recomputation uses the same rules.
    policy = models.JSONField()
    # SHA-256 over the inputs and the outcome: a run with the same digest only touches this row.
    digest = models.CharField(max_length=64)
    statements: models.ManyToManyField[CustodianStatement, ReconciledStatement] = (
        models.ManyToManyField(
            CustodianStatement, through="ReconciledStatement", related_name="reconciliations"
        )
    )
    readings: models.ManyToManyField[SupplyReading, ReconciledReading] = models.ManyToManyField(
        SupplyReading, through="ReconciledReading", related_name="reconciliations"
    )

    class Meta:
        ordering = ["-computed_at", "-id"]
        indexes = [models.Index(fields=["asset", "-computed_at"])]

    def __str__(self) -> str:
        return f"{self.asset.code} {self.status} at {self.computed_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ImmutableError("reconciliations are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("reconciliations are never deleted")


class ReconciledStatement(models.Model):
    """One custodian statement a reconciliation counted, and what it counted from it."""

    reconciliation = models.ForeignKey(
        Reconciliation, on_delete=models.PROTECT, related_name="statement_links"
    )
    statement = models.ForeignKey(CustodianStatement, on_delete=models.PROTECT, related_name="+")
    settled = ExactDecimalField(max_digits=38, decimal_places=18)
    pending_delivery = ExactDecimalField(max_digits=38, decimal_places=18)
    shares_per_token = ExactDecimalField(
        max_digits=MULTIPLIER_DIGITS, decimal_places=MULTIPLIER_PLACES
    )
    tokens = ExactDecimalField(max_digits=TOKEN_DIGITS, decimal_places=TOKEN_PLACES)
    sessions_old = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["reconciliation", "statement"], name="one_link_per_statement"
            )
        ]

    def __str__(self) -> str:
        return f"statement {self.statement_id} in reconciliation {self.reconciliation_id}"


class ReconciledReading(models.Model):
    """One active deployment's supply as a reconciliation saw it: the reading it counted, or
    why there was none (so an `unknown` result can be recomputed too)."""

    reconciliation = models.ForeignKey(
        Reconciliation, on_delete=models.PROTECT, related_name="reading_links"
    )
    deployment = models.ForeignKey(TokenDeployment, on_delete=models.PROTECT, related_name="+")
    reading = models.ForeignKey(
        SupplyReading, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    circulating = ExactDecimalField(
        max_digits=TOKEN_DIGITS, decimal_places=TOKEN_PLACES, null=True, blank=True
    )
    # When the reading had last been confirmed canonical, as the run saw it (it moves on).
    confirmed_at = models.DateTimeField(null=True, blank=True)
    problem = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["reconciliation", "deployment"], name="one_link_per_deployment"
            )
        ]

    def __str__(self) -> str:
        return f"deployment {self.deployment_id} in reconciliation {self.reconciliation_id}"
