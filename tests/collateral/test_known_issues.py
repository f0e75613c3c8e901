"""Problems found in code this branch does not own (audits/eligibility.py), kept as strict
xfails so they turn into failures, and get noticed, once fixed."""

from __future__ import annotations

import pytest

from audits.models import Eligibility
from tests.collateral.conftest import MICROSOFT


@pytest.mark.django_db
@pytest.mark.xfail(
    strict=True,
    reason="eligibility.after_reconciliation updates `reason` only on a transition: an asset "
    "frozen as new keeps 'new asset: no reconciliation yet' after its first reconciliation "
    "found a breach, so the feed and home page say something false",
)
def test_a_new_asset_frozen_by_a_breach_says_so(book):
    microsoft = book.asset("MSFTx", MICROSOFT)
    book.holds({MICROSOFT: "998.75"})
    book.supply(microsoft, "1000")
    book.reconcile(microsoft)
    row = Eligibility.objects.get(asset=microsoft)
    assert row.latest is not None and row.latest.status == "breach"
    assert "no reconciliation yet" not in row.reason
