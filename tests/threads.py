"""Threads racing through our code, as two workers would: started together at a barrier,
each closing its own database connection, and any exception raised in a thread re-raised in
the test (a thread's error is otherwise lost and the race proves nothing)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections


def race(work: Callable[[], Any], threads: int = 2, timeout: float = 60) -> list[Any]:
    """Run ``work`` in ``threads`` threads at once; return their results (in finishing order)."""
    start = threading.Barrier(threads)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            results.append(work())
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    running = [threading.Thread(target=run) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in running), "a racing thread hung"
    if errors:
        raise errors[0]
    return results
