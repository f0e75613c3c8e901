"""The house rule is stated as import-linter contracts in pyproject.toml; these tests keep the
contracts complete as modules are added, and check that the documented verifier command works."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import audits

ROOT = Path(__file__).resolve().parents[2]


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_core_is_forbidden_every_django_side_module():
    """A new module beside audits.core must be added to the forbidden contract, or core could
    import it unnoticed."""
    forbidden = next(c for c in _contracts() if c["type"] == "forbidden")
    assert forbidden["source_modules"] == ["audits.core"]
    siblings = {
        f"audits.{m.name}" for m in pkgutil.iter_modules(audits.__path__) if m.name != "core"
    }
    missing = siblings - set(forbidden["forbidden_modules"])
    assert not missing, f"add to the audits.core forbidden contract: {sorted(missing)}"
    assert {"django", "rest_framework", "celery"} <= set(forbidden["forbidden_modules"])


def test_contracts_hold():
    out = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_core_imports_without_django(tmp_path):
    """Importing every core module in a fresh interpreter loads no Django."""
    code = (
        "import sys, pkgutil, importlib, audits.core as c\n"
        "for m in pkgutil.walk_packages(c.__path__, 'audits.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
        "('django', 'rest_framework', 'celery'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_documented_verifier_command_still_runs(tmp_path):
    bad = tmp_path / "proof.json"
    bad.write_text("{}")
    out = subprocess.run(
        [sys.executable, "-m", "audits.verify", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 1
    assert "INVALID" in out.stdout
