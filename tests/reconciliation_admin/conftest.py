"""An asset with real evidence: an accepted custodian statement and an issuer-reported supply on
a chain without RPC access, reconciled by the real service."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audits import statements, supply
from audits.models import Asset, Chain, TokenDeployment

ISIN = "US67066G1040"


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def second_admin(django_user_model):
    return django_user_model.objects.create_user(
        "admin2", "admin2@example.com", "pw", is_staff=True, is_superuser=True
    )


@pytest.fixture
def asset(demo) -> Asset:
    return Asset.objects.create(code="NVDAx", name="NVIDIA tokenized share", isin=ISIN)


@pytest.fixture
def deployment(asset) -> TokenDeployment:
    chain = Chain.objects.create(chain_id=7777, name="Issuer-reported chain")
    return TokenDeployment.objects.create(
        asset=asset,
        chain=chain,
        address="0x5FbDB2315678afecb367f032d93F642f64180aa3",
        decimals=18,
    )


@pytest.fixture
def evidence(asset, deployment, custodian_a, admin_user):
    """Reserves of 1000 shares (one share per token) and a supply set by ``set_supply``."""
    now = timezone.now()
    raw = f"isin,quantity,account,balance_type\n{ISIN},1000,ACC-1,settled\n".encode()
    statement = statements.submit_statement(
        custodian=custodian_a,
        user=admin_user,
        raw=raw,
        fmt="csv",
        as_of=now - timedelta(hours=1),
    ).statement
    assert statement.status == "accepted", statement.rejection_report

    def set_supply(tokens: str) -> None:
        supply.record_manual_supply(
            deployment, Decimal(tokens), reference="issuer report", entered_by=admin_user
        )

    set_supply("1000")
    return set_supply
