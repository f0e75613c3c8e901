"""The public home page says, per asset, in plain words, whether it is backed and eligible."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from audits import eligibility
from audits.models import Eligibility
from tests.collateral.conftest import APPLE, MICROSOFT, NVIDIA


def card(html: str, code: str) -> str:
    match = re.search(
        rf'<section class="card asset [a-z]+" id="asset-{code}"[^>]*>(.*?)</section>', html, re.S
    )
    assert match, f"no card for {code}"
    # Collapse whitespace so assertions read like the page.
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1)))


@pytest.fixture
def page(book):
    apple = book.asset("AAPLx", APPLE)
    microsoft = book.asset("MSFTx", MICROSOFT)
    nvidia = book.asset("NVDAx", NVIDIA)
    book.asset("OLDx", "US4592001014", active=False)
    book.holds({APPLE: "1000", MICROSOFT: "998.75"})
    book.holds({NVIDIA: "10"}, hours_ago=24 * 8)  # a week old: stale whatever the day
    book.supply(apple, "1000")
    book.supply(microsoft, "1000")
    book.supply(nvidia, "10")
    book.make_eligible(apple)
    book.reconcile(microsoft, nvidia)
    return Client().get("/").content.decode()


@pytest.mark.django_db
def test_plain_language_per_asset(page):
    apple = card(page, "AAPLx")
    assert "Fully backed" in apple
    assert "Eligible as collateral" in apple
    assert "100 %" in apple
    assert "1000 AAPLx" in apple
    assert "Healthy" in apple
    assert "US0378331005" in apple
    assert "XNYS:" in apple and ("open" in apple or "closed" in apple)

    microsoft = card(page, "MSFTx")
    assert "NOT fully backed: short by 13 bps" in microsoft
    assert "99.875 %" in microsoft
    assert "998.75 MSFTx" in microsoft and "1000 MSFTx" in microsoft
    assert "Breach" in microsoft
    since = Eligibility.objects.get(asset__code="MSFTx").since
    assert f"Frozen since {since:%-d %b %Y %H:%M} UTC:" in microsoft

    assert "Evidence too old" in card(page, "NVDAx")
    assert "OLDx" not in page


@pytest.mark.django_db
def test_unknown_and_never_reconciled(book):
    book.asset("AAPLx", APPLE)
    html = Client().get("/").content.decode()
    apple = card(html, "AAPLx")
    assert "Unknown" in apple
    assert "Frozen: no reconciliation yet" in apple
    assert "Last checked never" in apple


@pytest.mark.django_db
def test_admin_reason_is_shown_escaped(book):
    apple = book.asset("AAPLx", APPLE)
    book.holds({APPLE: "5"})
    book.supply(apple, "5")
    book.make_eligible(apple)
    eligibility.manual_freeze(apple.pk, book.admin, "<script>alert(1)</script> review")
    html = Client().get("/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; review" in html
    now = timezone.now()
    assert f"Frozen since {now:%-d %b %Y}" in card(html, "AAPLx")


@pytest.mark.django_db
def test_page_keeps_its_links(book):
    html = Client().get("/").content.decode()
    for href in ("/portal/", "/admin/", "/api/docs/", "/api/v1/collateral/eligibility"):
        assert f'href="{href}' in html
