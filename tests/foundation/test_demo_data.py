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


def test_demo_proof_verifies_offline(tmp_path):
    import json
    import subprocess
    import sys

    from audits.demo import write_demo_proof

    path = write_demo_proof(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "audits.verify", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("VALID")
    assert 'balance:  12.000000000000000000 "AAPLx"' in result.stdout  # codes quoted, escaped
    proof = json.loads(path.read_text())
    proof["leaf"]["balances"][0] = str(int(proof["leaf"]["balances"][0]) - 1)
    path.write_text(json.dumps(proof))
    tampered = subprocess.run(
        [sys.executable, "-m", "audits.verify", str(path)], capture_output=True, text=True
    )
    assert tampered.returncode == 1
    assert "INVALID" in tampered.stdout
