"""Reconciliation fixtures: one asset with two custodians' statements and two chains'
supply, built through the real services (statements submitted, manual supply entered)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from audits import statements, supply
from audits.models import Asset, Chain, Custodian, TokenDeployment

# Tuesday 24 Nov 2026, 15:00 UTC: New York open (Thanksgiving is Thursday the 26th).
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
# Monday 23 Nov 2026 close (16:00 New York = 21:00 UTC).
MONDAY_CLOSE = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)


class World:
    def __init__(self, admin) -> None:
        self.admin = admin
        self.asset = Asset.objects.create(code="TSTx", name="Test Co", isin="US0378331005")
        self.custodians = [
            Custodian.objects.create(name="Alpha Custody", lei="5493001KJTIIGC8Y1R12"),
            Custodian.objects.create(name="Beta Trust", lei="2138009Y59EAR7H1UO97"),
        ]
        self.deployments = [
            TokenDeployment.objects.create(
                asset=self.asset,
                chain=Chain.objects.create(chain_id=chain_id, name=name, rpc_urls=""),
                address=address,
                decimals=18,
            )
            for chain_id, name, address in (
                (900001, "Alpha chain", "0x" + "11" * 20),
                (900002, "Beta chain", "0x" + "22" * 20),
            )
        ]

    def statement(self, n: int, settled: str, as_of: datetime = MONDAY_CLOSE, pending: str = ""):
        rows = ["isin,quantity,account,balance_type", f"{self.asset.isin},{settled},A1,settled"]
        if pending:
            rows.append(f"{self.asset.isin},{pending},A1,pending_delivery")
        submission = statements.submit_statement(
            custodian=self.custodians[n],
            user=self.admin,
            raw=("\n".join(rows) + "\n").encode(),
            fmt="csv",
            as_of=as_of,
        )
        assert submission.statement.status == "accepted", submission.statement.rejection_report
        return submission.statement

    def supply(self, n: int, amount: str, as_of: datetime = NOW):
        return supply.record_manual_supply(
            self.deployments[n],
            Decimal(amount),
            as_of=as_of,
            reference="issuer report",
            entered_by=self.admin,
        )

    def backed(self, total: str = "1000") -> None:
        half = Decimal(total) / 2
        self.statement(0, str(half))
        self.statement(1, str(half))
        self.supply(0, str(half))
        self.supply(1, str(half))


@pytest.fixture
def world(db, admin_user) -> World:
    return World(admin_user)
