"""A task sent through the real broker runs in a separate worker process and writes the DB."""

import os

import pytest

from audits.models import Heartbeat
from audits.tasks import worker_heartbeat
from tests.celery_worker import wait_for


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_task_runs_in_a_separate_worker_process(celery_worker_process):
    assert not Heartbeat.objects.filter(component="celery-worker").exists()

    worker_heartbeat.delay()

    heartbeat = wait_for(lambda: Heartbeat.objects.filter(component="celery-worker").first())
    # The worker names itself after its own pid, not ours: the write came from another process.
    assert heartbeat.hostname.startswith(f"test-worker-{os.getpid()}@")
    assert celery_worker_process.proc.pid != os.getpid()
    assert "audits.tasks.worker_heartbeat" in celery_worker_process.log()
