"""The reconciliation arithmetic without a database: thresholds, precedence, multipliers,
conservative rounding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from audits.core import reconciliation as core
from audits.core.reconciliation import Policy, StatementEvidence, SupplyEvidence

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
D = Decimal


def stmt(settled="1000", pending="0", spt="1", sessions=0, sid=1, as_of=None, custodian="Alpha"):
    return StatementEvidence(
        statement_id=sid,
        custodian=custodian,
        as_of=as_of or NOW - timedelta(hours=20),
        settled=D(settled),
        pending_delivery=D(pending),
        shares_per_token=D(spt),
        sessions_old=sessions,
    )


def sup(circulating="1000", deployment=1, chain="Ethereum", age=timedelta(minutes=1)):
    return SupplyEvidence(
        deployment_id=deployment,
        chain=chain,
        reading_id=deployment * 10,
        circulating=None if circulating is None else D(circulating),
        confirmed_at=NOW - age,
        problem="" if circulating is not None else "failed (execution reverted)",
    )


DEFAULT = Policy()


def run(statements, supplies, policy=DEFAULT):
    return core.reconcile("AAPLx", statements, supplies, policy, NOW)


def test_fully_backed_is_healthy_with_exact_figures():
    out = run([stmt("600", sid=1), stmt("400.5", sid=2)], [sup("700"), sup("300.5", 2)])
    assert out.status == core.HEALTHY
    assert (out.reserves, out.supply, out.ratio, out.shortfall_bps) == (
        D("1000.5"), D("1000.5"), D("1"), 0,
    )  # fmt: skip
    assert "Fully backed" in out.reason and "1000.5 AAPLx" in out.reason


def test_thresholds_are_inclusive_and_rounded_against_the_asset():
    policy = Policy(warning_bps=1, breach_bps=50)
    # 1 token short of 1,000,000: 0.01 bp, rounded up to 1 bp: a warning, not healthy.
    assert run([stmt("999999")], [sup("1000000")], policy).status == core.WARNING
    assert run([stmt("999999")], [sup("1000000")], policy).shortfall_bps == 1
    # exactly 50 bps short: breach at 50.
    out = run([stmt("995")], [sup("1000")], policy)
    assert (out.status, out.shortfall_bps) == (core.BREACH, 50)
    # 49.9 bps rounds up to 50: still a breach (never rounded in the asset's favour).
    assert run([stmt("995.01")], [sup("1000")], policy).status == core.BREACH
    assert run([stmt("995.1")], [sup("1000")], policy).status == core.WARNING


def test_over_backed_is_healthy_and_ratio_rounds_down():
    out = run([stmt("2000")], [sup("3")])
    assert out.status == core.HEALTHY
    assert out.ratio == D("666.66666666")  # 666.666…: rounded down
    assert out.shortfall_bps == 0


def test_pending_deliveries_are_deducted_unless_the_policy_says_otherwise():
    statements, supplies = [stmt("1000", pending="10")], [sup("1000")]
    assert run(statements, supplies).status == core.BREACH  # 100 bps short
    lenient = Policy(deduct_pending_deliveries=False)
    assert run(statements, supplies, lenient).status == core.HEALTHY


def test_multiplier_converts_shares_to_tokens_and_rounds_down():
    # 2 shares back each token after a 2-for-1 split: 200 shares back 100 tokens.
    assert run([stmt("200", spt="2")], [sup("100")]).status == core.HEALTHY
    out = run([stmt("100", spt="3")], [sup("33.333333333333333333333333333333333333")])
    assert out.reserves == D("33.333333333333333333333333333333333333")
    assert out.status == core.HEALTHY


def test_multiplier_at_picks_the_change_in_force():
    split = datetime(2026, 6, 10, 13, 30, tzinfo=UTC)
    changes = [(split, D(2)), (split + timedelta(days=30), D(4))]
    assert core.multiplier_at(D(1), changes, split - timedelta(seconds=1)) == 1
    assert core.multiplier_at(D(1), changes, split) == 2
    assert core.multiplier_at(D(1), list(reversed(changes)), split + timedelta(days=31)) == 4


def test_unknown_supply_wins_over_everything():
    out = run([stmt("0")], [sup("1000"), sup(None, 2, "Base")])
    assert out.status == core.UNKNOWN
    assert out.supply is None and out.ratio is None
    assert "Base: failed (execution reverted)" in out.reason
    assert run([stmt()], []).status == core.UNKNOWN  # no deployment at all


def test_no_statement_is_unknown_not_zero_reserves():
    out = run([], [sup("1000")])
    assert out.status == core.UNKNOWN and out.reserves is None
    assert "no custodian" in out.reason


def test_breach_beats_stale_and_stale_beats_warning():
    old = stmt("900", sessions=3)
    assert run([old], [sup("1000")]).status == core.BREACH
    slightly = stmt("999.99", sessions=3)
    out = run([slightly], [sup("1000")])
    assert out.status == core.STALE
    assert "3 sessions old (limit 1)" in out.reason


def test_supply_older_than_the_policy_is_stale():
    out = run([stmt()], [sup(age=timedelta(minutes=11))])
    assert out.status == core.STALE and "Ethereum supply last confirmed" in out.reason
    assert run([stmt()], [sup(age=timedelta(minutes=10))]).status == core.HEALTHY


def test_statement_that_cannot_be_dated_is_stale():
    assert run([stmt(sessions=None)], [sup()]).status == core.STALE


def test_nothing_circulating_is_healthy_without_a_ratio():
    out = run([stmt("0")], [sup("0")])
    assert (out.status, out.ratio, out.shortfall_bps) == (core.HEALTHY, None, 0)


def test_digest_ignores_which_block_carried_an_unchanged_figure():
    a = run([stmt()], [sup()])
    moved = SupplyEvidence(1, "Ethereum", 99, D("1000"), NOW, "")
    policy = Policy()
    first = core.digest(7, policy, [stmt()], [sup()], a)
    assert first == core.digest(7, policy, [stmt()], [moved], a)
    assert first != core.digest(7, policy, [stmt(sid=2)], [sup()], a)
    assert first != core.digest(7, Policy(breach_bps=11), [stmt()], [sup()], a)
    assert first != core.digest(8, policy, [stmt()], [sup()], a)


amounts = st.decimals(min_value=0, max_value=D("1e30"), places=18, allow_nan=False)


@given(reserves=amounts, supply=amounts.filter(lambda d: d > 0))
def test_backing_never_flatters(reserves, supply):
    ratio, shortfall = core.backing(reserves, supply)
    assert ratio is not None
    with core.exact_context():
        assert ratio * supply <= reserves  # rounded down
        assert reserves < supply * (ratio + D("1e-8"))
        if reserves >= supply:
            assert shortfall == 0
        else:
            exact = (supply - reserves) * 10_000 / supply
            assert shortfall >= exact > shortfall - 1  # rounded up


@given(
    shares=st.decimals(min_value=0, max_value=D("1e20"), places=18, allow_nan=False),
    spt=st.decimals(min_value=D("1e-18"), max_value=D("1e6"), places=18, allow_nan=False),
)
def test_tokens_round_down_by_less_than_one_unit(shares, spt):
    tokens = core.statement_tokens(stmt(str(shares), spt=str(spt)), Policy())
    with core.exact_context():
        assert tokens * spt <= shares
        assert shares < (tokens + D("1e-36")) * spt


def test_issuer_reported_supply_has_its_own_age_limit():
    manual = SupplyEvidence(1, "Private chain", 10, D("1000"), NOW - timedelta(days=2), "", True)
    assert run([stmt()], [manual]).status == core.HEALTHY
    old = SupplyEvidence(1, "Private chain", 10, D("1000"), NOW - timedelta(days=8), "", True)
    out = run([stmt()], [old])
    assert out.status == core.STALE
    assert "Private chain issuer-reported supply last confirmed" in out.reason
    assert "(limit 7 d)" in out.reason
    strict = Policy(max_manual_supply_age_seconds=3_600)
    assert run([stmt()], [manual], strict).status == core.STALE
