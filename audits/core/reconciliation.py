"""Reserves against supply for one asset: the arithmetic, without Django.

Everything here is exact: Decimal with a context wide enough for a uint256 at 36 decimals,
and the only rounding is conservative (reserves and the ratio round down, the shortfall
rounds up), so a rounding can make an asset look worse, never better.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, Context, Decimal, localcontext
from functools import lru_cache

HEALTHY, WARNING, BREACH, STALE, UNKNOWN = "healthy", "warning", "breach", "stale", "unknown"
STATUSES = (HEALTHY, WARNING, BREACH, STALE, UNKNOWN)

#: Places kept for token amounts (the widest token decimals an asset may have).
TOKEN_PLACES = 36
#: Places kept for the backing ratio.
RATIO_PLACES = 8
# 78 digits of a uint256, 36 places, and room: no operation here ever rounds silently.
_CONTEXT = Context(prec=200)


@dataclass(frozen=True)
class Policy:
    """How strictly an asset is reconciled (the admin-managed AssetPolicy, without Django)."""

    warning_bps: int = 1
    breach_bps: int = 10
    max_statement_age_sessions: int = 1
    max_supply_age_seconds: int = 600
    #: issuer-reported figures (chains read by hand) come daily at best, not every block
    max_manual_supply_age_seconds: int = 7 * 86_400
    deduct_pending_deliveries: bool = True
    healthy_runs_to_unfreeze: int = 3
    base_haircut_bps: int = 0
    warning_haircut_step_bps: int = 0

    def as_json(self) -> dict:
        return dict(_policy_items(self))

    @classmethod
    def from_json(cls, data: dict) -> Policy:
        return cls(**data)


@lru_cache(maxsize=1024)
def _policy_items(policy: Policy) -> tuple[tuple[str, object], ...]:
    # Most assets share a policy: turn each distinct one into JSON-ready items once.
    return tuple(asdict(policy).items())


@dataclass(frozen=True)
class StatementEvidence:
    """One custodian's counted statement for the asset, and what it says about the ISIN."""

    statement_id: int
    custodian: str
    as_of: datetime
    settled: Decimal
    pending_delivery: Decimal
    #: the multiplier in force at ``as_of`` (see :func:`multiplier_at`)
    shares_per_token: Decimal
    #: sessions of the home exchange closed after ``as_of``; None if it cannot be measured
    sessions_old: int | None


@dataclass(frozen=True)
class SupplyEvidence:
    """One deployment's counted supply reading, or why there is none."""

    deployment_id: int
    chain: str
    reading_id: int | None
    circulating: Decimal | None
    #: when the reading was last confirmed as canonical
    confirmed_at: datetime | None = None
    problem: str = ""
    #: an issuer-reported (manual) figure, judged by the manual age limit
    manual: bool = False


@dataclass(frozen=True)
class Outcome:
    status: str
    reason: str
    reserves: Decimal | None
    supply: Decimal | None
    ratio: Decimal | None
    shortfall_bps: int | None
    #: tokens each statement counts for, in the order given
    statement_tokens: tuple[Decimal, ...] = field(default_factory=tuple)
    evidence_as_of: datetime | None = None


def exact_context():
    """A decimal context in which sums and quotients of these amounts never round."""
    return localcontext(_CONTEXT)


def multiplier_at(
    initial: Decimal, changes: Iterable[tuple[datetime, Decimal]], at: datetime
) -> Decimal:
    """The shares per token in force at ``at``: the latest change activated at or before it,
    else ``initial`` (the multiplier before any corporate action)."""
    current, current_at = initial, None
    for effective_at, value in changes:
        if effective_at <= at and (current_at is None or effective_at > current_at):
            current, current_at = value, effective_at
    return current


def statement_tokens(evidence: StatementEvidence, policy: Policy) -> Decimal:
    """Tokens one statement backs: held shares over shares per token, rounded down."""
    with localcontext(_CONTEXT):
        shares = evidence.settled
        if policy.deduct_pending_deliveries:
            shares -= evidence.pending_delivery
        return (shares / evidence.shares_per_token).quantize(
            Decimal(1).scaleb(-TOKEN_PLACES), rounding=ROUND_DOWN
        )


def backing(reserves: Decimal, supply: Decimal) -> tuple[Decimal | None, int]:
    """(ratio rounded down, shortfall in bps rounded up); no ratio when nothing circulates."""
    with localcontext(_CONTEXT):
        if supply <= 0:
            return None, 0
        ratio = (reserves / supply).quantize(Decimal(1).scaleb(-RATIO_PLACES), rounding=ROUND_DOWN)
        if reserves >= supply:
            return ratio, 0
        shortfall = ((supply - reserves) * 10_000 / supply).to_integral_value(ROUND_CEILING)
        return ratio, int(shortfall)


def reconcile(
    code: str,
    statements: Sequence[StatementEvidence],
    supplies: Sequence[SupplyEvidence],
    policy: Policy,
    now: datetime,
) -> Outcome:
    """Compare reserves with supply and say what that means, in words a person can act on.

    Order of precedence: supply or reserves that cannot be read are ``unknown``; a shortfall
    past the breach threshold is a ``breach`` even on old evidence (waiting will not fix it);
    old evidence is ``stale``; a smaller shortfall is a ``warning``.
    """
    tokens = tuple(statement_tokens(s, policy) for s in statements)
    as_of = min((s.as_of for s in statements), default=None)
    unusable = [s for s in supplies if s.circulating is None]
    if not supplies or unusable:
        why = (
            "no active token deployment"
            if not supplies
            else "; ".join(f"{s.chain}: {s.problem or 'no usable reading'}" for s in unusable)
        )
        reserves = _sum(tokens) if statements else None
        return Outcome(
            UNKNOWN, f"Supply unknown ({why}).", reserves, None, None, None, tokens, as_of
        )
    supply = _sum(s.circulating for s in supplies if s.circulating is not None)
    if not statements:
        return Outcome(
            UNKNOWN,
            "Reserves unknown: no custodian has an accepted statement for this ISIN.",
            None,
            supply,
            None,
            None,
            tokens,
            as_of,
        )
    reserves = _sum(tokens)
    ratio, shortfall = backing(reserves, supply)
    figures = f"reserves {_plain(reserves)} {code} against supply {_plain(supply)} {code}"
    if ratio is not None:
        figures += f" (ratio {_plain(ratio)})"
    if shortfall >= policy.breach_bps:
        return Outcome(
            BREACH,
            f"Not fully backed: {figures}, short by {shortfall} bps "
            f"(breach at {policy.breach_bps} bps).",
            reserves, supply, ratio, shortfall, tokens, as_of,
        )  # fmt: skip
    stale = _staleness(statements, supplies, policy, now)
    if stale:
        return Outcome(
            STALE, f"Evidence too old: {'; '.join(stale)}. Last figures: {figures}.",
            reserves, supply, ratio, shortfall, tokens, as_of,
        )  # fmt: skip
    if shortfall and shortfall >= policy.warning_bps:
        return Outcome(
            WARNING,
            f"Slightly under-backed: {figures}, short by {shortfall} bps "
            f"(warning at {policy.warning_bps}, breach at {policy.breach_bps} bps).",
            reserves, supply, ratio, shortfall, tokens, as_of,
        )  # fmt: skip
    return Outcome(
        HEALTHY, f"Fully backed: {figures}.", reserves, supply, ratio, shortfall, tokens, as_of
    )


def _staleness(
    statements: Sequence[StatementEvidence],
    supplies: Sequence[SupplyEvidence],
    policy: Policy,
    now: datetime,
) -> list[str]:
    problems = []
    for s in statements:
        if s.sessions_old is None:
            problems.append(
                f"{s.custodian}'s statement as of {_when(s.as_of)} cannot be dated in "
                "exchange sessions"
            )
        elif s.sessions_old > policy.max_statement_age_sessions:
            problems.append(
                f"{s.custodian}'s statement as of {_when(s.as_of)} is {s.sessions_old} "
                f"sessions old (limit {policy.max_statement_age_sessions})"
            )
    for r in supplies:
        seconds = (
            policy.max_manual_supply_age_seconds if r.manual else policy.max_supply_age_seconds
        )
        if r.confirmed_at is None or now - r.confirmed_at > timedelta(seconds=seconds):
            seen = _when(r.confirmed_at) if r.confirmed_at else "never"
            what = "issuer-reported supply" if r.manual else "supply"
            problems.append(f"{r.chain} {what} last confirmed {seen} (limit {_span(seconds)})")
    return problems


def _span(seconds: int) -> str:
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400} d"
    if seconds % 3_600 == 0:
        return f"{seconds // 3_600} h"
    return f"{seconds // 60} min"


def _sum(values: Iterable[Decimal]) -> Decimal:
    with localcontext(_CONTEXT):
        return sum(values, Decimal(0))


def _plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 1000, 0.5, 1.00000001."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def digest(
    asset_id: int,
    policy: Policy,
    statements: Sequence[StatementEvidence],
    supplies: Sequence[SupplyEvidence],
    outcome: Outcome,
) -> str:
    """SHA-256 over what a reconciliation used and concluded. Two runs with the same digest
    are the same reconciliation: the later one only records that it checked."""
    document = {
        "asset": asset_id,
        "policy": policy.as_json(),
        "statements": sorted(
            [
                s.statement_id,
                str(s.settled),
                str(s.pending_delivery),
                str(s.shares_per_token),
                s.sessions_old,
            ]
            for s in statements
        ),
        # The figure, not the reading: a new block with the same supply changes nothing.
        "supply": sorted(
            [s.deployment_id, None if s.circulating is None else str(s.circulating), s.problem]
            for s in supplies
        ),
        "outcome": [
            outcome.status,
            outcome.reason,
            *(
                None if v is None else str(v)
                for v in (outcome.reserves, outcome.supply, outcome.ratio)
            ),
            outcome.shortfall_bps,
        ],
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()
