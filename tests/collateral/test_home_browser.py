"""The home page in a real browser: a frozen asset and its reason, readable at desktop and
phone width with nothing to scroll sideways, and no request to another host."""

from __future__ import annotations

import pytest

from audits import eligibility
from tests.browser import load_recording_requests
from tests.collateral.conftest import APPLE, MICROSOFT
from tests.collateral.devtools import measure


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_home_shows_frozen_asset_at_desktop_and_phone_width(live_server, book):
    apple = book.asset("AAPLx", APPLE)
    microsoft = book.asset("MSFTx", MICROSOFT)
    book.holds({APPLE: "1000", MICROSOFT: "998.75"})
    book.supply(apple, "1000")
    book.supply(microsoft, "1000")
    book.make_eligible(apple)
    book.reconcile(microsoft)
    reason = "custodian under review after a reconciliation break of 0.125 % on account ACC-1"
    eligibility.manual_freeze(apple.pk, book.admin, reason)

    url = f"{live_server.url}/"
    for width, mobile in ((1280, False), (375, True)):
        page = measure(url, width, mobile=mobile)
        text = " ".join(page["text"].split())
        assert "Frozen since" in text, width
        assert f"Frozen by an admin: {reason}" in text, width
        assert "NOT fully backed: short by 13 bps" in text, width
        # No horizontal scrolling: the page lays out within the viewport (a phone browser
        # would also zoom out to fit wider content, which widens innerWidth).
        assert page["scrollWidth"] <= width, (width, page["scrollWidth"])
        assert page["scrollWidth"] <= page["clientWidth"]
        assert page["innerWidth"] == width

    dom, requested = load_recording_requests(url)
    assert "Frozen since" in dom
    assert all(r.startswith(live_server.url) for r in requested), requested
