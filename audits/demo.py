"""The demo data set: tokenized stocks and ETFs, two custodians, deployments on two chains."""

from __future__ import annotations

import base64
import copy
import json
import logging.config
import secrets
import sys
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from audits import statements, tokens
from audits.choices import AssetKind
from audits.core import custodian_signatures
from audits.models import (
    Asset,
    Chain,
    Custodian,
    CustodianKey,
    CustodianStatement,
    CustodianUser,
    ExcludedAddress,
    LiabilitySnapshot,
    PlatformOperator,
    TokenDeployment,
)
from audits.supply import tokens_to_raw

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
    if not user.check_password(password):
        # Only when needed: a new hash would log the demo user out of open sessions.
        user.set_password(password)
    user.save()
    if custodian is not None:
        CustodianUser.objects.update_or_create(user=user, defaults={"custodian": custodian})
    return Credentials(username, password)


def ensure_operator(credentials_file: Path) -> Credentials:
    """The demo platform operator's login (uploads the users' balances)."""
    creds = ensure_user("platform", credentials_file, staff=False)
    PlatformOperator.objects.get_or_create(user=get_user_model().objects.get(username="platform"))
    return creds


# --- Demo statements -------------------------------------------------------------------------
# Holdings the demo custodians report; the demo chains mint matching supply.
DEMO_HOLDINGS: dict[str, list[tuple[str, str, str | None]]] = {
    # LEI: [(ISIN, settled quantity, in-transit quantity or None)]
    "5493001KJTIIGC8Y1R12": [("US0378331005", "1000", None), ("US5949181045", "500", None)],
    "2138009Y59EAR7H1UO97": [("US78462F1030", "800", "50"), ("US46090E1038", "300", None)],
}


def demo_as_of(now: datetime | None = None) -> datetime:
    """The last NYSE session close at or before `now`: what custodians report as of. Statement
    age is counted in closed sessions, so the demo statements are as fresh as they can be."""
    from audits.market_calendars import DEFAULT_MIC, clock_for

    now = now or timezone.now()
    try:
        closes = clock_for(DEFAULT_MIC).closes
    except ValueError:  # no calendar for the exchange (UnknownExchange)
        closes = ()
    i = bisect_right(closes, int(now.timestamp())) - 1
    if 0 <= i < len(closes) - 1:
        return datetime.fromtimestamp(closes[i], UTC)
    # Outside the calendar's years: 21:00 UTC, the usual close in winter.
    close = now.replace(hour=21, minute=0, second=0, microsecond=0)
    return close if close <= now else close - timedelta(days=1)


def demo_csv(lei: str) -> bytes:
    rows = ["isin,quantity,account,balance_type"]
    for isin, settled, in_transit in DEMO_HOLDINGS[lei]:
        rows.append(f"{isin},{settled},NW-RESERVE-01,settled")
        if in_transit:
            rows.append(f"{isin},{in_transit},NW-RESERVE-01,pending_receipt")
    return ("\n".join(rows) + "\n").encode()


def demo_semt002(lei: str, as_of: datetime, page: int = 1, of: int = 1) -> bytes:
    """The custodian's holdings as semt.002; with `of` > 1, page `page` of a paged statement."""
    balances = []
    for isin, settled, in_transit in DEMO_HOLDINGS[lei][page - 1 :: of]:
        # AggtBal is what is held now: a pending receipt is not in it yet.
        aggregate = Decimal(settled)
        breakdown = (
            f"<BalBrkdwn><SubBalTp><Cd>PENR</Cd></SubBalTp><Qty><ShrtLngInd>LONG</ShrtLngInd>"
            f"<Qty><Qty><Unit>{in_transit}</Unit></Qty></Qty></Qty></BalBrkdwn>"
            if in_transit
            else ""
        )
        balances.append(
            f"<BalForAcct><FinInstrmId><ISIN>{isin}</ISIN></FinInstrmId>"
            f"<AggtBal><ShrtLngInd>LONG</ShrtLngInd><Qty><Qty><Qty><Unit>{aggregate}</Unit>"
            f"</Qty></Qty></Qty></AggtBal>{breakdown}</BalForAcct>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:semt.002.001.11"><SctiesBalCtdyRpt>'
        f"<Pgntn><PgNb>{page:05d}</PgNb><LastPgInd>{str(page == of).lower()}</LastPgInd></Pgntn>"
        f"<StmtGnlDtls><StmtId>HB-{as_of:%Y%m%d}</StmtId>"
        f"<StmtDtTm><DtTm>{as_of:%Y-%m-%dT%H:%M:%SZ}</DtTm></StmtDtTm>"
        "<Frqcy><Cd>DAIL</Cd></Frqcy><UpdTp><Cd>COMP</Cd></UpdTp><StmtBsis><Cd>SETT</Cd></StmtBsis>"
        "<ActvtyInd>true</ActvtyInd><SubAcctInd>false</SubAcctInd></StmtGnlDtls>"
        "<SfkpgAcct><Id>HB-TOKEN-RESERVE</Id></SfkpgAcct>"
        + "".join(balances)
        + "</SctiesBalCtdyRpt></Document>\n"
    ).encode()


def demo_signing_key(custodian: Custodian, key_file: Path) -> Ed25519PrivateKey:
    """The demo custodian's signing key (kept under var/), registered if it is not yet."""
    if key_file.exists():
        private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        assert isinstance(private, Ed25519PrivateKey)
    else:
        private = Ed25519PrivateKey.generate()
        key_file.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_file.chmod(0o600)
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    CustodianKey.objects.get_or_create(
        key_id=custodian_signatures.key_id(public),
        defaults={"custodian": custodian, "public_key": public, "label": "demo key"},
    )
    return private


def load_demo_statements(var_dir: Path, now: datetime | None = None) -> list[CustodianStatement]:
    """Upload today's demo statements: custodian 1 signs a CSV, custodian 2 sends a semt.002
    statement as two pages (the last first, so that it is `incomplete` for a moment)."""
    as_of = demo_as_of(now)
    first, second = (Custodian.objects.get(lei=lei) for lei in DEMO_HOLDINGS)
    uploader_1 = CustodianUser.objects.filter(custodian=first).first()
    uploader_2 = CustodianUser.objects.filter(custodian=second).first()
    assert uploader_1 and uploader_2, "create the demo custodian users first"
    key = demo_signing_key(first, var_dir / "demo-custodian1-ed25519.pem")
    csv_bytes = demo_csv(first.lei)
    key_id = custodian_signatures.key_id(
        key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    signature = f"{key_id}:{base64.b64encode(key.sign(csv_bytes)).decode()}"
    one = statements.submit_statement(
        custodian=first, user=uploader_1.user, raw=csv_bytes, fmt="csv", as_of=as_of,
        signature_header=signature,
    )  # fmt: skip
    for page in (2, 1):
        two = statements.submit_statement(
            custodian=second, user=uploader_2.user, raw=demo_semt002(second.lei, as_of, page, 2),
            fmt="semt002",
        )  # fmt: skip
    return [one.statement, two.statement]


def demo_token(user, token_file: Path) -> str:
    """A demo API token for `user`, kept under var/ so the README's curl example works."""
    if token_file.exists():
        secret = token_file.read_text().strip()
        if tokens.authenticate(secret) is not None:
            return secret
    _, secret = tokens.create_token(user, "demo")
    token_file.write_text(secret + "\n")
    token_file.chmod(0o600)
    return secret


# --- Demo chains -----------------------------------------------------------------------------
# `rundemo` starts both demo chains with `python -m audits.core.devchain serve`, deploys the four
# tokens on each (at CONTRACTS), points the Chain rows at them and mints supply whose
# circulating part matches the custodians' settled holdings above.
DEMO_CHAIN_PORTS = {31337: 8545, 31338: 8546}
#: Whole tokens minted to the demo holder per asset and chain (sums = settled holdings).
DEMO_MINTS = {
    "AAPLx": {31337: "700", 31338: "300"},
    "MSFTx": {31337: "400", 31338: "100"},
    "SPYx": {31337: "600.5", 31338: "199.5"},
    "QQQx": {31337: "250", 31338: "50"},
}
#: Minted to the issuer treasury on every deployment and excluded from circulating supply.
DEMO_TREASURY_TOKENS = "25"


def devchain_serve_command(
    out_file: Path, log_dir: Path, ports: dict[int, int] | None = None
) -> list[str]:
    """argv for the demo chains: both chain ids, the four tokens on each, no initial mint."""
    ports = ports or DEMO_CHAIN_PORTS
    argv = [sys.executable, "-m", "audits.core.devchain", "serve"]
    for chain_id, _ in CHAINS:
        argv += ["--chain", f"{chain_id}:{ports[chain_id]}"]
    for chain_id, _ in CHAINS:
        for code, name, *_ in ASSETS:
            argv += ["--token", f"{chain_id}:{code}:{CHAIN_DECIMALS[chain_id]}:{name}"]
    # No --initial-supply: its mints would take nonces and move tokens 2..4 off CONTRACTS.
    return [*argv, "--out", str(out_file), "--log-dir", str(log_dir)]


@transaction.atomic
def configure_demo_chains(devchain_file: Path) -> None:
    """Point the demo Chain rows at the running demo chains and exclude the issuer treasury."""
    from audits.core.devchain import DEPLOYER  # imported here: web3 is slow to import

    info = json.loads(devchain_file.read_text())
    for entry in info["chains"]:
        addresses = [token["address"] for token in entry["tokens"]]
        if addresses != CONTRACTS:
            raise RuntimeError(
                f"demo chain {entry['chain_id']} deployed the tokens at {addresses}, "
                f"expected {CONTRACTS}"
            )
        chain = Chain.objects.get(chain_id=entry["chain_id"])
        chain.rpc_urls = entry["rpc_url"]
        # anvil mines a block only per transaction: any confirmation depth would hide the
        # newest mint until that many further transactions happen.
        chain.confirmations = 0
        chain.rpc_timeout = 5
        chain.full_clean()
        chain.save()
        for deployment in chain.deployments.all():
            ExcludedAddress.objects.update_or_create(
                deployment=deployment, address=DEPLOYER, defaults={"label": "issuer treasury"}
            )


def mint_demo_supply(devchain_file: Path) -> None:
    """Mint DEMO_MINTS to the demo holder and DEMO_TREASURY_TOKENS to the treasury."""
    from audits.core import devchain  # imported here: web3 is slow to import

    holder = devchain.DEV_ACCOUNTS[1]
    info = json.loads(devchain_file.read_text())
    for entry in info["chains"]:
        chain_id = entry["chain_id"]
        for token in entry["tokens"]:
            decimals = CHAIN_DECIMALS[chain_id]
            amount = DEMO_MINTS[token["symbol"]][chain_id]
            devchain.mint(entry["rpc_url"], token["address"], holder, _raw(amount, decimals))
            treasury = _raw(DEMO_TREASURY_TOKENS, decimals)
            devchain.mint(entry["rpc_url"], token["address"], devchain.DEPLOYER, treasury)


def _raw(tokens: str, decimals: int) -> int:
    return tokens_to_raw(Decimal(tokens), decimals)


# --- Demo liability proof --------------------------------------------------------------------
DEMO_ACCOUNTS = [
    # account id, balances in AAPLx, MSFTx, SPYx, QQQx (whole tokens; 18 decimals on chain)
    ("alice@example.com", (12, 3, 0, 1)),
    ("bob@example.com", (0, 40, 5, 0)),
    ("carol@example.com", (250, 0, 0, 10)),
    ("dave@example.com", (1, 1, 1, 1)),
    ("erin@example.com", (0, 0, 90, 0)),
]


#: The asset order of DEMO_ACCOUNTS' balances.
DEMO_ACCOUNT_CODES = ("AAPLx", "MSFTx", "SPYx", "QQQx")
#: The demo user whose bundle `make demo` writes for the README's walkthrough.
DEMO_BUNDLE_ACCOUNT = DEMO_ACCOUNTS[0][0]


def demo_liabilities_csv() -> bytes:
    """The platform's snapshot of its demo users' balances (docs/liabilities.md format)."""
    rows = ["account_id,asset,balance"]
    for account, balances in DEMO_ACCOUNTS:
        rows += [
            f"{account},{code},{whole}"
            for code, whole in zip(DEMO_ACCOUNT_CODES, balances, strict=True)
            if whole
        ]
    return ("\n".join(rows) + "\n").encode()


def publish_demo_liabilities(operator, var_dir: Path, as_of: datetime | None = None) -> Path:
    """Upload the demo users' balances as the platform operator, build the trees now (as the
    worker would), and write one user's proof bundle to hand to them, as a platform does.

    As of now, not of the last market close as the custodians' statements are: tokens
    change hands at any hour, so a platform snapshots its users' balances whenever it likes,
    and the liabilities' age limit runs on the clock."""
    import json

    from audits import liabilities, liability_proofs

    snapshot, _ = liabilities.receive(
        user=operator,
        chunks=[demo_liabilities_csv()],
        as_of=as_of or timezone.now().replace(microsecond=0),
    )
    snapshot = liabilities.build(snapshot.pk)
    if snapshot.status != LiabilitySnapshot.Status.PUBLISHED:
        raise RuntimeError(f"demo liability snapshot #{snapshot.pk} is {snapshot.status}")
    bundle = liability_proofs.bundle(snapshot.pk, DEMO_BUNDLE_ACCOUNT)
    out = var_dir / "demo-bundle-alice.json"
    out.write_text(json.dumps(bundle, indent=2) + "\n")
    return out


# --- Demo reconciliation ---------------------------------------------------------------------
#: The demo chain on which `demo_breach` mints unbacked tokens.
BREACH_CHAIN_ID = 31337
#: Whole tokens `demo_breach` mints unless told otherwise: 10% of AAPLx, far past the breach.
BREACH_TOKENS = Decimal(100)
#: Receives the unbacked tokens (not the demo holder, so burning them back is exact).
BREACH_HOLDER_INDEX = 2


def read_demo_supply() -> None:
    """Read every demo deployment's supply now, rather than at the worker's first beat."""
    from audits import supply

    for deployment_id in supply.deployments_to_read():
        supply.read_deployment(deployment_id)


def start_healthy(admin, now: datetime | None = None) -> list[str]:
    """Bring every demo asset to eligible, as an operator would: run the reconciliation until
    each asset has its healthy streak, then approve the unfreeze as the admin. Returns what
    happened, one line per asset."""
    from audits import eligibility, reconciliation
    from audits.models import Eligibility

    ids = list(Asset.objects.filter(active=True).order_by("code").values_list("pk", flat=True))
    runs = max(eligibility.policy_for(a).healthy_runs_to_unfreeze for a in Asset.objects.all())
    for _ in range(runs):
        reconciliation.reconcile_assets(ids, now=now)
    lines = []
    for row in Eligibility.objects.filter(asset_id__in=ids).select_related(
        "asset", "asset__policy", "latest"
    ):
        code = row.asset.code
        if row.state == "eligible":
            lines.append(f"{code}: eligible ({row.latest.status if row.latest else 'no run'})")
            continue
        try:
            eligibility.approve_unfreeze(row.asset_id, admin, "demo start: evidence healthy")
        except eligibility.TransitionRefused as exc:
            lines.append(f"{code}: still frozen: {exc}")
        else:
            lines.append(f"{code}: eligible (approved by {admin.username})")
    return sorted(lines)


def _breach_file(var_dir: Path, code: str) -> Path:
    return var_dir / f"demo-breach-{code}.json"


def _breach_deployment(code: str) -> TokenDeployment:
    try:
        return TokenDeployment.objects.select_related("chain", "asset").get(
            asset__code=code, chain__chain_id=BREACH_CHAIN_ID
        )
    except TokenDeployment.DoesNotExist:
        known = ", ".join(Asset.objects.order_by("code").values_list("code", flat=True))
        raise ValueError(
            f"no demo asset {code!r} on chain {BREACH_CHAIN_ID} (known: {known})"
        ) from None


def _rpc_url(deployment: TokenDeployment) -> str:
    from audits.supply import expand_rpc_url

    urls = deployment.chain.rpc_url_list
    if not urls:
        raise ValueError(f"chain {deployment.chain.chain_id} has no RPC URL: is the demo running?")
    return expand_rpc_url(urls[0])


def mint_unbacked(code: str, var_dir: Path, amount: Decimal = BREACH_TOKENS) -> Decimal:
    """Mint `amount` tokens of `code` that no custodian holds, remember them under `var_dir`,
    and read the supply at once (which queues the asset's reconciliation). Returns the total
    minted so far."""
    from audits import supply
    from audits.core import devchain

    deployment = _breach_deployment(code)
    raw = tokens_to_raw(amount, deployment.decimals)
    if raw <= 0:
        raise ValueError("the amount must be positive")
    devchain.mint(
        _rpc_url(deployment), deployment.address, devchain.DEV_ACCOUNTS[BREACH_HOLDER_INDEX], raw
    )
    record = _breach_file(var_dir, code)
    before = int(json.loads(record.read_text())["raw"]) if record.exists() else 0
    record.write_text(json.dumps({"raw": str(before + raw)}) + "\n")
    supply.read_deployment(deployment.pk)
    return Decimal(before + raw).scaleb(-deployment.decimals)


def burn_unbacked(code: str, var_dir: Path) -> Decimal:
    """Burn what `mint_unbacked` minted of `code` and read the supply at once. Returns the
    tokens burned (0 if there was nothing to burn)."""
    from audits import supply
    from audits.core import devchain

    deployment = _breach_deployment(code)
    record = _breach_file(var_dir, code)
    if not record.exists():
        return Decimal(0)
    raw = int(json.loads(record.read_text())["raw"])
    devchain.burn(
        _rpc_url(deployment), deployment.address, devchain.DEV_ACCOUNTS[BREACH_HOLDER_INDEX], raw
    )
    record.unlink()
    supply.read_deployment(deployment.pk)
    return Decimal(raw).scaleb(-deployment.decimals)


def write_logins(path: Path, creds: list[Credentials], token: str) -> Path:
    """The demo logins in a file (0600) as well: the console scrolls them away."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    lines = [f"{c.username:12} password: {c.password}" for c in creds]
    lines.append(f"custodian1 API token: {token}")
    path.write_text("\n".join(lines) + "\n")
    return path


DEMO_WEBHOOK_DESCRIPTION = "demo webhook receiver (rundemo)"


def register_demo_webhook(url: str, admin) -> str | None:
    """Subscribe the demo receiver at `url` to every event; its secret, or None when this
    build has no webhook delivery. Earlier runs' demo endpoints (other ports) are removed."""
    from audits import models, webhooks

    create_endpoint = getattr(webhooks, "create_endpoint", None)
    endpoint_model = getattr(models, "WebhookEndpoint", None)
    if create_endpoint is None or endpoint_model is None:
        return None
    endpoint_model.objects.filter(description=DEMO_WEBHOOK_DESCRIPTION).delete()
    _, secret = create_endpoint(url, description=DEMO_WEBHOOK_DESCRIPTION, created_by=admin)
    return secret


def tokens_text(amount: Decimal) -> str:
    """An amount of tokens as a person writes it: 100, 0.5 (no exponent, no trailing zeros)."""
    return format(amount.normalize(), "f")


def plain_console_logging() -> None:
    """Readable log lines on this process's console (the demo's; production stays JSON)."""
    config: dict = copy.deepcopy(settings.LOGGING)
    config["handlers"]["console"]["formatter"] = "plain"
    logging.config.dictConfig(config)
