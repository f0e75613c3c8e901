"""Users' balances against reserves through the real services and database: the newest
published snapshot's tree, its root sum in whole tokens, the undercollateralized status and
the freeze, the policy, recomputation, and the runs a published snapshot queues."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audits import liabilities, reconciliation
from audits.models import AssetPolicy, Eligibility, EligibilityEvent, LiabilitySnapshot
from tests.reconciliation.conftest import NOW
from tests.reconciliation.liability_seed import publish
from tests.reconciliation.test_service import make_eligible, run, state

from .seed import seed_assets

D = Decimal
UNIT = 10**18  # the test asset's token decimals


def test_liabilities_are_reported_next_to_reserves_and_supply(world):
    world.backed("1000")
    _, trees = publish({world.asset: 263 * UNIT + 5}, NOW - timedelta(hours=2))
    result, rec = run(world)
    assert result.status == "healthy"
    assert (rec.reserves, rec.supply) == (D(1000), D(1000))
    assert rec.liabilities == D("263.000000000000000005")  # exact: units / 10**18
    assert rec.coverage == D("3.80228136")
    assert rec.liabilities_tree == trees[world.asset.pk]
    assert "users' balances 263.000000000000000005 TSTx" in rec.reason
    assert reconciliation.recompute(rec.pk).matches


def test_the_root_sum_is_converted_with_the_asset_decimals(world):
    world.asset.decimals = 6
    world.asset.save()
    world.backed("1000")
    publish({world.asset: 999_999_999}, NOW - timedelta(hours=2))
    _, rec = run(world)
    assert rec.liabilities == D("999.999999") and rec.status == "healthy"


def test_liabilities_above_reserves_freeze_the_asset(world, admin_user):
    world.backed("1000")
    publish({world.asset: 900 * UNIT}, NOW - timedelta(hours=2))
    make_eligible(world, admin_user)
    assert state(world).state == "eligible"
    publish({world.asset: 1000 * UNIT + 1}, NOW - timedelta(hours=1))
    later = NOW + timedelta(minutes=5)
    result, rec = run(world, later)
    assert rec.status == "undercollateralized"
    assert rec.get_status_display() == "Liabilities exceed reserves"
    assert rec.liabilities == D("1000.000000000000000001") and rec.reserves == D(1000)
    assert rec.reason.startswith(
        "Users' balances exceed reserves: the platform's users hold 1000.000000000000000001 TSTx"
    )
    assert "reserves back only 1000 TSTx" in rec.reason
    row = state(world)
    assert (row.state, row.healthy_streak, row.since) == ("frozen", 0, later)
    event = EligibilityEvent.objects.get(seq=result.event_seq)
    assert (event.from_state, event.to_state, event.reconciliation) == ("eligible", "frozen", rec)
    assert event.reason == rec.reason
    assert reconciliation.recompute(rec.pk).matches


def test_the_newest_published_snapshot_counts(world):
    world.backed("1000")
    other = seed_assets(1, prefix="O")[0]
    _, old = publish({world.asset: 100 * UNIT, other: 7}, NOW - timedelta(hours=5))
    # Newer, but still being built or rejected: not counted.
    publish({world.asset: 5000 * UNIT}, NOW - timedelta(hours=1), status="checking")
    publish({world.asset: 5000 * UNIT}, NOW - timedelta(hours=1), status="rejected")
    # Newer and published, without the other asset: that one keeps its older tree.
    _, new = publish({world.asset: 200 * UNIT}, NOW - timedelta(hours=3))
    # Published later but as of an older instant: the as-of decides.
    publish({world.asset: 300 * UNIT}, NOW - timedelta(hours=4))
    found = liabilities.latest_trees([world.asset.pk, other.pk, 999_999])
    assert found == {world.asset.pk: new[world.asset.pk], other.pk: old[other.pk]}
    assert found[world.asset.pk].snapshot.as_of == NOW - timedelta(hours=3)
    _, rec = run(world)
    assert rec.liabilities == D(200)


def test_latest_trees_is_one_query(world, django_assert_num_queries):
    assets = seed_assets(4, prefix="Q")
    for hours in (5, 4, 3):
        publish({a: hours for a in assets}, NOW - timedelta(hours=hours))
    with django_assert_num_queries(1):
        found = liabilities.latest_trees([a.pk for a in assets])
        assert {t.snapshot.as_of for t in found.values()} == {NOW - timedelta(hours=3)}
    assert liabilities.latest_trees([]) == {}


def test_an_asset_without_a_snapshot_is_judged_as_before_unless_the_policy_requires_one(world):
    world.backed("1000")
    _, rec = run(world)
    assert (rec.status, rec.liabilities, rec.coverage, rec.liabilities_tree) == (
        "healthy", None, None, None,
    )  # fmt: skip
    AssetPolicy.objects.create(asset=world.asset, liabilities_required=True)
    world.asset.refresh_from_db()
    _, required = run(world, NOW + timedelta(minutes=1))
    assert required.status == "unknown"
    assert required.reason.startswith("Liabilities unknown")
    assert required.policy["liabilities_required"] is True
    assert state(world).state == "frozen"
    assert reconciliation.recompute(required.pk).matches
    publish({world.asset: 263 * UNIT}, NOW - timedelta(hours=1))
    _, covered = run(world, NOW + timedelta(minutes=2))
    assert covered.status == "healthy" and covered.liabilities == D(263)


def test_a_snapshot_older_than_the_policy_allows_is_stale(world):
    world.backed("1000")
    AssetPolicy.objects.create(asset=world.asset, max_liabilities_age=timedelta(hours=12))
    world.asset.refresh_from_db()
    snapshot, _ = publish({world.asset: 263 * UNIT}, NOW - timedelta(hours=13))
    _, rec = run(world)
    assert rec.status == "stale"
    assert f"liability snapshot #{snapshot.pk} as of" in rec.reason and "(limit 12 h)" in rec.reason
    assert rec.policy["max_liabilities_age_seconds"] == 12 * 3600
    assert reconciliation.recompute(rec.pk).matches


def test_the_same_snapshot_only_records_a_check_and_a_new_one_is_a_new_reconciliation(world):
    world.backed("1000")
    publish({world.asset: 263 * UNIT}, NOW - timedelta(hours=2))
    _, rec = run(world)
    again, same = run(world, NOW + timedelta(minutes=1))
    assert not again.created and same.pk == rec.pk and same.checks == 2
    # Same total, new snapshot: new evidence, a new reconciliation naming it.
    _, trees = publish({world.asset: 263 * UNIT}, NOW - timedelta(hours=1))
    third, newer = run(world, NOW + timedelta(minutes=2))
    assert third.created and newer.liabilities_tree == trees[world.asset.pk]


def test_recompute_finds_a_root_sum_that_changed_afterwards(world):
    world.backed("1000")
    _, trees = publish({world.asset: 263 * UNIT}, NOW - timedelta(hours=2))
    _, rec = run(world)
    trees[world.asset.pk].__class__.objects.filter(pk=trees[world.asset.pk].pk).update(
        root_sum=D(2000 * UNIT)
    )
    check = reconciliation.recompute(rec.pk)
    assert not check.matches
    assert "status: stored healthy, recomputed undercollateralized" in check.differences
    assert "liabilities: stored 263" in " ".join(check.differences)


def test_a_published_snapshot_queues_a_run_of_each_of_its_assets(
    world, django_capture_on_commit_callbacks
):
    other = seed_assets(1, prefix="P")[0]
    snapshot, _ = publish({world.asset: 1, other: 2}, NOW)
    with django_capture_on_commit_callbacks(execute=True):
        liabilities.on_snapshot_published(snapshot)
    queued = Eligibility.objects.filter(run_queued_at__isnull=False)
    assert set(queued.values_list("asset_id", flat=True)) == {world.asset.pk, other.pk}


@pytest.mark.django_db
def test_liabilities_cost_one_query_whatever_the_number_of_assets():
    now = timezone.now()  # seed_assets dates its evidence from the clock
    plain = [a.pk for a in seed_assets(3, prefix="N")]
    few = seed_assets(3, prefix="F")
    many = seed_assets(12, prefix="M")
    for assets in (few, many):
        publish({a: 500 * UNIT for a in assets}, now - timedelta(hours=1))
        publish({a: 400 * UNIT for a in assets}, now - timedelta(hours=2))

    def count(ids):
        with CaptureQueriesContext(connection) as queries:
            results = reconciliation.reconcile_assets(ids, now=now)
        return len(queries.captured_queries), results

    without, _ = count(plain)
    with_few, few_results = count([a.pk for a in few])
    with_many, many_results = count([a.pk for a in many])
    assert with_few == with_many <= without + 1
    assert {r.status for r in few_results + many_results} == {"healthy"}
    stored = reconciliation.Reconciliation.objects.filter(asset__in=many)
    assert set(stored.values_list("liabilities", flat=True)) == {D(500)}
    assert LiabilitySnapshot.objects.count() == 4
