"""The Content-Security-Policy: the exact strict directives on every kind of response, and a
page proving that markup smuggled into it can neither run script nor restyle it."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.webpage import DESKTOP

STRICT = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# Swagger UI's icons are data: SVG images; that page alone may load them (porapp/urls.py).
DOCS = {**STRICT, "img-src": ["'self'", "data:"]}
LOOSE = {
    "'unsafe-inline'",
    "'unsafe-eval'",
    "'unsafe-hashes'",
    "*",
    "data:",
    "blob:",
    "http:",
    "https:",
}


def directives(header: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            assert words[0] not in parsed, f"{words[0]} given twice"
            parsed[words[0]] = words[1:]
    return parsed


def test_directives_parser():
    assert directives("default-src 'self'; img-src 'self' data:;") == {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
    }


@pytest.fixture
def responses(owner, admin_user, settings):
    settings.DEBUG = False
    anonymous = Client()
    custodian, staff = Client(), Client()
    custodian.force_login(owner)
    staff.force_login(admin_user)
    return {
        "home": anonymous.get("/"),
        "attestation list": anonymous.get("/attestations/"),
        "404": anonymous.get("/no/such/page/"),
        "login": anonymous.get("/accounts/login/"),
        "portal": custodian.get("/portal/"),
        "portal tokens": custodian.get("/portal/tokens/"),
        "admin": staff.get("/admin/"),
        "admin login": anonymous.get("/admin/login/"),
        "JSON API": anonymous.get("/api/v1/assets/"),
        "JSON API error": anonymous.get("/api/v1/custodians/999999/"),
        "JWKS": anonymous.get("/.well-known/jwks.json"),
        "schema": anonymous.get("/api/schema/"),
        "API docs": anonymous.get("/api/docs/"),
        "API docs script": anonymous.get("/api/docs/?script="),
    }


@pytest.mark.django_db
def test_every_kind_of_response_carries_the_strict_policy(responses):
    statuses = {name: r.status_code for name, r in responses.items()}
    assert statuses["404"] == 404
    assert statuses["JSON API error"] in (401, 403, 404)
    assert responses["JSON API error"]["Content-Type"].startswith("application/problem+json")
    assert all(
        statuses[n] == 200 for n in ("home", "login", "portal", "admin", "JWKS", "API docs")
    ), statuses
    for name, response in responses.items():
        expected = DOCS if name.startswith("API docs") else STRICT
        parsed = directives(response["Content-Security-Policy"])
        assert parsed == expected, name
        for code in ("default-src", "script-src", "style-src"):
            assert not LOOSE & set(parsed[code]), (name, code)


@pytest.mark.django_db
@pytest.mark.urls("tests.public.boom_urls")
def test_a_server_error_page_carries_the_strict_policy(settings):
    settings.DEBUG = False
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    assert b"Something went wrong" in response.content
    assert b"style=" not in response.content and b"<style" not in response.content
    assert directives(response["Content-Security-Policy"]) == STRICT


def test_no_directive_allows_inline_code_or_any_source():
    from django.conf import settings

    for name, sources in settings.CONTENT_SECURITY_POLICY["DIRECTIVES"].items():
        assert not LOOSE & set(sources), name
    assert "REPORT_ONLY" not in str(settings.CONTENT_SECURITY_POLICY)


INJECTED = (
    '<script>window.injected = true; document.title = "pwned";</script>'
    '<img id="bad-img" src="/no-such-image.png"'
    " onerror=\"window.injected = true; document.title = 'pwned'\">"
    '<button id="bad-button" onclick="window.clicked = true">click</button>'
    '<div id="bad-style" style="color: rgb(255, 0, 0); display: none">styled</div>'
)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_markup_injected_into_the_home_page_cannot_run_or_restyle(live_server, open_page):
    seen: dict = {}

    def inject(route):
        response = route.fetch()
        seen["policy"] = response.headers["content-security-policy"]
        body = response.text().replace("</main>", INJECTED + "</main>", 1)
        assert INJECTED in body
        route.fulfill(response=response, body=body, headers=response.headers)

    def open_injected(page):
        page.route(f"{live_server.url}/", inject)

    # The route must be in place before the first navigation: open a blank page, then go.
    page = open_page("about:blank", DESKTOP)
    open_injected(page)
    page.goto(f"{live_server.url}/")
    page.wait_for_load_state("load")
    page.click("#bad-button")
    page.wait_for_timeout(200)

    assert directives(seen["policy"]) == STRICT
    assert page.locator("#bad-style").is_visible()  # display:none did not apply
    assert (
        page.evaluate("getComputedStyle(document.getElementById('bad-style')).color")
        != "rgb(255, 0, 0)"
    )
    assert page.title() != "pwned"
    assert page.evaluate("typeof window.injected") == "undefined"
    assert page.evaluate("typeof window.clicked") == "undefined"
    refused = [
        e
        for e in page.problems.errors
        if "violates the following Content Security Policy directive" in e
    ]
    assert any("script-src" in e and "inline script" in e for e in refused), refused
    assert any("script-src" in e and "event handler" in e for e in refused), refused
    assert any("style-src" in e for e in refused), refused
