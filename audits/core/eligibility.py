"""The collateral eligibility state machine of one asset, without Django.

    eligible --(breach | undercollateralized | stale | unknown, or a manual freeze)--> frozen
    frozen --(N consecutive healthy reconciliations AND an admin's approval)--> eligible

At ``warning`` an eligible asset stays eligible; if the policy sets a step, its haircut rises
by that step until the next healthy run brings it back. Nothing but an approval unfreezes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from audits.core.reconciliation import (
    BREACH,
    HEALTHY,
    STALE,
    UNDERCOLLATERALIZED,
    UNKNOWN,
    WARNING,
    Policy,
)

ELIGIBLE, FROZEN = "eligible", "frozen"
FROZEN_EVENT, UNFROZEN_EVENT, HAIRCUT_EVENT = (
    "eligibility.frozen",
    "eligibility.unfrozen",
    "eligibility.haircut_changed",
)
# Users' balances above the reserves is a breach of backing like a supply shortfall.
FREEZING = frozenset({BREACH, UNDERCOLLATERALIZED, STALE, UNKNOWN})


class TransitionRefused(Exception):
    """An admin action the state machine does not allow; the message says why."""


@dataclass(frozen=True)
class State:
    state: str
    haircut_bps: int
    healthy_streak: int = 0
    frozen_manually: bool = False
    frozen_by: int | None = None


@dataclass(frozen=True)
class Transition:
    event_type: str
    before: State
    after: State
    reason: str


def after_reconciliation(
    current: State, status: str, reason: str, policy: Policy
) -> tuple[State, Transition | None]:
    """The state after a reconciliation with ``status``, and the transition if one happened.

    Every run counts towards (or resets) the healthy streak, including a run that found the
    same result as the one before.
    """
    streak = current.healthy_streak + 1 if status == HEALTHY else 0
    state = replace(current, healthy_streak=streak)
    if current.state == FROZEN:
        return state, None
    if status in FREEZING:
        after = replace(state, state=FROZEN, frozen_manually=False, frozen_by=None)
        return after, Transition(FROZEN_EVENT, current, after, reason)
    haircut = policy.base_haircut_bps
    if status == WARNING:
        haircut = policy.base_haircut_bps + policy.warning_haircut_step_bps
    if haircut != current.haircut_bps:
        after = replace(state, haircut_bps=haircut)
        why = reason if status == WARNING else f"Back to the base haircut: {reason}"
        return after, Transition(HAIRCUT_EVENT, current, after, why)
    return state, None


def manual_freeze(current: State, actor: int, reason: str) -> tuple[State, Transition]:
    if current.state == FROZEN:
        raise TransitionRefused("The asset is already frozen.")
    if not reason.strip():
        raise TransitionRefused("Say why the asset is frozen.")
    after = replace(current, state=FROZEN, healthy_streak=0, frozen_manually=True, frozen_by=actor)
    return after, Transition(FROZEN_EVENT, current, after, f"Frozen by an admin: {reason.strip()}")


def approve_unfreeze(
    current: State,
    latest_status: str | None,
    policy: Policy,
    approver: int,
    reason: str,
    *,
    approver_must_differ: bool,
) -> tuple[State, Transition]:
    """Unfreeze on firm evidence: the latest reconciliation healthy, N healthy in a row, a
    reason, and (if the setting says so) not the admin who froze it by hand."""
    if current.state != FROZEN:
        raise TransitionRefused("The asset is not frozen.")
    if latest_status != HEALTHY:
        raise TransitionRefused(
            f"The latest reconciliation is {latest_status or 'missing'}, not healthy."
        )
    needed = policy.healthy_runs_to_unfreeze
    if current.healthy_streak < needed:
        raise TransitionRefused(
            f"Only {current.healthy_streak} consecutive healthy reconciliation(s); the policy "
            f"needs {needed}."
        )
    if approver_must_differ and current.frozen_manually and current.frozen_by == approver:
        raise TransitionRefused(
            "The admin who froze this asset by hand cannot approve its unfreeze; another "
            "admin must."
        )
    if not reason.strip():
        raise TransitionRefused("Say why the unfreeze is approved.")
    after = replace(
        current,
        state=ELIGIBLE,
        haircut_bps=policy.base_haircut_bps,
        frozen_manually=False,
        frozen_by=None,
    )
    why = f"Unfreeze approved after {current.healthy_streak} healthy runs: {reason.strip()}"
    return after, Transition(UNFROZEN_EVENT, current, after, why)


__all__ = [
    "ELIGIBLE",
    "FROZEN",
    "FROZEN_EVENT",
    "HAIRCUT_EVENT",
    "UNFROZEN_EVENT",
    "State",
    "Transition",
    "TransitionRefused",
    "after_reconciliation",
    "approve_unfreeze",
    "manual_freeze",
]
