"""No page makes a browser reach another host: everything it loads or links comes from porapp.

Server side, every public page (home, login, portal, every admin page, API docs, the
schema) is rendered and searched for remote hosts in src/href/action attributes, CSS url()
(inline and in the local stylesheets it loads) and inline scripts. In the browser, the API doc
pages run their JavaScript in headless Chromium and every request it makes is recorded, which
catches what scripts fetch by themselves.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from django.contrib import admin
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import NoReverseMatch, reverse

from audits import statements
from audits.models import CustodianStatement
from tests.browser import load_recording_requests

ATTRIBUTE = re.compile(r"""\b(?:src|href|action|poster|srcset|data)\s*=\s*["']([^"']*)["']""", re.I)
CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)""", re.I)
SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script>", re.I | re.S)
STYLE = re.compile(r"<style\b[^>]*>(.*?)</style>|\bstyle\s*=\s*\"([^\"]*)\"", re.I | re.S)
REMOTE = re.compile(r"(?:https?:)?//[^\s\"'<>)]+", re.I)
LOCAL_HOSTS = {"testserver", "127.0.0.1", "localhost"}


def remote(reference: str) -> bool:
    reference = reference.strip()
    if not reference.lower().startswith(("http://", "https://", "//")):
        return False
    return (
        urlsplit(reference if ":" in reference.split("/")[0] else f"http:{reference}").hostname
        not in LOCAL_HOSTS
    )


def remote_references(body: str) -> list[str]:
    found = [v for v in ATTRIBUTE.findall(body) if remote(v)]
    for block, attribute in STYLE.findall(body):
        found += [u for u in CSS_URL.findall(block or attribute) if remote(u)]
    for script in SCRIPT.findall(body):
        found += [u for u in REMOTE.findall(script) if remote(u)]
    return found


def stylesheet_references(body: str) -> list[str]:
    """Remote url()s inside the local stylesheets a page loads."""
    found = []
    for href in ATTRIBUTE.findall(body):
        path = urlsplit(href).path
        if path.startswith("/static/") and path.endswith(".css"):
            local = finders.find(path.removeprefix("/static/"))
            assert local, f"{path} is not a static file"
            with open(local, encoding="utf-8") as css:
                found += [f"{path}: {u}" for u in CSS_URL.findall(css.read()) if remote(u)]
    return found


def admin_urls() -> list[str]:
    """Every admin page that takes no argument or one object id (the first object's)."""
    urls = ["/admin/", "/admin/password_change/"]
    for model, model_admin in admin.site._registry.items():
        first = model._default_manager.order_by("pk").first()
        for pattern in model_admin.get_urls():
            name = getattr(pattern, "name", None)
            if not name:
                continue
            arguments = len(pattern.pattern.converters) or pattern.pattern.regex.groups
            try:
                if arguments == 0:
                    urls.append(reverse(f"admin:{name}"))
                elif arguments == 1 and first is not None:
                    urls.append(reverse(f"admin:{name}", args=[first.pk]))
            except NoReverseMatch:
                continue
    return urls


@pytest.fixture
def pages(demo, owner, admin_user):
    statement = statements.submit_statement(
        custodian=owner.custodian_link.custodian, user=owner, fmt="csv",
        raw=b"isin,quantity,account,balance_type\nUS0378331005,1000,ACC-1,settled\n",
        as_of=datetime(2026, 11, 20, 21, tzinfo=UTC),
    ).statement  # fmt: skip
    anonymous, custodian, staff = Client(), Client(), Client()
    custodian.force_login(owner)
    staff.force_login(admin_user)
    public = ["/", "/accounts/login/", "/api/docs/", "/api/schema/"]
    portal = ["/portal/", f"/portal/statements/{statement.pk}/", "/portal/tokens/"]
    return (
        [(anonymous, url) for url in public]
        + [(custodian, url) for url in portal]
        + [(staff, url) for url in admin_urls()]
    )


@pytest.mark.django_db
def test_no_page_references_a_remote_host(pages):
    problems, checked = [], 0
    for client, url in pages:
        response = client.get(url)
        if response.status_code != 200 or response.streaming:
            continue
        body = response.content.decode("utf-8", errors="replace")
        checked += 1
        problems += [f"{url}: {r}" for r in remote_references(body)]
        problems += [f"{url}: {r}" for r in stylesheet_references(body)]
    assert checked >= 30, f"only {checked} pages rendered"
    assert CustodianStatement.objects.exists()
    assert problems == []


def test_the_checker_sees_remote_references():
    page = (
        '<link rel="preconnect" href="https://fonts.googleapis.com">'
        '<img src="//cdn.example.org/x.png"><a href="/ok">ok</a>'
        '<style>body{background:url("https://cdn.example.org/b.png")}</style>'
        '<script>fetch("https://cdn.redoc.ly/redoc/logo-mini.svg")</script>'
        '<img src="http://testserver/static/x.png">'
    )
    assert len(remote_references(page)) == 4


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/api/docs/"])
def test_api_doc_pages_request_nothing_remote_in_a_browser(live_server, path):
    dom, requested = load_recording_requests(f"{live_server.url}{path}")
    assert "porapp API" in dom  # the page rendered, so its scripts ran
    local = urlsplit(live_server.url).netloc
    elsewhere = [
        u for u in requested
        if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).netloc != local
    ]  # fmt: skip
    assert any(urlsplit(u).netloc == local for u in requested)  # the scripts and the schema
    assert elsewhere == []
