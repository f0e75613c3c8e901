"""Pages in headless Chromium driven by Playwright for Python: the browser is Debian's
Chromium (Playwright's own download is neither wanted nor reachable), and every host but
loopback fails to resolve, so a page that needs the network shows it.

Each page records what went wrong in it (script errors, console errors, Content-Security-
Policy violations), and ``assert_clean`` fails a test that left any. ``axe`` runs axe-core
(installed from npm by `make tools`, never served by the app) on the page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.browser import CHROMIUM_FLAGS, chromium

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}


@dataclass
class Problems:
    errors: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.errors.clear()


def _flags() -> list[str]:
    # Playwright adds its own headless switch.
    return [f for f in CHROMIUM_FLAGS if f != "--headless"]


# Per module, not per session: while Playwright runs, its event loop makes Django take every
# ORM call for an async one, and tests in other modules must not pay for that.
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in this thread; Django would then
    # take every ORM call (the test's own, and pytest-django's database setup) for one made
    # from async code and refuse it. Allowed for this module's tests only: a subprocess
    # started by another module's test must not inherit it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=chromium(), args=_flags())
            yield launched
            launched.close()


def _watch(page, problems: Problems) -> None:
    page.on("pageerror", lambda exc: problems.errors.append(f"script error: {exc}"))

    def console(message) -> None:
        if message.type == "error":
            problems.errors.append(f"console: {message.text}")

    page.on("console", console)


@pytest.fixture
def open_page(browser):
    """``open_page(url, viewport=DESKTOP, **context_options)`` → a loaded Playwright page
    whose ``problems`` attribute lists what went wrong in it."""
    contexts = []

    def open_(url: str, viewport: dict | None = None, **options):
        viewport = viewport or DESKTOP
        context = browser.new_context(
            viewport=viewport,
            is_mobile=viewport["width"] < 600,
            has_touch=viewport["width"] < 600,
            **options,
        )
        contexts.append(context)
        page = context.new_page()
        problems = Problems()
        _watch(page, problems)
        page.problems = problems
        page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()


def assert_clean(page) -> None:
    """No script error, console error or CSP violation happened in ``page``."""
    assert page.problems.errors == [], page.problems.errors


def axe(page, tags: tuple[str, ...] = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")) -> list:
    """axe-core's violations of ``tags`` on the page as it stands. Evaluated through the
    DevTools protocol, which the page's own policy does not govern; nothing is added to the
    page for other scripts to see."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", list(tags)
    )
    return result["violations"]


def serious(violations: list) -> list[str]:
    """Serious and critical violations, one readable line each (rule, impact, targets)."""
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + json.dumps([n["target"] for n in v["nodes"]][:5])
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


def no_sideways_scroll(page) -> None:
    """The page lays out within the viewport's width (nothing to scroll sideways)."""
    widths = page.evaluate(
        "({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
    )
    assert widths["scroll"] <= widths["inner"], widths
