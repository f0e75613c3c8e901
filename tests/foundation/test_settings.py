"""Settings come from the environment; production refuses to start half-configured."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from porapp.env import env_bool, env_duration, env_int, env_list, env_str

ROOT = Path(__file__).resolve().parents[2]


def test_env_helpers(monkeypatch):
    monkeypatch.setenv("X_BOOL", "yes")
    monkeypatch.setenv("X_INT", "42")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env_bool("X_BOOL") is True
    assert env_int("X_INT", 1) == 42
    assert env_list("X_LIST", []) == ["a", "b", "c"]
    assert env_str("X_MISSING", "d") == "d"


@pytest.mark.parametrize(
    ("name", "value", "reader"),
    [("X_BOOL", "maybe", env_bool), ("X_INT", "4.2", lambda n: env_int(n, 0))],
)
def test_env_helpers_refuse_garbage(monkeypatch, name, value, reader):
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        reader(name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("90", timedelta(seconds=90)), ("45s", timedelta(seconds=45)), ("30m", timedelta(minutes=30)),
     ("24h", timedelta(hours=24)), (" 2D ", timedelta(days=2)), ("", timedelta(hours=5))],
)  # fmt: skip
def test_env_duration(monkeypatch, value, expected):
    monkeypatch.setenv("X_DURATION", value)
    assert env_duration("X_DURATION", timedelta(hours=5)) == expected


@pytest.mark.parametrize("value", ["1.5h", "-3h", "h", "3 weeks", "1e3"])
def test_env_duration_refuses_garbage(monkeypatch, value):
    monkeypatch.setenv("X_DURATION", value)
    with pytest.raises(ImproperlyConfigured, match="X_DURATION must be a whole number"):
        env_duration("X_DURATION", timedelta(hours=1))


def test_missing_required_setting_names_it(monkeypatch):
    monkeypatch.delenv("X_REQUIRED", raising=False)
    with pytest.raises(ImproperlyConfigured, match="Set the X_REQUIRED environment variable"):
        env_str("X_REQUIRED")


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "DEBUG", "SECURE_SSL_REDIRECT")
    }
    clean.update(env, DJANGO_SETTINGS_MODULE="porapp.settings")
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def test_refuses_to_start_without_secret_key_when_debug_off(tmp_path):
    result = _manage("check", DEBUG="0", PORAPP_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "Set the SECRET_KEY environment variable" in result.stderr


def test_check_deploy_is_clean_when_configured(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="k" * 20 + "-a-long-random-production-secret-!@#$%^&*()",
        ALLOWED_HOSTS="por.example.com",
        PORAPP_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
