"""Snapshots built by a real Celery worker process; a worker killed mid-build (SIGKILL)
leaves nothing published, and the sweep has the snapshot built by the next worker."""

from __future__ import annotations

import os
import signal
from datetime import timedelta

import pytest
from celery import current_app
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from audits import liabilities
from audits.models import LiabilitySnapshot, LiabilityTree
from tests.celery_worker import WorkerProcess, wait_for
from tests.liabilities.conftest import GOOD

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def liability_storage(settings, tmp_path, monkeypatch):
    """The test process and its workers share one var directory, so one storage."""
    var = tmp_path / "var"
    monkeypatch.setenv("PORAPP_VAR_DIR", str(var))  # read by the workers' settings
    settings.VAR_DIR = var
    settings.STORAGES = {
        **settings.STORAGES,
        "liabilities": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(var / "liabilities")},
        },
    }
    settings.LIABILITY_CACHE_DIR = var / "tree-cache"
    return tmp_path


@pytest.fixture
def start_worker(django_db_blocker, tmp_path):
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        with django_db_blocker.unblock():
            worker = WorkerProcess(tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.stop()
        else:
            worker._log.close()


def _state(pk: int):
    return LiabilitySnapshot.objects.values_list("status", "phase", "progress").get(pk=pk)


def test_uploaded_snapshot_is_built_by_the_worker(operator_api, start_worker):
    worker = start_worker()
    response = operator_api.post(
        "/api/v1/snapshots/",
        {"file": SimpleUploadedFile("b.csv", GOOD), "as_of": "2026-11-24T21:00:00Z"},
        format="multipart",
    )
    assert response.status_code == 202
    location = response["Location"]
    body = wait_for(
        lambda: (b := operator_api.get(location).json())["status"] == "published" and b,
        timeout=30,
    )
    assert body["progress"] == 100 and len(body["trees"]) == 2
    assert "audits.tasks.build_liability_snapshot" in worker.log()


def test_worker_killed_mid_build_publishes_nothing_then_sweep_rebuilds(
    operator, operator_api, start_worker
):
    # Enough rows that the build lasts about a second: the kill must land before publishing.
    rows = 1_000_000
    raw = b"account_id,asset,balance\n" + b"".join(
        b"user-%07d,%s,%d.5\n" % (i, b"AAPLx" if i % 3 else b"MSFTx", i) for i in range(rows)
    )
    first = start_worker()
    snapshot, _ = liabilities.receive(user=operator, chunks=[raw], as_of=timezone.now())
    # Mid-check: the worker has claimed it, and its progress shows in the API.
    url = f"/api/v1/snapshots/{snapshot.pk}/"
    seen = wait_for(
        lambda: (
            (b := operator_api.get(url).json())["status"] == "checking" and b["progress"] > 0 and b
        )
    )
    # With the compiled splitter the check is over in a blink: the kill may land while the
    # rows are checked or while a tree is built; either way mid-build.
    assert seen["phase"] == "checking" or seen["phase"].startswith("building "), seen
    assert 0 < seen["progress"] < 100
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(timeout=10)
    spool = liabilities.liability_files.spool_dir()
    assert list(spool.glob(f"snapshot-{snapshot.pk}-1-*"))  # left behind by the kill
    status, phase, progress = _state(snapshot.pk)
    assert status == "checking", (phase, progress)  # claimed, never published
    assert not LiabilityTree.objects.filter(snapshot=snapshot).exists()

    # While the dead worker's claim lasts, nothing takes it; once it runs out, the sweep
    # queues the snapshot again and the next worker builds it, once.
    assert liabilities.sweep() == {"requeued": [], "failed": []}
    second = start_worker()
    snapshot.refresh_from_db()
    later = snapshot.claimed_until + timedelta(seconds=1)
    assert liabilities.sweep(later) == {"requeued": [snapshot.pk], "failed": []}
    wait_for(lambda: _state(snapshot.pk)[0] == "published", timeout=120)
    snapshot.refresh_from_db()
    assert snapshot.attempts == 2 and snapshot.row_count == rows
    trees = LiabilityTree.objects.filter(snapshot=snapshot)
    assert sorted(trees.values_list("asset__code", "account_count")) == [
        ("AAPLx", rows - rows // 3 - 1), ("MSFTx", rows // 3 + 1),
    ]  # fmt: skip
    assert "audits.tasks.build_liability_snapshot" in second.log()
    # The dead worker's scratch files were removed by the attempt that followed, and that
    # attempt's own once it was done (just after publishing).
    wait_for(lambda: list(spool.iterdir()) == [], timeout=10)


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="worker processes racing on one row need PostgreSQL (SQLite serialises writers)",
)
def test_two_workers_given_the_task_many_times_build_once(operator, start_worker):
    snapshot, _ = liabilities.receive(user=operator, chunks=[GOOD], as_of=timezone.now())
    workers = [start_worker(), start_worker()]
    for _ in range(6):
        current_app.send_task(liabilities.BUILD_TASK, args=[snapshot.pk])
    wait_for(
        lambda: sum(w.log().count("build_liability_snapshot") for w in workers) >= 2 * 7,
        timeout=60,
    )  # every task received and finished (two log lines each)
    snapshot.refresh_from_db()
    assert snapshot.status == "published" and snapshot.attempts == 1
    assert LiabilityTree.objects.filter(snapshot=snapshot).count() == 2
