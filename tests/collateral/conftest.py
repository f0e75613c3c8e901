"""Real evidence for the collateral feeds: assets, a custodian's statements through the
statement service, issuer-reported supply, reconciliation runs and admin transitions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audits import eligibility, reconciliation, statements, supply
from audits.models import Asset, Chain, Custodian, TokenDeployment

# Real, check-digit-valid ISINs (the asset registry validates them).
APPLE, MICROSOFT, NVIDIA = "US0378331005", "US5949181045", "US67066G1040"


@dataclass
class Book:
    """What a test built: the custodian, the chain, and a way to add evidence."""

    custodian: Custodian
    chain: Chain
    admin: object

    def asset(self, code: str, isin: str, **fields) -> Asset:
        asset = Asset.objects.create(code=code, name=f"{code} tokenized", isin=isin, **fields)
        TokenDeployment.objects.create(
            asset=asset,
            chain=self.chain,
            address="0x" + f"{asset.pk:040x}",
            decimals=18,
        )
        return asset

    def holds(self, holdings: dict[str, str], hours_ago: int = 1) -> None:
        """The custodian reports settled holdings {isin: quantity}, as of an hour ago."""
        lines = "".join(f"{isin},{qty},ACC-1,settled\n" for isin, qty in holdings.items())
        raw = ("isin,quantity,account,balance_type\n" + lines).encode()
        submission = statements.submit_statement(
            custodian=self.custodian,
            user=self.admin,
            raw=raw,
            fmt="csv",
            as_of=timezone.now() - timedelta(hours=hours_ago),
        )
        assert submission.statement.status == "accepted", submission.statement.status

    def supply(self, asset: Asset, tokens: str) -> None:
        deployment = asset.deployments.get()
        supply.record_manual_supply(
            deployment, Decimal(tokens), reference="issuer report", entered_by=self.admin
        )

    def reconcile(self, *assets: Asset, times: int = 1) -> None:
        for _ in range(times):
            reconciliation.reconcile_assets([a.pk for a in assets])

    def make_eligible(self, asset: Asset) -> None:
        """Enough healthy runs and an admin's approval (the approver must differ from no one:
        the asset was never frozen by hand)."""
        self.reconcile(asset, times=3)
        eligibility.approve_unfreeze(asset.pk, self.admin, "evidence healthy")


@pytest.fixture
def book(db, admin_user) -> Book:
    custodian = Custodian.objects.create(name="Custody Bank", lei="5493001KJTIIGC8Y1R12")
    chain = Chain.objects.create(chain_id=31337, name="Dev chain", rpc_urls="http://127.0.0.1:1")
    return Book(custodian, chain, admin_user)
