"""Users' balances against reserves, without a database: the undercollateralized status, its
place in the precedence, the liabilities policy, coverage rounding and the digest."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audits.core import eligibility as machine
from audits.core import reconciliation as core
from audits.core.reconciliation import LiabilityEvidence, Policy

from .test_core import NOW, stmt, sup

D = Decimal


def owed(tokens="263", snapshot=5, age=timedelta(hours=3), root="ab" * 32, tree="cd" * 32):
    return LiabilityEvidence(
        snapshot_id=snapshot,
        as_of=NOW - age,
        root_sum=D(tokens),
        root_hash=root,
        tree_sha256=tree,
    )


def judge(liabilities=None, policy=None, statements=None, supplies=None, now=NOW):
    return core.reconcile(
        "AAPLx",
        [stmt()] if statements is None else statements,
        [sup()] if supplies is None else supplies,
        policy or Policy(),
        now,
        liabilities,
    )


def test_liabilities_within_reserves_are_reported_next_to_them():
    outcome = judge(owed("263"))
    assert outcome.status == "healthy"
    assert (outcome.reserves, outcome.supply, outcome.liabilities) == (D(1000), D(1000), D(263))
    assert outcome.coverage == D("3.80228136")  # 1000 / 263 = 3.802281368..., rounded down
    assert "users' balances 263 AAPLx" in outcome.reason


def test_liabilities_equal_to_reserves_are_covered():
    outcome = judge(owed("1000"))
    assert (outcome.status, outcome.coverage) == ("healthy", D(1))


def test_liabilities_above_reserves_are_undercollateralized_with_both_figures():
    outcome = judge(owed("1000.000000000000000001", snapshot=9))
    assert outcome.status == core.UNDERCOLLATERALIZED == "undercollateralized"
    assert outcome.reason == (
        "Users' balances exceed reserves: the platform's users hold 1000.000000000000000001 "
        "AAPLx (liability snapshot #9 as of 2026-11-24 12:00 UTC) but reserves back only "
        "1000 AAPLx, short by 0.000000000000000001 AAPLx."
    )
    # Rounded against the asset: just under 1, never 1.
    assert outcome.coverage == D("0.99999999")
    assert outcome.liabilities == D("1000.000000000000000001")


def test_coverage_rounds_down_and_is_none_without_liabilities_or_reserves():
    assert core.coverage(D(1), D(3)) == D("0.33333333")
    assert core.coverage(D(2), D(3)) == D("0.66666666")
    assert core.coverage(D(1), D(0)) is None
    assert core.coverage(None, D(3)) is None
    assert core.coverage(D(1), None) is None


def test_breach_ranks_before_undercollateralized_and_names_the_liabilities():
    outcome = judge(owed("2000"), supplies=[sup("1100")])
    assert outcome.status == "breach"
    assert "users' balances 2000 AAPLx" in outcome.reason
    assert outcome.liabilities == D(2000) and outcome.coverage == D("0.5")


def test_undercollateralized_beats_stale_evidence():
    old = [stmt(sessions=5)]
    assert judge(owed("263"), statements=old).status == "stale"
    assert judge(owed("1001"), statements=old).status == "undercollateralized"
    assert judge(owed("1001", age=timedelta(days=30))).status == "undercollateralized"


def test_unknown_supply_or_reserves_beat_undercollateralized():
    outcome = judge(owed("5000"), supplies=[sup(None)])
    assert outcome.status == "unknown" and outcome.liabilities == D(5000)
    assert outcome.coverage == D("0.2")  # reserves are known even when supply is not
    assert judge(owed("5000"), statements=[]).status == "unknown"


def test_a_required_snapshot_that_is_missing_is_unknown():
    required = Policy(liabilities_required=True)
    outcome = judge(None, policy=required)
    assert outcome.status == "unknown"
    assert outcome.reason.startswith("Liabilities unknown: no published liability snapshot")
    assert (outcome.reserves, outcome.supply, outcome.liabilities) == (D(1000), D(1000), None)
    assert judge(owed(), policy=required).status == "healthy"
    # Not required (the default): judged on reserves and supply alone, as before.
    plain = judge(None)
    assert (plain.status, plain.liabilities, plain.coverage) == ("healthy", None, None)
    assert "users' balances" not in plain.reason


@pytest.mark.parametrize(
    ("age", "limit", "status"),
    [
        (timedelta(days=2), 2 * 86_400, "healthy"),
        (timedelta(days=2, seconds=1), 2 * 86_400, "stale"),
        (timedelta(hours=7), 6 * 3_600, "stale"),
    ],
)
def test_a_snapshot_older_than_the_policy_allows_is_stale(age, limit, status):
    outcome = judge(owed(age=age, snapshot=4), policy=Policy(max_liabilities_age_seconds=limit))
    assert outcome.status == status
    if status == "stale":
        assert "liability snapshot #4 as of" in outcome.reason
        assert f"(limit {limit // 86_400} d)" in outcome.reason or "(limit 6 h)" in outcome.reason


def test_undercollateralized_freezes_like_a_breach():
    assert core.UNDERCOLLATERALIZED in machine.FREEZING
    assert core.UNDERCOLLATERALIZED in core.STATUSES
    eligible = machine.State(machine.ELIGIBLE, 0, healthy_streak=4)
    after, transition = machine.after_reconciliation(
        eligible, core.UNDERCOLLATERALIZED, "Users' balances exceed reserves", Policy()
    )
    assert (after.state, after.healthy_streak) == (machine.FROZEN, 0)
    assert transition is not None and transition.event_type == machine.FROZEN_EVENT


def _digest(liabilities, policy=None):
    policy = policy or Policy()
    statements, supplies = [stmt()], [sup()]
    outcome = core.reconcile("AAPLx", statements, supplies, policy, NOW, liabilities)
    return core.digest(7, policy, statements, supplies, outcome, liabilities)


def test_the_digest_covers_the_liabilities_input():
    base = owed()
    digests = {
        _digest(None),
        _digest(base),
        _digest(replace(base, snapshot_id=6)),
        _digest(replace(base, root_hash="ef" * 32)),
        _digest(replace(base, root_sum=D("263.000000000000000001"))),
        _digest(replace(base, tree_sha256="01" * 32)),
        _digest(None, Policy(liabilities_required=True)),
        _digest(None, Policy(max_liabilities_age_seconds=3_600)),
    }
    assert len(digests) == 8
    assert _digest(base) == _digest(owed())


def test_without_liabilities_the_digest_is_the_one_from_before_liabilities_existed():
    # Computed by the code before liability snapshots: an upgrade adds no row per stable
    # asset (the digest matches, so the run only records that it checked).
    assert _digest(None) == "d4e305b8ab91853c659819076fad350b820bee74ba901e425929ed6124cfc04e"


amounts = st.decimals(
    min_value=D("0.000000000000000001"), max_value=D(10) ** 30, places=18, allow_nan=False
)


@given(amounts, amounts)
def test_coverage_never_flatters(reserves, liabilities):
    ratio = core.coverage(reserves, liabilities)
    assert ratio is not None
    with core.exact_context():
        assert ratio * liabilities <= reserves
        assert (ratio + D("0.00000001")) * liabilities > reserves
    # Undercollateralized exactly when the users hold more than the reserves back.
    outcome = judge(owed(str(liabilities)), statements=[stmt(str(reserves))], supplies=[sup("0")])
    assert (outcome.status == "undercollateralized") == (liabilities > reserves)
