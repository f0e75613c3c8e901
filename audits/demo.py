"""The demo data set: tokenized stocks and ETFs, two custodians, deployments on two chains."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from audits.choices import AssetKind
from audits.models import Asset, Chain, Custodian, CustodianUser, TokenDeployment

ASSETS = [
    ("AAPLx", "Apple Inc. tokenized share", "US0378331005", AssetKind.STOCK, 18),
    ("MSFTx", "Microsoft Corp. tokenized share", "US5949181045", AssetKind.STOCK, 18),
    ("SPYx", "SPDR S&P 500 ETF tokenized unit", "US78462F1030", AssetKind.ETF, 18),
    ("QQQx", "Invesco QQQ Trust tokenized unit", "US46090E1038", AssetKind.ETF, 18),
]
CUSTODIANS = [
    ("Northwind Custody Bank", "5493001KJTIIGC8Y1R12", "ops@northwind.example"),
    ("Harbor Trust Securities Services", "2138009Y59EAR7H1UO97", "custody@harbor.example"),
]
CHAINS = [(31337, "Demo L1 (anvil)"), (31338, "Demo L2 (anvil)")]
# Contracts a fresh anvil gives its first dev account's deployments 0..3, so the demo chain
# started by `make demo` has the tokens exactly at these addresses.
CONTRACTS = [
    "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
    "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
    "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
]
# Per-chain token decimals: the L2 deployments use 6, as bridged tokens often do.
CHAIN_DECIMALS = {31337: 18, 31338: 6}


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@transaction.atomic
def load_demo_data() -> None:
    """Create or update the demo reference data; safe to run again."""
    assets = []
    for code, name, isin, kind, decimals in ASSETS:
        asset, _ = Asset.objects.update_or_create(
            code=code,
            defaults={"name": name, "isin": isin, "kind": kind, "decimals": decimals},
        )
        asset.full_clean()
        assets.append(asset)
    for name, lei, contact in CUSTODIANS:
        Custodian.objects.update_or_create(lei=lei, defaults={"name": name, "contact": contact})
    for chain_id, name in CHAINS:
        chain, _ = Chain.objects.update_or_create(chain_id=chain_id, defaults={"name": name})
        for asset, address in zip(assets, CONTRACTS, strict=True):
            TokenDeployment.objects.update_or_create(
                chain=chain,
                address=address,
                defaults={"asset": asset, "decimals": CHAIN_DECIMALS[chain_id]},
            )


def ensure_user(
    username: str, credentials_file: Path, *, staff: bool, custodian: Custodian | None = None
) -> Credentials:
    """Create a demo login with a random password kept in `credentials_file`."""
    User = get_user_model()
    if credentials_file.exists():
        password = credentials_file.read_text().strip()
    else:
        password = secrets.token_urlsafe(12)
        credentials_file.write_text(password + "\n")
        credentials_file.chmod(0o600)
    user, _ = User.objects.get_or_create(username=username)
    user.is_staff = user.is_superuser = staff
    user.set_password(password)
    user.save()
    if custodian is not None:
        CustodianUser.objects.update_or_create(user=user, defaults={"custodian": custodian})
    return Credentials(username, password)
