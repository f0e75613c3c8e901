"""Liveness of the service's dependencies, for /healthz."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_database() -> Check:
    """Run a trivial query."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return Check("database", False, type(exc).__name__)
    return Check("database", True, connection.vendor)


def check_broker(timeout: float = 2.0) -> Check:
    """Open (and close) a connection to the Celery broker."""
    from porapp.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            transport = conn.transport_cls
    except Exception as exc:
        # The exception text can carry the broker URL and its password: name the type only.
        return Check("broker", False, type(exc).__name__)
    return Check("broker", True, str(transport))


def run_checks() -> list[Check]:
    """All dependency checks, in a stable order."""
    return [check_database(), check_broker()]
