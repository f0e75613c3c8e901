"""When an attestation is due: at once on a status or eligibility change, coalesced when only
figures changed, a heartbeat when nothing did."""

from __future__ import annotations

from datetime import timedelta

from audits import attestations, eligibility
from audits.models import Attestation

from .conftest import NOW, reconcile

MINUTE = timedelta(minutes=1)


def test_nothing_attested_yet_is_due_at_once(world, key_file):
    world.backed()
    reconcile(world)
    assert attestations.should_issue(NOW) == "changed"


def test_nothing_changed_is_due_only_as_a_heartbeat(world, key_file, settings):
    settings.ATTESTATION_HEARTBEAT = timedelta(hours=24)
    world.backed()
    reconcile(world)
    attestations.issue("changed", NOW)
    # Re-checks of unchanged evidence change nothing attested.
    reconcile(world, NOW + MINUTE)
    assert attestations.should_issue(NOW + 2 * MINUTE) is None
    assert attestations.should_issue(NOW + timedelta(hours=23, minutes=59)) is None
    assert attestations.should_issue(NOW + timedelta(hours=24)) == "heartbeat"


def test_changed_figures_are_coalesced(world, key_file, settings):
    settings.ATTESTATION_MIN_INTERVAL = timedelta(minutes=5)
    world.backed()
    reconcile(world)
    attestations.issue("changed", NOW)
    # More reserves: still healthy, but the figures differ.
    world.statement(0, "600")
    reconcile(world, NOW + MINUTE)
    assert attestations.should_issue(NOW + 2 * MINUTE) is None
    assert attestations.should_issue(NOW + 5 * MINUTE) == "periodic"
    attestation = attestations.issue_if_due(NOW + 5 * MINUTE)
    assert attestation is not None and attestation.reason == "periodic"
    assert attestations.statement_of(attestation)["predicate"]["assets"][0]["reserves"] == "1100"
    assert attestations.should_issue(NOW + 11 * MINUTE) is None


def test_a_status_change_is_due_at_once(world, key_file):
    world.backed()
    reconcile(world)
    attestations.issue("changed", NOW)
    world.supply(0, "600", as_of=NOW + MINUTE)  # 1100 tokens against 1000 of reserves
    reconcile(world, NOW + MINUTE)
    assert attestations.should_issue(NOW + MINUTE) == "changed"
    attestation = attestations.issue_if_due(NOW + MINUTE)
    assert attestations.statement_of(attestation)["predicate"]["assets"][0]["status"] == "breach"


def test_an_eligibility_change_is_due_at_once(world, key_file, admin_user):
    world.backed()
    for n in range(3):
        reconcile(world, NOW + n * MINUTE)
    attestations.issue("changed", NOW + 3 * MINUTE)
    eligibility.approve_unfreeze(world.asset.pk, admin_user, "three healthy runs")
    assert attestations.should_issue(NOW + 4 * MINUTE) == "changed"
    attestation = attestations.issue_if_due(NOW + 4 * MINUTE)
    asset = attestations.statement_of(attestation)["predicate"]["assets"][0]
    assert (asset["state"], asset["eligible"]) == ("eligible", True)
    assert Attestation.objects.count() == 2
