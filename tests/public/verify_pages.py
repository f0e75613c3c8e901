"""Shared by the verifier's browser tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def _database_before_browser(django_db_setup):
    """The test database exists before the module's browser starts: once Playwright's event
    loop runs in this thread, Django takes every ORM call (creating the database, flushing it
    between tests) for an async one. Allowed for this module's length only."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
        yield


def visit(open_page, url: str, viewport: dict | None = None):
    """``open_page`` without the browser's own /favicon.ico request: the site has no icon, and
    its 404 would be logged as a console error that is no fault of the page under test."""
    page = open_page("about:blank", viewport)
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))
    page.goto(url)
    return page
