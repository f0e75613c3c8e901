"""What margin engines and people read about each asset as collateral: its eligibility, the
latest reconciliation behind it, and whether its home exchange trades now.

Read-only and shared by the API feed, the asset API and the home page, so all three say the
same thing. The number of queries does not depend on the number of assets: the eligibility
row and its latest reconciliation come joined to the asset, and the exchange clocks of all
the assets' MICs come from one query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone

from audits.choices import EligibilityState, ReconciliationStatus
from audits.core.market_hours import SessionClock
from audits.market_calendars import clocks_for
from audits.models import Asset, Eligibility, EligibilityEvent, Reconciliation

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
    def shortfall_bps(self) -> int | None:
        return self.reconciliation.shortfall_bps if self.reconciliation else None

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
