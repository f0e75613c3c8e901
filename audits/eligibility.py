"""Collateral eligibility: apply the state machine (`audits.core.eligibility`) to the stored
state, record every transition as an immutable event, and tell subscribers.

Transitions are written in the caller's transaction, with the asset's eligibility row locked
(reconciliation holds that lock), and the webhook deliveries are written in the same
transaction: an event and its notifications exist together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audits import webhooks
from audits.core import eligibility as machine
from audits.core.reconciliation import Policy
from audits.models import (
    Asset,
    AssetPolicy,
    Eligibility,
    EligibilityEvent,
    EventCounter,
    Reconciliation,
)
from audits.triggers import ensure_eligibility_rows

TransitionRefused = machine.TransitionRefused
_COUNTER = "eligibility-events"


def policy_for(asset: Asset) -> Policy:
    """The asset's policy, or the defaults if an admin never set one."""
    try:
        row: AssetPolicy = asset.policy
    except AssetPolicy.DoesNotExist:
        return Policy()
    return Policy(
        warning_bps=row.warning_bps,
        breach_bps=row.breach_bps,
        max_statement_age_sessions=row.max_statement_age_sessions,
        max_supply_age_seconds=int(row.max_supply_age.total_seconds()),
        max_manual_supply_age_seconds=int(row.max_manual_supply_age.total_seconds()),
        deduct_pending_deliveries=row.deduct_pending_deliveries,
        healthy_runs_to_unfreeze=row.healthy_runs_to_unfreeze,
        base_haircut_bps=row.base_haircut_bps,
        warning_haircut_step_bps=row.warning_haircut_step_bps,
        liabilities_required=row.liabilities_required,
        max_liabilities_age_seconds=int(row.max_liabilities_age.total_seconds()),
    )


def state_of(row: Eligibility) -> machine.State:
    return machine.State(
        state=row.state,
        haircut_bps=row.haircut_bps,
        healthy_streak=row.healthy_streak,
        frozen_manually=row.frozen_manually,
        frozen_by=row.frozen_by_id,
    )


def _apply(row: Eligibility, after: machine.State) -> None:
    row.state = after.state
    row.haircut_bps = after.haircut_bps
    row.healthy_streak = after.healthy_streak
    row.frozen_manually = after.frozen_manually
    row.frozen_by_id = after.frozen_by


@dataclass(frozen=True)
class PendingTransition:
    row: Eligibility
    transition: machine.Transition
    reconciliation: Reconciliation | None = None
    actor_id: int | None = None


def record(pending: Sequence[PendingTransition], now: datetime) -> list[EligibilityEvent]:
    """Write the events of ``pending`` (rows already updated by the caller) and publish them.

    Sequence numbers come from one counter row locked until commit, so they commit in order.
    """
    if not pending:
        return []
    counter, _ = EventCounter.objects.select_for_update().get_or_create(name=_COUNTER)
    first = counter.value + 1
    counter.value += len(pending)
    counter.save(update_fields=["value"])
    events = [
        EligibilityEvent(
            seq=first + n,
            event_type=p.transition.event_type,
            asset_id=p.row.asset_id,
            from_state=p.transition.before.state,
            to_state=p.transition.after.state,
            from_haircut_bps=p.transition.before.haircut_bps,
            to_haircut_bps=p.transition.after.haircut_bps,
            reason=p.transition.reason,
            reconciliation=p.reconciliation,
            actor_id=p.actor_id,
            created_at=now,
        )
        for n, p in enumerate(pending)
    ]
    EligibilityEvent.objects.bulk_create(events)
    assets = {p.row.asset_id: p.row.asset for p in pending}
    for event in events:
        webhooks.publish(
            event.event_type, event.webhook_id, event_payload(event, assets[event.asset_id])
        )
    return events


def event_payload(event: EligibilityEvent, asset: Asset) -> dict:
    """The `data` of a webhook message (documented in docs/webhooks.md)."""
    return {
        "event_id": event.seq,
        "asset": asset.code,
        "isin": asset.isin,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "eligible": event.to_state == machine.ELIGIBLE,
        "from_haircut_bps": event.from_haircut_bps,
        "haircut_bps": event.to_haircut_bps,
        "reason": event.reason,
        "reconciliation_id": event.reconciliation_id,
        "occurred_at": event.created_at.isoformat(),
    }


def after_reconciliation(
    row: Eligibility, reconciliation: Reconciliation, policy: Policy, now: datetime
) -> PendingTransition | None:
    """Advance ``row`` (locked by the caller) for one run's outcome; the transition, if any."""
    after, transition = machine.after_reconciliation(
        state_of(row), reconciliation.status, reconciliation.reason, policy
    )
    _apply(row, after)
    row.latest = reconciliation
    if transition is None:
        if row.state == machine.FROZEN and not row.frozen_manually:
            # Still frozen: say why now, not why it was frozen (a new asset's first breach,
            # or healthy evidence now waiting for approval). An admin's reason stays.
            row.reason = _still_frozen(reconciliation, policy)
        return None
    row.since, row.reason = now, transition.reason
    return PendingTransition(row, transition, reconciliation)


def _still_frozen(reconciliation: Reconciliation, policy: Policy) -> str:
    # The same words on every run while nothing changes, so a stable asset's row is not
    # rewritten each minute (the streak has its own column).
    if reconciliation.status != "healthy":
        return reconciliation.reason
    return (
        f"Frozen until an admin approves the unfreeze, possible after "
        f"{policy.healthy_runs_to_unfreeze} healthy runs in a row. {reconciliation.reason}"
    )


def _locked(asset_id: int) -> Eligibility:
    ensure_eligibility_rows([asset_id])
    pk = Eligibility.objects.select_for_update().values_list("pk", flat=True).get(asset_id=asset_id)
    # Read after the lock: rows joined into a locking SELECT may predate the wait for it
    # (PostgreSQL re-checks only the locked row), and the decision rests on the latest run.
    return Eligibility.objects.select_related("asset", "asset__policy", "latest").get(pk=pk)


def manual_freeze(asset_id: int, by, reason: str) -> EligibilityEvent:
    """An admin freezes an asset at once, whatever the evidence says."""
    with transaction.atomic():
        row = _locked(asset_id)
        after, transition = machine.manual_freeze(state_of(row), by.pk, reason)
        return _commit_admin_transition(row, after, transition, by)


def approve_unfreeze(asset_id: int, by, reason: str) -> EligibilityEvent:
    """An admin approves an unfreeze; refused (TransitionRefused, with the reason) unless the
    latest reconciliation is healthy and enough healthy runs came in a row."""
    with transaction.atomic():
        row = _locked(asset_id)
        after, transition = machine.approve_unfreeze(
            state_of(row),
            row.latest.status if row.latest else None,
            policy_for(row.asset),
            by.pk,
            reason,
            approver_must_differ=settings.UNFREEZE_APPROVER_MUST_DIFFER,
        )
        return _commit_admin_transition(row, after, transition, by)


def _commit_admin_transition(
    row: Eligibility, after: machine.State, transition: machine.Transition, by
) -> EligibilityEvent:
    now = timezone.now()
    _apply(row, after)
    row.since, row.reason = now, transition.reason
    row.save()
    (event,) = record([PendingTransition(row, transition, row.latest, by.pk)], now)
    return event


def unfreeze_readiness(row: Eligibility) -> str:
    """What an admin needs to know before approving: plain words, empty if it can be approved."""
    if row.state != machine.FROZEN:
        return "not frozen"
    needed = policy_for(row.asset).healthy_runs_to_unfreeze
    if row.latest is None or row.latest.status != "healthy":
        status = row.latest.status if row.latest else "none yet"
        return f"latest reconciliation: {status}"
    if row.healthy_streak < needed:
        return f"{row.healthy_streak} of {needed} healthy runs"
    return ""
