"""pytest plugin: run the tests against a separately built copy of the C accelerator.

``pytest -p tests.merkle.sanitized_native`` with ``PORAPP_MSTNATIVE=/path/to/_mstnative*.so``
(see scripts/merkle-asan.sh, which builds one with AddressSanitizer and UBSan). A plugin named
with ``-p`` is imported before any conftest, so the module is in place before anything
imports ``audits.core.merkle``; the session then checks that it is the one in use (by the
builder and by the snapshot splitter in ``audits.core.liabilities``).
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

NAME = "audits.core.merkle._mstnative"
PATH = os.environ.get("PORAPP_MSTNATIVE", "")

if PATH:
    if NAME in sys.modules:
        raise RuntimeError(f"{NAME} was imported before the plugin could replace it")
    _spec = importlib.util.spec_from_file_location(NAME, PATH)
    if _spec is None or _spec.loader is None:
        raise RuntimeError(f"cannot load {PATH}")
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    sys.modules[NAME] = _module


def pytest_sessionstart(session: pytest.Session) -> None:
    if not PATH:
        raise pytest.UsageError("set PORAPP_MSTNATIVE to the compiled module to test")
    from audits.core import liabilities
    from audits.core.merkle import native

    module = sys.modules[NAME]
    if native._c is not module or liabilities._c is not module or module.__file__ != PATH:
        raise pytest.UsageError(f"the tests would not use {PATH}")


def pytest_report_header() -> str:
    return f"merkle accelerator under test: {PATH}"
