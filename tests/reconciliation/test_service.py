"""Reconciliation and eligibility through the real services and database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from audits import eligibility, reconciliation, webhooks
from audits.models import (
    AssetPolicy,
    Chain,
    Eligibility,
    EligibilityEvent,
    MarketClosure,
    MultiplierChange,
    Reconciliation,
    StatementLine,
    TokenDeployment,
    WebhookDelivery,
)
from audits.models.statements import ImmutableError
from tests.reconciliation.conftest import MONDAY_CLOSE, NOW

D = Decimal


def run(world, now=NOW):
    (result,) = reconciliation.reconcile_assets([world.asset.pk], now=now)
    return result, Reconciliation.objects.get(pk=result.reconciliation_id)


def state(world) -> Eligibility:
    return Eligibility.objects.get(asset=world.asset)


def test_healthy_reconciliation_records_its_evidence(world):
    world.backed("1000")
    result, rec = run(world)
    assert (rec.status, rec.reserves, rec.supply, rec.ratio, rec.shortfall_bps) == (
        "healthy", D(1000), D(1000), D(1), 0,
    )  # fmt: skip
    assert result.created
    assert sorted(link.settled for link in rec.statement_links.all()) == [D(500), D(500)]
    assert rec.reading_links.count() == 2
    assert rec.evidence_as_of == MONDAY_CLOSE
    assert reconciliation.recompute(rec.pk).matches


def test_an_unchanged_run_only_records_that_it_checked(world):
    world.backed()
    _, rec = run(world)
    second, again = run(world, NOW + timedelta(minutes=1))
    assert not second.created and again.pk == rec.pk
    assert (again.checks, again.checked_at, again.computed_at) == (
        2, NOW + timedelta(minutes=1), NOW,
    )  # fmt: skip
    assert Reconciliation.objects.count() == 1
    # The same figure read at a newer block is not a new input either.
    world.supply(0, "500", as_of=NOW + timedelta(minutes=2))
    third, _ = run(world, NOW + timedelta(minutes=2))
    assert not third.created and Reconciliation.objects.count() == 1


def test_new_asset_is_frozen_until_healthy_runs_and_an_approval(world, admin_user):
    world.backed()
    run(world)
    row = state(world)
    assert (row.state, row.healthy_streak) == ("frozen", 1)
    with pytest.raises(eligibility.TransitionRefused, match="Only 1 consecutive healthy"):
        eligibility.approve_unfreeze(world.asset.pk, admin_user, "looks fine")
    for minute in (1, 2):
        run(world, NOW + timedelta(minutes=minute))
    assert state(world).healthy_streak == 3
    with pytest.raises(eligibility.TransitionRefused, match="Say why"):
        eligibility.approve_unfreeze(world.asset.pk, admin_user, "  ")
    event = eligibility.approve_unfreeze(world.asset.pk, admin_user, "statements reviewed")
    row = state(world)
    assert (row.state, row.haircut_bps, event.event_type, event.actor) == (
        "eligible", 0, "eligibility.unfrozen", admin_user,
    )  # fmt: skip
    assert "statements reviewed" in event.reason


def make_eligible(world, admin):
    for minute in range(3):
        run(world, NOW + timedelta(minutes=minute))
    eligibility.approve_unfreeze(world.asset.pk, admin, "ok")


def test_breach_freezes_at_once_and_names_the_reconciliation(world, admin_user):
    world.backed()
    make_eligible(world, admin_user)
    world.supply(1, "600", as_of=NOW + timedelta(minutes=5))  # 100 tokens unbacked
    result, rec = run(world, NOW + timedelta(minutes=5))
    assert rec.status == "breach" and rec.shortfall_bps == 910  # 100/1100, rounded up
    row = state(world)
    assert (row.state, row.healthy_streak, row.since) == ("frozen", 0, NOW + timedelta(minutes=5))
    event = EligibilityEvent.objects.get(seq=result.event_seq)
    assert (event.from_state, event.to_state, event.reconciliation) == ("eligible", "frozen", rec)
    assert "Not fully backed" in event.reason and "short by 910 bps" in event.reason
    # Healthy again: it stays frozen until someone approves.
    world.supply(1, "500", as_of=NOW + timedelta(minutes=6))
    _, healed = run(world, NOW + timedelta(minutes=6))
    assert healed.status == "healthy" and state(world).state == "frozen"


def test_unknown_supply_freezes(world, admin_user):
    world.backed()
    make_eligible(world, admin_user)
    # A new deployment without any reading yet: the asset's supply is unknown.
    TokenDeployment.objects.create(
        asset=world.asset,
        chain=Chain.objects.create(chain_id=900003, name="Gamma chain"),
        address="0x" + "33" * 20,
        decimals=6,
    )
    _, rec = run(world, NOW + timedelta(minutes=5))
    assert rec.status == "unknown" and rec.supply is None
    assert "Gamma chain: missing (no reading yet)" in rec.reason
    assert reconciliation.recompute(rec.pk).matches
    assert state(world).state == "frozen"


def test_warning_raises_the_haircut_by_the_policy_step_and_healthy_restores_it(world, admin_user):
    AssetPolicy.objects.create(
        asset=world.asset, breach_bps=100, base_haircut_bps=500, warning_haircut_step_bps=250
    )
    world.backed()
    make_eligible(world, admin_user)
    assert state(world).haircut_bps == 500
    world.supply(1, "501", as_of=NOW + timedelta(minutes=5))  # 1 in 1001 short: 10 bps
    result, rec = run(world, NOW + timedelta(minutes=5))
    assert rec.status == "warning"
    row = state(world)
    assert (row.state, row.haircut_bps) == ("eligible", 750)
    event = EligibilityEvent.objects.get(seq=result.event_seq)
    assert (event.event_type, event.from_haircut_bps, event.to_haircut_bps) == (
        "eligibility.haircut_changed", 500, 750,
    )  # fmt: skip
    world.supply(1, "500", as_of=NOW + timedelta(minutes=6))
    run(world, NOW + timedelta(minutes=6))
    assert state(world).haircut_bps == 500


def test_manual_freeze_needs_another_admin_to_unfreeze(world, admin_user, settings):
    world.backed()
    make_eligible(world, admin_user)
    event = eligibility.manual_freeze(world.asset.pk, admin_user, "custodian under review")
    assert event.actor == admin_user and state(world).frozen_manually
    for minute in range(3, 6):
        run(world, NOW + timedelta(minutes=minute))
    with pytest.raises(eligibility.TransitionRefused, match="another admin"):
        eligibility.approve_unfreeze(world.asset.pk, admin_user, "done")
    other = get_user_model().objects.create_user("second", is_staff=True, is_superuser=True)
    assert eligibility.approve_unfreeze(world.asset.pk, other, "reviewed").to_state == "eligible"
    settings.UNFREEZE_APPROVER_MUST_DIFFER = False
    eligibility.manual_freeze(world.asset.pk, admin_user, "again")
    for minute in range(6, 9):
        run(world, NOW + timedelta(minutes=minute))
    eligibility.approve_unfreeze(world.asset.pk, admin_user, "self-approved, allowed")
    with pytest.raises(eligibility.TransitionRefused, match="not frozen"):
        eligibility.approve_unfreeze(world.asset.pk, admin_user, "twice")


def test_events_are_numbered_without_gaps_in_order(world, admin_user):
    world.backed()
    make_eligible(world, admin_user)
    eligibility.manual_freeze(world.asset.pk, admin_user, "one")
    assert list(EligibilityEvent.objects.values_list("seq", "event_type")) == [
        (1, "eligibility.unfrozen"),
        (2, "eligibility.frozen"),
    ]


def test_split_compares_like_with_like_before_and_after_activation(world):
    """2-for-1 split activated Tuesday 14:30 UTC: 1,000 tokens are backed by 1,000 shares
    before and 2,000 shares after. A statement dated before the activation that arrives
    after it is still read with the old multiplier."""
    activation = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
    MultiplierChange.objects.create(
        asset=world.asset, effective_at=activation, shares_per_token=D(2), note="2-for-1"
    )
    world.statement(0, "500")  # Monday close, before the split
    world.statement(1, "1000", as_of=activation + timedelta(minutes=10))  # after it
    world.supply(0, "500")
    world.supply(1, "500")
    _, rec = run(world)
    assert (rec.status, rec.reserves) == ("healthy", D(1000))
    multipliers = sorted(
        (link.statement.as_of, link.shares_per_token, link.tokens)
        for link in rec.statement_links.select_related("statement")
    )
    assert multipliers == [
        (MONDAY_CLOSE, D(1), D(500)),
        (activation + timedelta(minutes=10), D(2), D(500)),
    ]
    assert reconciliation.recompute(rec.pk).matches


def test_pending_deliveries_are_deducted_by_default(world):
    world.statement(0, "500", pending="50")
    world.statement(1, "500")
    world.supply(0, "500")
    world.supply(1, "500")
    _, rec = run(world)
    assert (rec.status, rec.reserves) == ("breach", D(950))
    AssetPolicy.objects.create(asset=world.asset, deduct_pending_deliveries=False)
    _, lenient = run(world)
    assert (lenient.status, lenient.reserves) == ("healthy", D(1000))


@pytest.mark.parametrize(
    ("as_of", "now", "status"),
    [
        # A Friday-close statement is fresh on Monday morning...
        (datetime(2026, 11, 20, 21, tzinfo=UTC), datetime(2026, 11, 23, 13, tzinfo=UTC), "healthy"),
        # ...and after Monday's close (1 session, the limit)...
        (datetime(2026, 11, 20, 21, tzinfo=UTC), datetime(2026, 11, 23, 22, tzinfo=UTC), "healthy"),
        # ...but not once Tuesday has closed without a newer one.
        (datetime(2026, 11, 20, 21, tzinfo=UTC), datetime(2026, 11, 24, 22, tzinfo=UTC), "stale"),
        # Monday's statement, Tuesday's missing: fresh on Wednesday morning, stale at its close.
        (MONDAY_CLOSE, datetime(2026, 11, 25, 15, tzinfo=UTC), "healthy"),
        (MONDAY_CLOSE, datetime(2026, 11, 25, 21, 1, tzinfo=UTC), "stale"),
        # Wednesday before Thanksgiving: fresh through Thursday (closed) and Friday's early close.
        (datetime(2026, 11, 25, 21, tzinfo=UTC), datetime(2026, 11, 26, 22, tzinfo=UTC), "healthy"),
        (datetime(2026, 11, 25, 21, tzinfo=UTC), datetime(2026, 11, 28, 12, tzinfo=UTC), "healthy"),
    ],
)
def test_statement_age_counts_exchange_sessions(world, as_of, now, status):
    world.statement(0, "500", as_of=as_of)
    world.statement(1, "500", as_of=as_of)
    world.supply(0, "500", as_of=now)
    world.supply(1, "500", as_of=now)
    _, rec = run(world, now)
    assert rec.status == status, rec.reason


def test_an_admin_entered_closure_does_not_make_evidence_stale(world, admin_user):
    """Tuesday 17 Nov 2026 as an unscheduled closure: Monday's statement stays fresh on
    Wednesday evening, which without the closure would be two sessions later."""
    monday = datetime(2026, 11, 16, 21, tzinfo=UTC)
    wednesday_evening = datetime(2026, 11, 18, 22, tzinfo=UTC)
    world.statement(0, "500", as_of=monday)
    world.statement(1, "500", as_of=monday)
    world.supply(0, "500", as_of=wednesday_evening)
    world.supply(1, "500", as_of=wednesday_evening)
    _, before = run(world, wednesday_evening)
    assert before.status == "stale" and "2 sessions old" in before.reason
    MarketClosure.objects.create(mic="XNYS", date=datetime(2026, 11, 17).date(), reason="storm")
    _, after = run(world, wednesday_evening)
    assert after.status == "healthy"


def test_reconciliations_are_immutable(world):
    world.backed()
    _, rec = run(world)
    with pytest.raises(ImmutableError):
        rec.save()
    with pytest.raises(ImmutableError):
        rec.delete()


def test_recompute_finds_evidence_that_changed_afterwards(world):
    world.backed()
    _, rec = run(world)
    StatementLine.objects.filter(statement__custodian=world.custodians[0]).update(quantity=D("400"))
    check = reconciliation.recompute(rec.pk)
    assert not check.matches
    assert any(d.startswith("reserves: stored 1000") for d in check.differences)
    assert any(d.startswith("status: stored healthy, recomputed breach") for d in check.differences)


def test_each_transition_is_queued_for_subscribers_in_the_same_transaction(world, admin_user):
    endpoint, _secret = webhooks.create_endpoint(
        "http://127.0.0.1:9/hook", event_types=["eligibility.frozen"]
    )
    world.backed()
    make_eligible(world, admin_user)  # an unfrozen event: not subscribed
    assert not WebhookDelivery.objects.exists()
    world.supply(1, "600", as_of=NOW + timedelta(minutes=5))
    result, _ = run(world, NOW + timedelta(minutes=5))
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    event = EligibilityEvent.objects.get(seq=result.event_seq)
    assert delivery.msg_id == event.webhook_id and delivery.event_type == "eligibility.frozen"
    body = json.loads(delivery.body)
    assert body["data"]["asset"] == "TSTx" and body["data"]["eligible"] is False
    assert body["data"]["event_id"] == event.seq


def test_a_frozen_asset_says_why_it_is_still_frozen(world, admin_user):
    """Found by the feed's tests: a new asset whose first run found a breach kept the reason
    'no reconciliation yet'."""
    world.statement(0, "400")
    world.statement(1, "500")
    world.supply(0, "500")
    world.supply(1, "500")
    run(world)
    row = state(world)
    assert row.state == "frozen" and row.reason.startswith("Not fully backed")
    world.statement(0, "500", as_of=MONDAY_CLOSE + timedelta(minutes=1))
    run(world, NOW + timedelta(minutes=1))
    assert state(world).reason.startswith(
        "Frozen until an admin approves the unfreeze, possible after 3 healthy runs in a row."
    )
