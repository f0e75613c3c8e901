import pytest

from audits.demo import load_demo_data
from audits.models import Asset, Chain, Custodian, TokenDeployment

pytestmark = pytest.mark.django_db


def test_demo_data_is_valid_and_idempotent():
    load_demo_data()
    load_demo_data()
    assert Asset.objects.count() == 4
    assert {a.kind for a in Asset.objects.all()} == {"stock", "etf"}
    assert Custodian.objects.count() == 2
    assert Chain.objects.count() == 2
    assert TokenDeployment.objects.count() == 8
    for model in (Asset, Custodian, Chain, TokenDeployment):
        for obj in model.objects.all():
            obj.full_clean()


def test_load_demo_command_prints_credentials(tmp_path, settings, capsys):
    from django.core.management import call_command

    settings.VAR_DIR = tmp_path
    call_command("load_demo")
    out = capsys.readouterr().out
    password = (tmp_path / "demo-admin.txt").read_text().strip()
    assert f"admin        password: {password}" in out
    from django.contrib.auth import authenticate

    assert authenticate(username="admin", password=password).is_staff


def test_default_schedules_exist_after_migrate():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="worker heartbeat")
    assert task.task == "audits.tasks.worker_heartbeat"
    assert task.interval.every == 60


def test_load_demo_writes_the_logins_to_a_private_file(tmp_path, settings, capsys):
    from django.core.management import call_command

    settings.VAR_DIR = tmp_path
    call_command("load_demo")
    logins = tmp_path / "demo-logins.txt"
    assert f"(also in {logins})" in capsys.readouterr().out
    assert logins.stat().st_mode & 0o777 == 0o600
    text = logins.read_text()
    for name in ("admin", "custodian1", "custodian2"):
        password = (tmp_path / f"demo-{name}.txt").read_text().strip()
        assert f"{name:12} password: {password}\n" in text
    token = (tmp_path / "demo-custodian1-token.txt").read_text().strip()
    assert f"custodian1 API token: {token}\n" in text


def test_demo_statements_are_dated_at_the_last_nyse_close():
    from datetime import UTC, datetime

    from audits.demo import demo_as_of

    # Sunday after Thanksgiving 2026: the Friday early close, 13:00 New York.
    assert demo_as_of(datetime(2026, 11, 29, 15, 0, tzinfo=UTC)) == datetime(
        2026, 11, 27, 18, 0, tzinfo=UTC
    )
    # A summer weekday before and after the 16:00 New York close (20:00 UTC).
    assert demo_as_of(datetime(2026, 7, 8, 19, 59, tzinfo=UTC)) == datetime(
        2026, 7, 7, 20, 0, tzinfo=UTC
    )
    assert demo_as_of(datetime(2026, 7, 8, 20, 0, tzinfo=UTC)) == datetime(
        2026, 7, 8, 20, 0, tzinfo=UTC
    )
