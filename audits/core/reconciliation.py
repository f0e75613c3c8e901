"""Reserves against supply for one asset: the arithmetic, without Django.

Everything here is exact: Decimal with a context wide enough for a uint256 at 36 decimals,
and the only rounding is conservative (reserves and the ratio round down, the shortfall
rounds up), so a rounding can make an asset look worse, never better.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, Context, Decimal, localcontext
from functools import lru_cache

HEALTHY, WARNING, BREACH, STALE, UNKNOWN = "healthy", "warning", "breach", "stale", "unknown"
#: The platform's users hold more tokens (the liability snapshot's root sum) than the
#: reserves back: a breach of backing of its own, ranked with ``breach``.
UNDERCOLLATERALIZED = "undercollateralized"
STATUSES = (HEALTHY, WARNING, UNDERCOLLATERALIZED, BREACH, STALE, UNKNOWN)

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
    #: without a published liability snapshot the asset is ``unknown`` (else judged without)
    liabilities_required: bool = False
    #: a liability snapshot older than this (clock time: tokens change hands around the
    #: clock, weekends included) is stale evidence
    max_liabilities_age_seconds: int = 2 * 86_400

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
class LiabilityEvidence:
    """The asset's tree in the newest published liability snapshot: what the platform's users
    hold, in whole tokens (the root sum in smallest units over 10**decimals, exactly)."""

    snapshot_id: int
    as_of: datetime
    root_sum: Decimal
    root_hash: str
    tree_sha256: str


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
    #: users' balances (whole tokens) and reserves over them, rounded down like the ratio
    liabilities: Decimal | None = None
    coverage: Decimal | None = None


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


def coverage(reserves: Decimal | None, liabilities: Decimal | None) -> Decimal | None:
    """Reserves over users' balances, rounded down; none when either is missing or zero."""
    if reserves is None or liabilities is None or liabilities <= 0:
        return None
    with localcontext(_CONTEXT):
        return (reserves / liabilities).quantize(
            Decimal(1).scaleb(-RATIO_PLACES), rounding=ROUND_DOWN
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
    liabilities: LiabilityEvidence | None = None,
) -> Outcome:
    """Compare reserves with supply, and with users' balances when the platform published
    them, and say what that means, in words a person can act on.

    Order of precedence: supply, reserves or (when the policy requires them) liabilities
    that cannot be read are ``unknown``; a shortfall past the breach threshold is a
    ``breach``, and users' balances above the reserves ``undercollateralized``, even on old
    evidence (waiting will not fix either); old evidence is ``stale``; a smaller shortfall is
    a ``warning``.
    """
    outcome = _judge(code, statements, supplies, policy, now, liabilities)
    if liabilities is None:
        return outcome
    return replace(
        outcome,
        liabilities=liabilities.root_sum,
        coverage=coverage(outcome.reserves, liabilities.root_sum),
    )


def _judge(
    code: str,
    statements: Sequence[StatementEvidence],
    supplies: Sequence[SupplyEvidence],
    policy: Policy,
    now: datetime,
    liabilities: LiabilityEvidence | None,
) -> Outcome:
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
    if liabilities is None and policy.liabilities_required:
        return Outcome(
            UNKNOWN,
            "Liabilities unknown: no published liability snapshot of users' balances for "
            "this asset, and the policy requires one.",
            reserves, supply, ratio, shortfall, tokens, as_of,
        )  # fmt: skip
    figures = f"reserves {_plain(reserves)} {code} against supply {_plain(supply)} {code}"
    if ratio is not None:
        figures += f" (ratio {_plain(ratio)})"
    if liabilities is not None:
        figures += f" and users' balances {_plain(liabilities.root_sum)} {code}"
    if shortfall >= policy.breach_bps:
        return Outcome(
            BREACH,
            f"Not fully backed: {figures}, short by {shortfall} bps "
            f"(breach at {policy.breach_bps} bps).",
            reserves, supply, ratio, shortfall, tokens, as_of,
        )  # fmt: skip
    if liabilities is not None and liabilities.root_sum > reserves:
        return Outcome(
            UNDERCOLLATERALIZED,
            f"Users' balances exceed reserves: the platform's users hold "
            f"{_plain(liabilities.root_sum)} {code} (liability snapshot "
            f"#{liabilities.snapshot_id} as of {_when(liabilities.as_of)}) but reserves back "
            f"only {_plain(reserves)} {code}, short by "
            f"{_plain(liabilities.root_sum - reserves)} {code}.",
            reserves, supply, ratio, shortfall, tokens, as_of,
        )  # fmt: skip
    stale = _staleness(statements, supplies, policy, now, liabilities)
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
    liabilities: LiabilityEvidence | None = None,
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
    if liabilities is not None:
        limit = policy.max_liabilities_age_seconds
        if now - liabilities.as_of > timedelta(seconds=limit):
            problems.append(
                f"liability snapshot #{liabilities.snapshot_id} as of "
                f"{_when(liabilities.as_of)} (limit {_span(limit)})"
            )
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
    liabilities: LiabilityEvidence | None = None,
) -> str:
    """SHA-256 over what a reconciliation used and concluded. Two runs with the same digest
    are the same reconciliation: the later one only records that it checked."""
    document: dict = {
        "asset": asset_id,
        "policy": _digest_policy(policy),
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
    # Only when there are liabilities: an asset without a snapshot keeps the digest it had
    # before liabilities existed, so an upgrade does not add a row per stable asset.
    if liabilities is not None:
        document["liabilities"] = [
            liabilities.snapshot_id,
            liabilities.root_hash,
            str(liabilities.root_sum),
            liabilities.tree_sha256,
        ]
        document["outcome"] += [str(outcome.liabilities), str(outcome.coverage)]
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


_LIABILITY_RULES = ("liabilities_required", "max_liabilities_age_seconds")


def _digest_policy(policy: Policy) -> dict:
    # The liability rules at their defaults are left out, for the same reason as above.
    default = Policy()
    return {
        k: v
        for k, v in policy.as_json().items()
        if k not in _LIABILITY_RULES or getattr(default, k) != v
    }
