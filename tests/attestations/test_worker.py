"""End to end with a real Celery worker: a reconciliation that changed something queues the
attestation task after commit, and the worker signs the next attestation."""

from __future__ import annotations

import re

import pytest

from audits import attestation_keys
from audits.models import Attestation, Reconciliation
from tests.celery_worker import WorkerProcess, wait_for

from .conftest import World, reconcile, verify_both


@pytest.fixture(scope="module")
def signing_key_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "attestation.pem"
    attestation_keys.write_key(path)
    return path


@pytest.fixture
def attesting_worker(transactional_db, tmp_path, signing_key_path, monkeypatch):
    """A worker of its own, started with the key in its environment as an operator would.
    Stopped before the test database is flushed: a worker still reconciling would hold locks
    the flush needs."""
    monkeypatch.setenv(attestation_keys.ENV_VAR, str(signing_key_path))
    worker = WorkerProcess(tmp_path / "worker.log")
    yield worker
    # Let it finish what the test queued (nothing is left for another module's worker).
    wait_for(lambda: _idle(worker.log()), timeout=30)
    worker.stop()


def _idle(log: str) -> bool:
    done = len(re.findall(r"Task \S+ (?:succeeded|raised|failed)", log))
    return len(re.findall(r"Task \S+ received", log)) == done


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_changed_reconciliation_is_attested_by_the_worker(
    attesting_worker, admin_user, signing_key_path, settings
):
    settings.ATTESTATION_KEYS = [str(signing_key_path)]
    world = World(admin_user)
    world.backed()
    # (The accepted statements queue reconciliations of their own, which the worker runs too.)
    reconcile(world)
    assert Reconciliation.objects.exists()
    attestation = wait_for(lambda: Attestation.objects.filter(sequence=1).first(), timeout=30)
    assert attestation.sequence == 1 and attestation.reason == "changed"
    verify_both(attestation, attestation_keys.jwks(), signing_key_path)
    assert "audits.tasks.issue_attestation" in attesting_worker.log()
