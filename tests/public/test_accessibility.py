"""WCAG 2.1 AA basics on the login, error and portal pages, in a real browser: no serious or
critical axe-core violation and nothing to scroll sideways at desktop and phone width, and a
skip link that keyboard users reach first."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.test import Client

from audits import statements
from tests.webpage import DESKTOP, PHONE, assert_clean, axe, no_sideways_scroll, serious


def session_cookie(user, live_server) -> list[dict]:
    client = Client()
    client.force_login(user)
    value = client.cookies[settings.SESSION_COOKIE_NAME].value
    return [{"name": settings.SESSION_COOKIE_NAME, "value": value, "url": live_server.url}]


@pytest.fixture
def statement(owner):
    return statements.submit_statement(
        custodian=owner.custodian_link.custodian, user=owner, fmt="csv",
        raw=b"isin,quantity,account,balance_type\nUS0378331005,1000,ACC-1,settled\n",
        as_of=datetime(2026, 11, 20, 21, tzinfo=UTC),
    ).statement  # fmt: skip


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pages_pass_axe_and_fit_a_phone(live_server, open_page, owner, statement):
    anonymous = ["/no/such/page/", "/accounts/login/"]
    portal = ["/portal/", f"/portal/statements/{statement.pk}/", "/portal/tokens/"]
    cookies = session_cookie(owner, live_server)
    checked = []
    for viewport in (DESKTOP, PHONE):
        # One page per width: the anonymous pages first, then the same tab logged in.
        page = open_page("about:blank", viewport)
        for path in anonymous + portal:
            if path == portal[0]:
                page.context.add_cookies(cookies)
            response = page.goto(f"{live_server.url}{path}")
            assert response.status == (404 if "no/such" in path else 200), path
            if path in portal:
                assert "Log out owner" in page.inner_text("header"), path
            where = f"{path} at {viewport['width']} px"
            assert serious(axe(page)) == [], where
            no_sideways_scroll(page)
            if "no/such" in path:  # the browser logs the page's own 404 status, nothing else
                assert len(page.problems.errors) == 1 and "404" in page.problems.errors[0]
                page.problems.clear()
            assert_clean(page)
            checked.append(where)
    assert len(checked) == 10


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_first_tab_reaches_a_visible_skip_link_into_main(live_server, open_page):
    # Any page on base.html without autofocus (login focuses its username field on load).
    page = open_page(f"{live_server.url}/no/such/page/", DESKTOP)
    page.problems.clear()  # the browser logs the page's own 404 status
    link = page.locator("a.skip-link")
    assert not link.is_visible() or link.bounding_box()["y"] + link.bounding_box()["height"] <= 0
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "({cls: document.activeElement.className,"
        " href: document.activeElement.getAttribute('href')})"
    )
    assert focused == {"cls": "skip-link", "href": "#content"}
    box = link.bounding_box()
    assert box is not None and box["y"] >= 0 and box["height"] > 0  # on screen once focused
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"
    assert page.evaluate("document.activeElement.tagName") == "MAIN"
    # The next Tab goes on from inside main (its first link), not from the header.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")
    assert page.evaluate("document.activeElement.textContent") == "Home"
    assert_clean(page)


@pytest.mark.django_db
def test_forms_label_every_field(client, owner):
    client.force_login(owner)
    for path in ("/portal/", "/portal/tokens/"):
        html = client.get(path).content.decode()
        assert html.count("<label") >= 1, path
    login = Client().get("/accounts/login/").content.decode()
    assert '<label for="id_username">' in login and '<label for="id_password">' in login
