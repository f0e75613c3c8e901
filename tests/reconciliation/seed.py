"""Building reconciliation inputs directly: assets with accepted statements and supply readings.

Statements are stored as the statement service leaves an accepted one (status, as-of, lines),
without going through upload, so tests of the reconciliation run stay fast.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone

from audits.models import (
    Asset,
    Chain,
    Custodian,
    CustodianStatement,
    StatementLine,
    SupplyReading,
    TokenDeployment,
)


def bench_user():
    user, _ = get_user_model().objects.get_or_create(username="seed")
    return user


def seed_assets(
    n: int, *, custodians: int = 2, chains: int = 2, prefix: str = "S", held: int = 1000
) -> list[Asset]:
    """``n`` assets, each listed by ``custodians`` accepted statements (``held`` shares each,
    settled) and deployed on ``chains`` chains with a fresh manual supply reading that keeps
    every asset healthy."""
    user = bench_user()
    as_of = timezone.now() - timedelta(minutes=5)
    assets = Asset.objects.bulk_create(
        Asset(code=f"{prefix}{i:04d}x", name=f"Seed {prefix}{i}", isin=f"XS{prefix}{i:09d}"[:12])
        for i in range(n)
    )
    rows = Custodian.objects.bulk_create(
        Custodian(name=f"Seed custodian {prefix}{c}", lei=f"SEED{prefix}{c:015d}"[:20])
        for c in range(custodians)
    )
    statements = CustodianStatement.objects.bulk_create(
        CustodianStatement(
            custodian=c, as_of=as_of, uploaded_by=user, format="csv", source="api",
            status="accepted", line_count=n,
        )
        for c in rows
    )  # fmt: skip
    StatementLine.objects.bulk_create(
        StatementLine(
            statement=s, line_no=k + 1, isin=a.isin, asset=a, quantity=Decimal(held),
            account="ACC-1", balance_type="settled",
        )
        for s in statements
        for k, a in enumerate(assets)
    )  # fmt: skip
    base = Chain.objects.count() * 1000 + 920_000
    chain_rows = Chain.objects.bulk_create(
        Chain(chain_id=base + c, name=f"Seed chain {prefix}{c}", rpc_urls="http://127.0.0.1:1")
        for c in range(chains)
    )
    deployments = TokenDeployment.objects.bulk_create(
        TokenDeployment(asset=a, chain=ch, address=f"0x{a.pk:040x}", decimals=18)
        for ch in chain_rows
        for a in assets
    )
    per_deployment = Decimal(held * custodians) / (2 * chains)  # half covered: healthy
    SupplyReading.objects.bulk_create(manual_reading(d, per_deployment, as_of) for d in deployments)
    return assets


def manual_reading(
    deployment: TokenDeployment, supply: Decimal, as_of: datetime | None = None
) -> SupplyReading:
    """An unsaved ok manual reading of ``supply`` whole tokens (18 decimals)."""
    as_of = as_of or timezone.now()
    raw = supply * 10**18
    return SupplyReading(
        deployment=deployment, source="manual", status="ok", as_of=as_of, decimals=18,
        total_supply_raw=raw, total_supply=supply, excluded_raw=Decimal(0),
        circulating_raw=raw, circulating=supply, attempted_at=timezone.now(),
        last_confirmed_at=as_of, reference="test", entered_by=bench_user(),
    )  # fmt: skip
