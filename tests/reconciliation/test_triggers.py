"""New evidence queues one reconciliation per asset after commit, coalesced."""

from __future__ import annotations

from audits import reconciliation, triggers
from audits.models import Eligibility


def test_a_burst_of_evidence_queues_one_run_until_it_starts(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        world.backed()  # two statements, two supply readings
    row = Eligibility.objects.get(asset=world.asset)
    queued = row.run_queued_at
    assert queued is not None
    with django_capture_on_commit_callbacks(execute=True):
        world.supply(0, "501")
    assert Eligibility.objects.get(asset=world.asset).run_queued_at == queued  # coalesced
    reconciliation.reconcile_asset(world.asset.pk)
    assert Eligibility.objects.get(asset=world.asset).run_queued_at is None
    with django_capture_on_commit_callbacks(execute=True):
        world.supply(0, "502")
    assert Eligibility.objects.get(asset=world.asset).run_queued_at is not None


def test_nothing_is_queued_before_commit_or_for_an_asset_that_does_not_exist(world):
    triggers.request_runs([world.asset.pk, 999_999])  # on_commit never runs in this test
    assert not Eligibility.objects.filter(run_queued_at__isnull=False).exists()
    triggers._queue([999_999])
    assert not Eligibility.objects.filter(asset_id=999_999).exists()


def test_the_minute_schedule_clears_marks_left_by_lost_tasks(world):
    world.backed()
    triggers._queue([world.asset.pk])
    reconciliation.reconcile_all()
    assert Eligibility.objects.get(asset=world.asset).run_queued_at is None
