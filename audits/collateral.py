"""What margin engines and people read about each asset as collateral: its eligibility, the
latest reconciliation behind it, and whether its home exchange trades now.

Read-only and shared by the API feed, the asset API and the home page, so all three say the
same thing. The number of queries does not depend on the number of assets: the eligibility
row and its latest reconciliation come joined to the asset, and the exchange clocks of all
the assets' MICs come from one query. The home page adds a fixed number of queries for its
cards (`home_cards`): the evidence links of the latest reconciliations, the ratio history and
the latest attestation, each in one query for all the assets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from audits.choices import EligibilityState, ReconciliationStatus, SupplySource
from audits.core import ratio_chart
from audits.core.market_hours import SessionClock
from audits.market_calendars import clocks_for
from audits.models import (
    Asset,
    AssetPolicy,
    Attestation,
    Eligibility,
    EligibilityEvent,
    ReconciledReading,
    ReconciledStatement,
    Reconciliation,
)

NO_RECONCILIATION = "no reconciliation yet"
EVENTS_PAGE = 100
EVENTS_PAGE_MAX = 1000


@dataclass(frozen=True)
class Collateral:
    """One asset's collateral standing, flattened for readers."""

    asset: Asset
    eligible: bool
    state: str
    haircut_bps: int
    since: datetime | None
    reason: str
    reconciliation: Reconciliation | None
    #: {"mic", "open", "next_open", "next_close"}; None when not asked for
    market: dict | None = None

    @property
    def reconciliation_id(self) -> int | None:
        return self.reconciliation.pk if self.reconciliation else None

    @property
    def status(self) -> str | None:
        return self.reconciliation.status if self.reconciliation else None

    @property
    def ratio(self) -> Decimal | None:
        return plain(self.reconciliation.ratio) if self.reconciliation else None

    @property
    def reserves(self) -> Decimal | None:
        return plain(self.reconciliation.reserves) if self.reconciliation else None

    @property
    def supply(self) -> Decimal | None:
        return plain(self.reconciliation.supply) if self.reconciliation else None

    @property
    def liabilities(self) -> Decimal | None:
        """Users' balances in whole tokens (the published liability snapshot), if counted."""
        return plain(self.reconciliation.liabilities) if self.reconciliation else None

    @property
    def liabilities_as_of(self) -> datetime | None:
        """The as-of of that snapshot (join it in first: see `home_cards`)."""
        rec = self.reconciliation
        tree = rec.liabilities_tree if rec is not None else None
        return tree.snapshot.as_of if tree is not None else None

    @property
    def shortfall_bps(self) -> int | None:
        return self.reconciliation.shortfall_bps if self.reconciliation else None

    @property
    def coverage(self) -> Decimal | None:
        """Reserves divided by users' balances, if a liability snapshot was counted."""
        return plain(self.reconciliation.coverage) if self.reconciliation else None

    @property
    def evidence_as_of(self) -> datetime | None:
        return self.reconciliation.evidence_as_of if self.reconciliation else None

    @property
    def computed_at(self) -> datetime | None:
        return self.reconciliation.computed_at if self.reconciliation else None

    @property
    def checked_at(self) -> datetime | None:
        return self.reconciliation.checked_at if self.reconciliation else None

    @property
    def ratio_percent(self) -> Decimal | None:
        """The backing ratio as a percentage (for people), its 8 places kept."""
        return None if self.ratio is None else plain(self.ratio * 100)

    @property
    def backing_tone(self) -> str:
        """ok, bad or warn: the colour the home page gives `backing`."""
        backing = self.backing
        if backing == "Fully backed":
            return "ok"
        return "bad" if backing.startswith("NOT") else "warn"

    @property
    def market_next_change(self) -> datetime | None:
        """When the exchange next closes (if open) or opens (if closed), for people."""
        if not self.market:
            return None
        when = self.market["next_close" if self.market["open"] else "next_open"]
        return datetime.fromisoformat(when) if when else None

    @property
    def backing(self) -> str:
        """Backed or not, in plain words."""
        status = self.status
        if status == ReconciliationStatus.STALE:
            return "Evidence too old"
        if status == ReconciliationStatus.UNDERCOLLATERALIZED:
            return "NOT fully backed: users' balances exceed reserves"
        if status not in (
            ReconciliationStatus.HEALTHY,
            ReconciliationStatus.WARNING,
            ReconciliationStatus.BREACH,
        ):
            return "Unknown"
        # The stored figure, rounded up like the reason and the feed say it: one number for
        # one shortfall everywhere.
        short = self.shortfall_bps
        if not short:
            return "Fully backed"
        return f"NOT fully backed: short by {short} bps"


def plain(value: Decimal | None) -> Decimal | None:
    """The same number without trailing zeros or an exponent, so every database (numeric on
    PostgreSQL keeps all 36 places) gives the same string, and the same ETag."""
    if value is None:
        return None
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        normal = normal.quantize(Decimal(1))
    return normal


def with_collateral(assets: QuerySet[Asset]) -> QuerySet[Asset]:
    """``assets`` with what `collateral_of` reads joined in (no query per asset)."""
    return assets.select_related("eligibility", "eligibility__latest")


def collateral_of(asset: Asset, market: dict | None = None) -> Collateral:
    """``asset``'s standing (fetch it through `with_collateral`). Without an eligibility row
    or any reconciliation it is frozen: nothing has shown it backed."""
    try:
        row: Eligibility | None = asset.eligibility
    except Eligibility.DoesNotExist:
        row = None
    if row is None:
        return Collateral(
            asset, False, EligibilityState.FROZEN, 0, None, NO_RECONCILIATION, None, market
        )
    latest = row.latest
    if latest is None:
        # An admin's reason says more than the default; otherwise say it plainly.
        reason = row.reason if row.frozen_manually else NO_RECONCILIATION
        return Collateral(
            asset, False, EligibilityState.FROZEN, row.haircut_bps, row.since, reason, None, market
        )
    return Collateral(
        asset, row.eligible, row.state, row.haircut_bps, row.since, row.reason, latest, market
    )


def market_states(mics: Iterable[str], now: datetime) -> dict[str, dict]:
    """`audits.market_calendars.market_state` for many MICs at once, in one query."""
    return {mic: _market_state(clock, mic, now) for mic, clock in clocks_for(mics).items()}


def _market_state(clock: SessionClock, mic: str, now: datetime) -> dict:
    next_open = clock.next_open(now)
    next_close = clock.next_close(now)
    return {
        "mic": mic,
        "open": clock.is_open(now),
        "next_open": next_open.isoformat() if next_open else None,
        "next_close": next_close.isoformat() if next_close else None,
    }


def eligibility_feed(now: datetime | None = None) -> list[Collateral]:
    """Every active asset's standing, with its home exchange's state at ``now``; two queries."""
    now = now or timezone.now()
    assets = list(with_collateral(Asset.objects.filter(active=True)).order_by("code"))
    markets = market_states({a.mic for a in assets}, now)
    return [collateral_of(a, markets[a.mic]) for a in assets]


def events_after(after: int, limit: int = EVENTS_PAGE) -> list[EligibilityEvent]:
    """Eligibility events with ``seq > after``, oldest first, at most ``limit``; one query.

    Sequence numbers are given out under a lock held until commit, so a consumer that reads
    from its last seen ``seq`` never misses one committed later with a smaller number.
    """
    return list(
        EligibilityEvent.objects.filter(seq__gt=after)
        .select_related("asset")
        .order_by("seq")[:limit]
    )


# --- The home page's cards -------------------------------------------------------------------
CHART_DAYS = 30
#: At most this many reconciliations per asset are drawn (the newest in the window).
CHART_POINTS = 500


@dataclass(frozen=True)
class CustodianFigure:
    """One custodian statement the latest reconciliation counted."""

    custodian: str
    as_of: datetime | None
    tokens: Decimal | None


@dataclass(frozen=True)
class ChainFigure:
    """One deployment's supply as the latest reconciliation saw it."""

    chain: str
    chain_id: int
    tokens: Decimal | None
    manual: bool
    block_number: int | None
    confirmations: int | None
    problem: str


@dataclass(frozen=True)
class Card:
    """Everything the home page says about one asset."""

    collateral: Collateral
    custodians: list[CustodianFigure]
    chains: list[ChainFigure]
    chart: ratio_chart.Chart
    attestation: Attestation | None

    @property
    def asset(self) -> Asset:
        return self.collateral.asset


def latest_attestation() -> Attestation | None:
    """The newest attestation's number and time (nothing of its payload)."""
    return Attestation.objects.only("sequence", "issued_at").order_by("-sequence").first()


def ratio_history(
    asset_ids: list[int], start: datetime, limit: int = CHART_POINTS
) -> dict[int, list[ratio_chart.Point]]:
    """Per asset, oldest first: its newest ``limit`` reconciliations since ``start`` and the
    one before, whose ratio holds at the window's edge. One query whatever the number of
    assets (a window function numbers each asset's rows)."""
    newest_first = Window(
        RowNumber(),
        partition_by=[F("asset_id")],
        order_by=[F("computed_at").desc(), F("id").desc()],
    )
    fields = ("asset_id", "computed_at", "ratio")
    rows = Reconciliation.objects.filter(asset_id__in=asset_ids).order_by()
    within = (
        rows.filter(computed_at__gte=start)
        .annotate(n=newest_first)
        .filter(n__lte=limit)
        .values_list(*fields)
    )
    before = rows.filter(computed_at__lt=start).annotate(n=newest_first).filter(n=1)
    history: dict[int, list[ratio_chart.Point]] = defaultdict(list)
    for asset_id, at, ratio in within.union(before.values_list(*fields), all=True):
        history[asset_id].append(ratio_chart.Point(at, ratio))
    for points in history.values():
        points.sort(key=lambda p: p.at)
    return history


def _evidence(latest_ids: list[int]) -> tuple[dict, dict]:
    statements: dict[int, list[CustodianFigure]] = defaultdict(list)
    for link in (
        ReconciledStatement.objects.filter(reconciliation_id__in=latest_ids)
        .select_related("statement__custodian")
        .order_by("statement__custodian__name", "statement_id")
    ):
        statements[link.reconciliation_id].append(
            CustodianFigure(link.statement.custodian.name, link.statement.as_of, plain(link.tokens))
        )
    chains: dict[int, list[ChainFigure]] = defaultdict(list)
    for r in (
        ReconciledReading.objects.filter(reconciliation_id__in=latest_ids)
        .select_related("reading", "deployment__chain")
        .order_by("deployment__chain__chain_id", "deployment_id")
    ):
        reading = r.reading
        chains[r.reconciliation_id].append(
            ChainFigure(
                chain=r.deployment.chain.name,
                chain_id=r.deployment.chain.chain_id,
                tokens=plain(r.circulating),
                manual=reading is not None and reading.source == SupplySource.MANUAL,
                block_number=reading.block_number if reading else None,
                confirmations=reading.confirmations if reading else None,
                problem=r.problem or ("" if reading else "no usable reading"),
            )
        )
    return statements, chains


def _breach(asset: Asset) -> Decimal:
    try:
        bps = asset.policy.breach_bps
    except AssetPolicy.DoesNotExist:
        bps = AssetPolicy._meta.get_field("breach_bps").get_default()
    return 1 - Decimal(bps) / 10_000


def home_cards(now: datetime | None = None) -> list[Card]:
    """Every active asset's card: its standing, the evidence behind the latest
    reconciliation, its ratio over the last CHART_DAYS days and the latest attestation.
    Six queries whatever the number of assets."""
    now = now or timezone.now()
    start = now - timedelta(days=CHART_DAYS)
    assets = list(
        with_collateral(Asset.objects.filter(active=True))
        .select_related("policy", "eligibility__latest__liabilities_tree__snapshot")
        .order_by("code")
    )
    markets = market_states({a.mic for a in assets}, now)
    standings = [collateral_of(a, markets[a.mic]) for a in assets]
    latest_ids = [c.reconciliation_id for c in standings if c.reconciliation_id is not None]
    statements, chains = _evidence(latest_ids)
    history = ratio_history([a.pk for a in assets], start)
    attestation = latest_attestation()
    return [
        Card(
            collateral=c,
            custodians=statements.get(c.reconciliation_id or 0, []),
            chains=chains.get(c.reconciliation_id or 0, []),
            chart=ratio_chart.chart(
                history.get(c.asset.pk, []), start, now, breach=_breach(c.asset)
            ),
            attestation=attestation,
        )
        for c in standings
    ]
