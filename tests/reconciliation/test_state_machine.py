"""The eligibility state machine without a database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audits.core import eligibility as m
from audits.core.reconciliation import STATUSES, Policy

POLICY = Policy(base_haircut_bps=100, warning_haircut_step_bps=50, healthy_runs_to_unfreeze=2)
ELIGIBLE = m.State(m.ELIGIBLE, 100, healthy_streak=5)
FROZEN = m.State(m.FROZEN, 100)


@pytest.mark.parametrize("status", ["breach", "stale", "unknown"])
def test_failing_evidence_freezes_an_eligible_asset_at_once(status):
    after, transition = m.after_reconciliation(ELIGIBLE, status, "why", POLICY)
    assert (after.state, after.healthy_streak) == (m.FROZEN, 0)
    assert transition is not None and transition.event_type == m.FROZEN_EVENT
    assert transition.reason == "why"


def test_warning_steps_the_haircut_and_healthy_brings_it_back():
    warned, t1 = m.after_reconciliation(ELIGIBLE, "warning", "short", POLICY)
    assert (warned.state, warned.haircut_bps, warned.healthy_streak) == (m.ELIGIBLE, 150, 0)
    assert t1 is not None and t1.event_type == m.HAIRCUT_EVENT
    again, t2 = m.after_reconciliation(warned, "warning", "short", POLICY)
    assert t2 is None and again.haircut_bps == 150  # no repeated event
    healed, t3 = m.after_reconciliation(again, "healthy", "fine", POLICY)
    assert healed.haircut_bps == 100 and t3 is not None and t3.event_type == m.HAIRCUT_EVENT


def test_warning_without_a_step_changes_nothing():
    after, transition = m.after_reconciliation(
        ELIGIBLE, "warning", "short", Policy(base_haircut_bps=100)
    )
    assert transition is None and after.state == m.ELIGIBLE and after.haircut_bps == 100


@given(st.lists(st.sampled_from(STATUSES), max_size=30))
def test_no_run_of_evidence_alone_ever_unfreezes(statuses):
    current = FROZEN
    for status in statuses:
        current, transition = m.after_reconciliation(current, status, "r", POLICY)
        assert current.state == m.FROZEN and transition is None
    # The streak is exactly the trailing healthy runs.
    trailing = len(statuses) - len(
        "".join("x" if s != "healthy" else " " for s in statuses).rstrip()
    )
    assert current.healthy_streak == trailing


@given(st.lists(st.sampled_from(STATUSES), min_size=1, max_size=30))
def test_an_eligible_asset_never_stays_eligible_through_a_freezing_status(statuses):
    current = ELIGIBLE
    for status in statuses:
        current, _ = m.after_reconciliation(current, status, "r", POLICY)
        if status in m.FREEZING:
            assert current.state == m.FROZEN
        if current.state == m.FROZEN:
            break


def test_approval_needs_healthy_latest_enough_runs_and_a_reason():
    ready = m.State(m.FROZEN, 100, healthy_streak=2)
    with pytest.raises(m.TransitionRefused, match="stale, not healthy"):
        m.approve_unfreeze(ready, "stale", POLICY, 1, "r", approver_must_differ=True)
    with pytest.raises(m.TransitionRefused, match="Only 1"):
        m.approve_unfreeze(
            m.State(m.FROZEN, 0, healthy_streak=1), "healthy", POLICY, 1, "r",
            approver_must_differ=True,
        )  # fmt: skip
    with pytest.raises(m.TransitionRefused, match="not frozen"):
        m.approve_unfreeze(ELIGIBLE, "healthy", POLICY, 1, "r", approver_must_differ=True)
    after, transition = m.approve_unfreeze(
        ready, "healthy", POLICY, 1, "ok", approver_must_differ=True
    )
    assert (after.state, after.haircut_bps) == (m.ELIGIBLE, 100)
    assert transition.event_type == m.UNFROZEN_EVENT and "ok" in transition.reason


def test_the_admin_who_froze_by_hand_cannot_approve_when_the_setting_says_so():
    frozen, _ = m.manual_freeze(ELIGIBLE, 7, "review")
    assert frozen.frozen_manually and frozen.frozen_by == 7 and frozen.healthy_streak == 0
    ready = m.State(m.FROZEN, 100, healthy_streak=2, frozen_manually=True, frozen_by=7)
    with pytest.raises(m.TransitionRefused, match="another admin"):
        m.approve_unfreeze(ready, "healthy", POLICY, 7, "ok", approver_must_differ=True)
    m.approve_unfreeze(ready, "healthy", POLICY, 8, "ok", approver_must_differ=True)
    m.approve_unfreeze(ready, "healthy", POLICY, 7, "ok", approver_must_differ=False)


def test_manual_freeze_refuses_a_frozen_asset_or_an_empty_reason():
    with pytest.raises(m.TransitionRefused, match="already frozen"):
        m.manual_freeze(FROZEN, 1, "x")
    with pytest.raises(m.TransitionRefused, match="Say why"):
        m.manual_freeze(ELIGIBLE, 1, " ")
