"""Reconciliation: gather each asset's evidence, compare reserves with supply and with users'
balances (`audits.core.reconciliation`), store the result, and move eligibility on.

One run handles a batch of assets in one transaction with their eligibility rows locked, so
two runs of one asset never interleave and a run killed half-way leaves nothing behind. The
number of queries does not depend on the number of assets: inputs are read in bulk, results
written in bulk. A run whose inputs and outcome match the asset's latest reconciliation (same
digest) only records that it checked.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from audits import eligibility
from audits.choices import SupplySource
from audits.core import market_hours
from audits.core import reconciliation as core
from audits.core.statement_formats import PENDING_DELIVERY, SETTLED
from audits.liabilities import latest_trees
from audits.market_calendars import clocks_for
from audits.models import (
    Asset,
    CustodianStatement,
    Eligibility,
    LiabilityTree,
    MultiplierChange,
    ReconciledReading,
    ReconciledStatement,
    Reconciliation,
    StatementLine,
    TokenDeployment,
)
from audits.models.bulk import insert_objects, insert_values, update_rows
from audits.statements import counting_statements
from audits.supply import freshness, judge_deployments
from audits.triggers import ensure_eligibility_rows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    asset_id: int
    reconciliation_id: int
    #: False when the run found the same result as the latest and only recorded the check
    created: bool
    status: str
    #: the eligibility event this run caused, if any
    event_seq: int | None = None


@dataclass
class Evidence:
    """Everything one asset's reconciliation rests on, as the core sees it."""

    asset: Asset
    policy: core.Policy
    statements: list[core.StatementEvidence]
    supplies: list[core.SupplyEvidence]
    #: the tree of the newest published liability snapshot covering the asset, if any
    tree: LiabilityTree | None = None
    liabilities: core.LiabilityEvidence | None = None


# --------------------------------------------------------------------------- entry points


def reconcile_asset(asset_id: int, now: datetime | None = None) -> Result | None:
    """Reconcile one asset (the task run after new evidence). Clears the queued mark first,
    so evidence arriving during the run queues the next one."""
    Eligibility.objects.filter(asset_id=asset_id).update(run_queued_at=None)
    results = reconcile_assets([asset_id], now=now)
    return results[0] if results else None


def reconcile_all(now: datetime | None = None) -> list[Result]:
    """Every active asset, in batches (the every-minute schedule, which notices staleness
    without new evidence and clears every queued mark, lost tasks' included)."""
    ids = list(Asset.objects.filter(active=True).order_by("pk").values_list("pk", flat=True))
    Eligibility.objects.filter(run_queued_at__isnull=False).update(run_queued_at=None)
    results: list[Result] = []
    size = settings.RECONCILE_BATCH_SIZE
    for start in range(0, len(ids), size):
        results += reconcile_assets(ids[start : start + size], now=now)
    return results


def reconcile_assets(asset_ids: Iterable[int], now: datetime | None = None) -> list[Result]:
    """Reconcile ``asset_ids`` in one transaction; one result per active asset."""
    ids = sorted(set(asset_ids))
    ensure_eligibility_rows(ids)
    with transaction.atomic():
        now = now or timezone.now()
        rows = {
            row.asset_id: row
            for row in Eligibility.objects.select_for_update(of=("self",))
            .filter(asset_id__any_of=ids, asset__active=True)
            .select_related("asset", "asset__policy")
            .order_by("asset_id")
        }
        # The latest reconciliations are read after the lock, in a statement of their own. A
        # row that waited for the lock comes back with the committed `latest_id`, but rows
        # joined to it in the same statement are not re-read (PostgreSQL re-checks only the
        # locked row), so a joined `latest` could be the one from before the wait and the run
        # would store a duplicate of the reconciliation the other run just made.
        latest = {
            rec.pk: rec
            for rec in Reconciliation.objects.filter(
                pk__any_of=[row.latest_id for row in rows.values() if row.latest_id is not None]
            )
        }
        for row in rows.values():
            row.latest = latest.get(row.latest_id) if row.latest_id is not None else None
        evidence = gather([row.asset for row in rows.values()], now)
        return _store(rows, evidence, now)


# --------------------------------------------------------------------------- gathering


def gather(assets: Sequence[Asset], now: datetime) -> dict[int, Evidence]:
    """The evidence of each asset at ``now``, read in a fixed number of queries."""
    by_id = {a.pk: a for a in assets}
    counting = {key: sid for key, sid in counting_statements(now=now).items() if key[1] in by_id}
    statements = {
        s.pk: s
        for s in CustodianStatement.objects.filter(
            pk__any_of=set(counting.values()), custodian__active=True
        ).select_related("custodian")
    }
    holdings = _holdings(statements, by_id)
    changes: dict[int, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for asset_id, at, value in MultiplierChange.objects.filter(
        asset_id__any_of=list(by_id)
    ).values_list("asset_id", "effective_at", "shares_per_token"):
        changes[asset_id].append((at, value))
    clocks = clocks_for({a.mic for a in assets})
    supplies = _supplies(assets, now)
    trees = latest_trees(by_id)

    evidence = {
        a.pk: Evidence(
            a,
            eligibility.policy_for(a),
            [],
            supplies.get(a.pk, []),
            trees.get(a.pk),
            liability_evidence(trees[a.pk], a) if a.pk in trees else None,
        )
        for a in assets
    }
    for (_custodian, asset_id), sid in sorted(counting.items()):
        statement = statements.get(sid)
        if statement is None or statement.as_of is None:
            continue  # an inactive custodian's statement does not count
        asset = by_id[asset_id]
        evidence[asset_id].statements.append(
            _statement_evidence(
                statement,
                asset,
                holdings,
                changes[asset_id],
                _sessions_old(clocks.get(asset.mic), statement.as_of, now),
            )
        )
    return evidence


def _statement_evidence(
    statement: CustodianStatement,
    asset: Asset,
    holdings: dict[tuple[int, int], tuple[Decimal, Decimal]],
    changes: list[tuple[datetime, Decimal]],
    sessions_old: int | None,
) -> core.StatementEvidence:
    """One counted statement as the core sees it (a run and a recomputation build it alike)."""
    assert statement.as_of is not None  # only statements with an as-of are ever counted
    settled, pending = holdings.get((statement.pk, asset.pk), (Decimal(0), Decimal(0)))
    return core.StatementEvidence(
        statement_id=statement.pk,
        custodian=statement.custodian.name,
        as_of=statement.as_of,
        settled=settled,
        pending_delivery=pending,
        shares_per_token=core.multiplier_at(asset.shares_per_token, changes, statement.as_of),
        sessions_old=sessions_old,
    )


def liability_evidence(tree: LiabilityTree, asset: Asset) -> core.LiabilityEvidence:
    """A tree (with its snapshot) as the core sees it: the root sum, an integer in the asset's
    smallest unit, in whole tokens. Shifting the exponent is exact, whatever the decimals."""
    return core.LiabilityEvidence(
        snapshot_id=tree.snapshot_id,
        as_of=tree.snapshot.as_of,
        root_sum=Decimal(int(tree.root_sum)).scaleb(-asset.decimals),
        root_hash=tree.root_hash,
        tree_sha256=tree.file_sha256,
    )


def _sessions_old(
    clock: market_hours.SessionClock | None, as_of: datetime, now: datetime
) -> int | None:
    if clock is None:
        return None
    try:
        return clock.sessions_closed_between(as_of, now)
    except market_hours.OutsideCalendar:
        return None


def _holdings(
    statements: dict[int, CustodianStatement], assets: dict[int, Asset]
) -> dict[tuple[int, int], tuple[Decimal, Decimal]]:
    """(statement, asset) -> (settled, pending delivery), exact on every database."""
    lines = StatementLine.objects.filter(
        statement_id__any_of=list(statements),
        asset_id__any_of=list(assets),
        balance_type__in=[SETTLED, PENDING_DELIVERY],
    ).order_by()
    totals: dict[tuple[int, int], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    rows: Iterable[tuple[Any, ...]]
    if connection.vendor == "postgresql":
        # numeric adds up exactly in SQL.
        rows = lines.values_list("statement_id", "asset_id", "balance_type").annotate(
            total=Sum("quantity")
        )
    else:
        # SQLite holds quantities as text (ExactDecimalField): add them up in Decimal.
        rows = lines.values_list("statement_id", "asset_id", "balance_type", "quantity")
    with core.exact_context():
        for sid, asset_id, balance_type, quantity in rows:
            slot = 0 if balance_type == SETTLED else 1
            totals[(sid, asset_id)][slot] += quantity
    return {key: (v[0], v[1]) for key, v in totals.items()}


def _supplies(assets: Sequence[Asset], now: datetime) -> dict[int, list[core.SupplyEvidence]]:
    # Plain values for every asset's active deployments in one query: thousands of model
    # instances (deployment and chain each) would cost more than the comparison itself.
    deployments = sorted(
        TokenDeployment.objects.filter(
            asset_id__any_of=[a.pk for a in assets], active=True, chain__active=True
        ).values_list("asset_id", "chain__chain_id", "pk", "chain__name")
    )
    judged = judge_deployments([d[2] for d in deployments], now, only=("circulating",))
    out: dict[int, list[core.SupplyEvidence]] = defaultdict(list)
    for asset_id, _chain_id, pk, chain_name in deployments:
        j = judged[pk]
        reading = j.reading if j.counted else None
        out[asset_id].append(
            core.SupplyEvidence(
                deployment_id=pk,
                chain=chain_name,
                reading_id=reading.pk if reading else None,
                circulating=reading.circulating if reading else None,
                confirmed_at=freshness(reading) if reading else None,
                problem="" if reading else f"{j.state}" + (f" ({j.note})" if j.note else ""),
                manual=reading is not None and reading.source == SupplySource.MANUAL,
            )
        )
    return out


# --------------------------------------------------------------------------- storing


def _store(
    rows: dict[int, Eligibility], evidence: dict[int, Evidence], now: datetime
) -> list[Result]:
    new: list[tuple[Reconciliation, Evidence, core.Outcome]] = []
    touched: list[int] = []
    current: dict[int, Reconciliation] = {}
    for asset_id, row in rows.items():
        ev = evidence[asset_id]
        outcome = core.reconcile(
            ev.asset.code, ev.statements, ev.supplies, ev.policy, now, ev.liabilities
        )
        digest = core.digest(
            asset_id, ev.policy, ev.statements, ev.supplies, outcome, ev.liabilities
        )
        if row.latest is not None and row.latest.digest == digest:
            touched.append(row.latest.pk)
            current[asset_id] = row.latest
            continue
        rec = Reconciliation(
            asset_id=asset_id,
            computed_at=now,
            checked_at=now,
            status=outcome.status,
            reason=outcome.reason,
            reserves=outcome.reserves,
            supply=outcome.supply,
            ratio=outcome.ratio,
            shortfall_bps=outcome.shortfall_bps,
            liabilities=outcome.liabilities,
            coverage=outcome.coverage,
            liabilities_tree=ev.tree,
            evidence_as_of=outcome.evidence_as_of,
            policy=ev.policy.as_json(),
            digest=digest,
        )
        new.append((rec, ev, outcome))
        current[asset_id] = rec
    if touched:
        Reconciliation.objects.filter(pk__any_of=touched).update(
            checked_at=now, checks=F("checks") + 1
        )
    if new:
        insert_objects(
            Reconciliation, [rec for rec, _, _ in new], _RECONCILIATION_FIELDS, with_ids=True
        )
        insert_values(
            ReconciledStatement,
            _STATEMENT_LINK_FIELDS,
            [
                (rec.pk, s.statement_id, s.settled, s.pending_delivery, s.shares_per_token,
                 tokens, s.sessions_old)
                for rec, ev, outcome in new
                for s, tokens in zip(ev.statements, outcome.statement_tokens, strict=True)
            ],
        )  # fmt: skip
        insert_values(
            ReconciledReading,
            _READING_LINK_FIELDS,
            [
                (rec.pk, s.deployment_id, s.reading_id, s.circulating, s.confirmed_at,
                 s.problem[:500])
                for rec, ev, _ in new
                for s in ev.supplies
            ],
        )  # fmt: skip
        for rec, ev, _ in new:
            previous = rows[rec.asset_id].latest
            if previous is None or previous.status != rec.status:
                logger.info(
                    "reconciliation %s: %s",
                    ev.asset.code,
                    rec.status,
                    extra={"asset": ev.asset.code, "status": rec.status, "reason": rec.reason},
                )
    pending = []
    before = {asset_id: _state_fields(row) for asset_id, row in rows.items()}
    for asset_id, row in rows.items():
        step = eligibility.after_reconciliation(
            row, current[asset_id], evidence[asset_id].policy, now
        )
        if step is not None:
            pending.append(step)
    # Only the rows and columns that changed: bulk_update builds one CASE branch per row and
    # column in Python, which dominated a 1,000-asset run when every column was written. The
    # commonest change, a re-check that only lengthens the healthy streak, is one plain UPDATE.
    changed_rows, changed_fields, one_more = [], set(), []
    for asset_id, row in rows.items():
        after = _state_fields(row)
        pairs = zip(_STATE_FIELDS, before[asset_id], after, strict=True)
        changed = {f for f, old, new in pairs if old != new}
        streak_before = before[asset_id][_STATE_FIELDS.index("healthy_streak")]
        if changed == {"healthy_streak"} and row.healthy_streak == streak_before + 1:
            one_more.append(row.pk)
        elif changed:
            changed_rows.append(row)
            changed_fields |= changed
    if one_more:
        Eligibility.objects.filter(pk__any_of=one_more).update(
            healthy_streak=F("healthy_streak") + 1
        )
    if changed_rows:
        update_rows(
            Eligibility,
            changed_rows,
            [f.removesuffix("_id") for f in _STATE_FIELDS if f in changed_fields],
        )
    events = {e.asset_id: e.seq for e in eligibility.record(pending, now)}
    created = {rec.asset_id for rec, _, _ in new}
    if (new or events) and settings.ATTESTATION_KEYS:
        # Something to attest: the task decides whether now or later (audits/attestations.py).
        transaction.on_commit(_queue_attestation)
    return [Result(a, current[a].pk, a in created, current[a].status, events.get(a)) for a in rows]


ATTESTATION_TASK = "audits.tasks.issue_attestation"
_RECONCILIATION_FIELDS = ("asset", "computed_at", "checked_at", "checks", "status", "reason",
                          "reserves", "supply", "ratio", "shortfall_bps", "liabilities",
                          "coverage", "liabilities_tree", "evidence_as_of", "policy",
                          "digest")  # fmt: skip
_STATEMENT_LINK_FIELDS = ("reconciliation", "statement", "settled", "pending_delivery",
                          "shares_per_token", "tokens", "sessions_old")  # fmt: skip
_READING_LINK_FIELDS = ("reconciliation", "deployment", "reading", "circulating", "confirmed_at",
                        "problem")  # fmt: skip
_STATE_FIELDS = ("state", "haircut_bps", "healthy_streak", "frozen_manually", "frozen_by_id",
                 "latest_id", "since", "reason")  # fmt: skip


def _queue_attestation() -> None:
    current_app.send_task(ATTESTATION_TASK)


def _state_fields(row: Eligibility) -> tuple:
    return tuple(getattr(row, f) for f in _STATE_FIELDS)


# --------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class Recomputation:
    """A stored reconciliation next to the same arithmetic redone from what it references."""

    stored: core.Outcome
    recomputed: core.Outcome
    differences: list[str]

    @property
    def matches(self) -> bool:
        return not self.differences


def recompute(reconciliation_id: int) -> Recomputation:
    """Redo a reconciliation from the evidence it references: the statements' stored lines,
    the multiplier history at each statement's as-of, the supply readings' figures, and the
    policy as it was applied. Anything that differs from what was stored is listed."""
    rec = Reconciliation.objects.select_related("asset", "liabilities_tree__snapshot").get(
        pk=reconciliation_id
    )
    policy = core.Policy.from_json(rec.policy)
    links = list(rec.statement_links.select_related("statement__custodian").order_by("pk"))
    statement_ids = {link.statement_id: link.statement for link in links}
    holdings = _holdings(statement_ids, {rec.asset_id: rec.asset})
    changes = list(
        MultiplierChange.objects.filter(asset=rec.asset).values_list(
            "effective_at", "shares_per_token"
        )
    )
    statements = [
        _statement_evidence(link.statement, rec.asset, holdings, changes, link.sessions_old)
        for link in links
    ]
    supplies = [
        core.SupplyEvidence(
            deployment_id=link.deployment_id,
            chain=link.deployment.chain.name,
            reading_id=link.reading_id,
            circulating=link.reading.circulating if link.reading else None,
            confirmed_at=link.confirmed_at,
            problem=link.problem,
            manual=link.reading is not None and link.reading.source == SupplySource.MANUAL,
        )
        for link in rec.reading_links.select_related("reading", "deployment__chain").order_by(
            "deployment__chain__chain_id", "pk"
        )
    ]
    stored = core.Outcome(
        rec.status, rec.reason, rec.reserves, rec.supply, rec.ratio, rec.shortfall_bps,
        liabilities=rec.liabilities, coverage=rec.coverage,
    )  # fmt: skip
    tree = rec.liabilities_tree
    liabilities = liability_evidence(tree, rec.asset) if tree is not None else None
    redone = core.reconcile(
        rec.asset.code, statements, supplies, policy, rec.computed_at, liabilities
    )
    differences = [
        f"{name}: stored {a}, recomputed {b}"
        for name, a, b in (
            ("status", stored.status, redone.status),
            ("reason", stored.reason, redone.reason),
            ("reserves", stored.reserves, redone.reserves),
            ("supply", stored.supply, redone.supply),
            ("ratio", stored.ratio, redone.ratio),
            ("shortfall_bps", stored.shortfall_bps, redone.shortfall_bps),
            ("liabilities", stored.liabilities, redone.liabilities),
            ("coverage", stored.coverage, redone.coverage),
        )
        if a != b
    ]
    for link, s in zip(links, statements, strict=True):
        if link.shares_per_token != s.shares_per_token:
            differences.append(
                f"statement {link.statement_id}: multiplier stored {link.shares_per_token}, "
                f"history says {s.shares_per_token}"
            )
    return Recomputation(stored, redone, differences)
