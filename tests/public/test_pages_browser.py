"""The home page and the attestation pages in Chromium, with the demo assets reconciled and
real attestations issued: the content, no script error or CSP violation, no serious WCAG 2.1
AA violation, nothing to scroll sideways, at desktop and phone width."""

from __future__ import annotations

import pytest

from audits import attestations
from audits.demo import start_healthy
from tests.attestations.conftest import key_file  # noqa: F401 (fixture)
from tests.demo_evidence import report_demo_evidence
from tests.webpage import DESKTOP, PHONE, assert_clean, axe, no_sideways_scroll, serious

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def reconciled(demo, admin_user, key_file):  # noqa: F811
    """The demo custodians report, the issuer reports the minted supply, the assets are
    brought to eligible as `rundemo` does, and two attestations are signed."""
    report_demo_evidence(admin_user)
    start_healthy(admin_user)
    attestations.issue("changed")
    attestations.issue("heartbeat")


def check(page) -> None:
    assert_clean(page)
    assert serious(axe(page)) == []
    no_sideways_scroll(page)


def test_home_shows_the_demo_assets_with_their_charts(live_server, open_page, reconciled):
    for viewport in (DESKTOP, PHONE):
        home(open_page(f"{live_server.url}/", viewport), viewport)


def home(page, viewport) -> None:
    for code in ("AAPLx", "MSFTx", "SPYx", "QQQx"):
        card = page.locator(f"#asset-{code}")
        assert "Fully backed" in card.inner_text()
        assert "Eligible as collateral" in card.inner_text()
        assert card.locator("svg[role=img] path.ratio").count() == 1
        assert "now 100.00 %" in card.locator("figcaption").inner_text()
        assert "Latest signed attestation #2" in card.inner_text()
    assert "Northwind Custody Bank: statement as of" in page.locator("#asset-AAPLx").inner_text()
    assert "Demo L2 (anvil) (chain id 31338)" in page.locator("#asset-AAPLx").inner_text()
    box = page.locator("#asset-AAPLx svg").bounding_box()
    assert box and 0 < box["width"] <= viewport["width"] and box["height"] > 40
    check(page)


def test_attestation_list_and_detail(live_server, open_page, reconciled):
    for viewport in (DESKTOP, PHONE):
        attestation_pages(open_page(f"{live_server.url}/attestations/", viewport))


def attestation_pages(listing) -> None:
    assert listing.locator("tbody tr").count() == 2
    check(listing)
    listing.click("text=#2")
    listing.wait_for_url("**/attestations/2/")
    assert "Attestation #2" in listing.locator("h1").inner_text()
    assert listing.locator(".attested-asset").count() == 4
    assert "Healthy: fully backed" in listing.locator("#asset-SPYx").inner_text()
    assert listing.locator("ul.subjects li").count() == 2
    check(listing)
