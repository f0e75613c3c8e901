"""Shared fixtures: named users for permission tests, API clients and a real Celery worker."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from audits.demo import load_demo_data
from audits.models import Custodian, CustodianUser

pytest_plugins = ["tests.webpage"]


@pytest.fixture
def liability_storage(settings, tmp_path):
    """Liability uploads, tree files and their read cache in the test's own directory
    (setting STORAGES resets Django's storages)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "liabilities": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "liabilities")},
        },
    }
    settings.LIABILITY_CACHE_DIR = tmp_path / "tree-cache"
    return tmp_path


@pytest.fixture(autouse=True)
def _forget_published_snapshots():
    """The proof service remembers published snapshots by id for the life of a process; a
    test's rolled-back database gives the next test the same ids for other snapshots."""
    from audits import liability_proofs

    liability_proofs.forget()


@pytest.fixture
def demo(db):
    """The demo reference data set."""
    load_demo_data()


@pytest.fixture
def custodian_a(demo) -> Custodian:
    return Custodian.objects.get(lei="5493001KJTIIGC8Y1R12")


@pytest.fixture
def custodian_b(demo) -> Custodian:
    return Custodian.objects.get(lei="2138009Y59EAR7H1UO97")


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_user(
        "admin", "admin@example.com", "pw", is_staff=True, is_superuser=True
    )


def _custodian_user(django_user_model, username: str, custodian: Custodian):
    user = django_user_model.objects.create_user(username, f"{username}@example.com", "pw")
    CustodianUser.objects.create(user=user, custodian=custodian)
    return user


@pytest.fixture
def owner(django_user_model, custodian_a):
    """A custodian user of custodian A."""
    return _custodian_user(django_user_model, "owner", custodian_a)


@pytest.fixture
def teammate(django_user_model, custodian_a):
    """A second user of custodian A."""
    return _custodian_user(django_user_model, "teammate", custodian_a)


@pytest.fixture
def outsider(django_user_model, custodian_b):
    """A custodian user of custodian B, who must never see A's data."""
    return _custodian_user(django_user_model, "outsider", custodian_b)


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def admin_api(admin_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


# Per module, not per session: a worker left running would take the tasks other modules'
# tests send to the same queue (a webhook they deliver by hand, a run they mean to kill).
@pytest.fixture(scope="module")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real `celery worker` process on the configured broker and the test database."""
    from tests.celery_worker import WorkerProcess

    with django_db_blocker.unblock():
        worker = WorkerProcess(tmp_path_factory.mktemp("celery") / "worker.log")
    yield worker
    worker.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    """Before a test's database is flushed, let a worker it used finish what it is running.

    New evidence queues reconciliations after commit, so a worker may still be reconciling
    when the test ends; TRUNCATE racing that transaction can deadlock (PostgreSQL) and leave
    the next tests a database that was never flushed.
    """
    if "celery_worker_process" not in getattr(item, "fixturenames", ()):
        return
    from django.db import connection

    from tests.celery_worker import wait_for

    blocker = item._request.getfixturevalue("django_db_blocker")
    with blocker.unblock():
        if connection.vendor != "postgresql":
            return

        def busy() -> int:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
                )
                return cursor.fetchone()[0]

        quiet = 0

        def settled() -> bool:
            nonlocal quiet
            quiet = quiet + 1 if busy() == 0 else 0
            return quiet >= 3  # quiet for three looks in a row (a task may be about to start)

        wait_for(settled, timeout=30)
