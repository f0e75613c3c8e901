"""Reference data: instruments, custodians, chains and token contracts."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from audits.choices import AssetKind
from audits.models.fields import ExactDecimalField
from audits.validators import validate_evm_address, validate_isin, validate_lei, validate_mic


class Asset(models.Model):
    """A tokenized instrument backed 1:1 (or by `shares_per_token`) by real shares."""

    code = models.CharField(max_length=32, unique=True, help_text="Token code, e.g. AAPLx.")
    name = models.CharField(max_length=200)
    isin = models.CharField(
        "underlying ISIN",
        max_length=12,
        unique=True,
        validators=[validate_isin],
        help_text="ISIN of the underlying share or ETF unit, check digit included.",
    )
    kind = models.CharField(max_length=8, choices=AssetKind.choices, default=AssetKind.STOCK)
    decimals = models.PositiveSmallIntegerField(
        "token decimals",
        default=18,
        validators=[MaxValueValidator(36)],
        help_text="Decimals of the token's canonical unit (per-chain decimals may differ).",
    )
    quantity_decimals = models.PositiveSmallIntegerField(
        "share quantity decimals",
        default=6,
        validators=[MaxValueValidator(18)],
        help_text="Decimal places custodians may report holdings of this instrument in "
        "(fractional shares); a statement line with more is refused.",
    )
    # Exact on SQLite too: a multiplier rounded through a float would misstate every reserve.
    shares_per_token = ExactDecimalField(
        max_digits=36,
        decimal_places=18,
        default=Decimal(1),
        validators=[MinValueValidator(Decimal("0.000000000000000001"))],
        help_text="Underlying shares that back one whole token before any corporate action "
        "in the multiplier history.",
    )
    mic = models.CharField(
        "home exchange (MIC)",
        max_length=4,
        default="XNYS",
        validators=[validate_mic],
        help_text="ISO 10383 market identifier code of the exchange whose sessions measure "
        "statement age (XNYS: New York Stock Exchange).",
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class Custodian(models.Model):
    """An institution holding the underlying shares in safekeeping."""

    name = models.CharField(max_length=200)
    lei = models.CharField(
        "LEI",
        max_length=20,
        unique=True,
        validators=[validate_lei],
        help_text="ISO 17442 Legal Entity Identifier, 20 characters.",
    )
    contact = models.EmailField(blank=True, help_text="Operations contact, seen by admins only.")
    signatures_required = models.BooleanField(
        default=False,
        help_text="Refuse statement uploads that do not carry a valid signature by one of "
        "this custodian's registered keys.",
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CustodianUser(models.Model):
    """Links a login to exactly one custodian; such a user sees only that custodian's data."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="custodian_link"
    )
    custodian = models.ForeignKey(Custodian, on_delete=models.PROTECT, related_name="users")

    class Meta:
        verbose_name = "custodian user"

    def __str__(self) -> str:
        return f"{self.user} @ {self.custodian}"

    def clean(self) -> None:
        # A staff flag would open the admin, where every custodian's data is visible.
        if self.user_id and (self.user.is_staff or self.user.is_superuser):
            raise ValidationError({"user": "A custodian user cannot be staff or superuser."})


class Chain(models.Model):
    """An EVM chain identified by its EIP-155 chain id."""

    chain_id = models.PositiveBigIntegerField(
        "EIP-155 chain id", unique=True, validators=[MinValueValidator(1)]
    )
    name = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    rpc_urls = models.TextField(
        "JSON-RPC URLs",
        blank=True,
        help_text="One http(s) URL per line, tried in order. Write API keys as ${ENV_VAR} "
        "placeholders (e.g. https://eth.example/v2/${ETH_RPC_KEY}); they are expanded from "
        "the environment only when a read runs. Empty: no RPC access, enter supply manually.",
    )
    confirmations = models.PositiveIntegerField(
        default=12,
        validators=[MaxValueValidator(10_000)],
        help_text="Blocks to stay behind the head, so reorgs shallower than this cannot "
        "change a stored reading.",
    )
    rpc_timeout = models.PositiveSmallIntegerField(
        "RPC timeout (seconds)",
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(300)],
        help_text="Wall-clock limit for the whole read from one URL (every request together).",
    )

    class Meta:
        ordering = ["chain_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.chain_id})"

    @property
    def rpc_url_list(self) -> list[str]:
        """The configured URLs (placeholders unexpanded), in order."""
        return [line.strip() for line in self.rpc_urls.splitlines() if line.strip()]

    def clean(self) -> None:
        # Name the line, never echo the URL: it may carry an API key.
        for number, url in enumerate(self.rpc_url_list, start=1):
            if not url.startswith(("http://", "https://")) or any(c.isspace() for c in url):
                raise ValidationError(
                    {"rpc_urls": f"Line {number} is not an http:// or https:// URL."}
                )


class TokenDeployment(models.Model):
    """An asset's token contract on one chain."""

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="deployments")
    chain = models.ForeignKey(Chain, on_delete=models.PROTECT, related_name="deployments")
    address = models.CharField(
        "contract address",
        max_length=42,
        validators=[validate_evm_address],
        help_text="EIP-55 checksummed contract address.",
    )
    decimals = models.PositiveSmallIntegerField(
        "token decimals on this chain", validators=[MaxValueValidator(36)]
    )
    active = models.BooleanField(default=True)
    supply_read_claimed_until = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="A supply read owns this deployment until then; no other is queued.",
    )

    class Meta:
        ordering = ["asset__code", "chain__chain_id"]
        constraints = [
            models.UniqueConstraint(fields=["chain", "address"], name="unique_contract_per_chain")
        ]

    def __str__(self) -> str:
        return f"{self.asset.code} on {self.chain.name}"
