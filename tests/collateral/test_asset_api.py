"""The asset API carries each asset's collateral standing, without a query per asset."""

from __future__ import annotations

import pytest

from audits.models import Reconciliation
from tests.collateral.conftest import APPLE, MICROSOFT, NVIDIA


@pytest.fixture
def assets(book):
    apple = book.asset("AAPLx", APPLE)
    microsoft = book.asset("MSFTx", MICROSOFT)
    book.asset("NVDAx", NVIDIA)
    book.holds({APPLE: "1000", MICROSOFT: "998.75"})
    book.supply(apple, "1000")
    book.supply(microsoft, "1000")
    book.make_eligible(apple)
    book.reconcile(microsoft)
    return apple, microsoft


@pytest.mark.django_db
def test_list_carries_collateral(api, assets, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):  # count + page, whatever the number of assets
        response = api.get("/api/v1/assets/")
    rows = {r["code"]: r for r in response.json()["results"]}
    apple = rows["AAPLx"]["collateral"]
    assert (apple["eligible"], apple["state"], apple["status"], apple["ratio"]) == (
        True,
        "eligible",
        "healthy",
        "1",
    )
    microsoft = rows["MSFTx"]["collateral"]
    assert (microsoft["reserves"], microsoft["supply"], microsoft["shortfall_bps"]) == (
        "998.75",
        "1000",
        13,
    )
    assert microsoft["reconciliation_id"] == Reconciliation.objects.get(asset=assets[1]).pk
    nvidia = rows["NVDAx"]["collateral"]
    assert (nvidia["eligible"], nvidia["reason"], nvidia["status"]) == (
        False,
        "no reconciliation yet",
        None,
    )


@pytest.mark.django_db
def test_detail_and_create(api, admin_api, assets):
    detail = api.get("/api/v1/assets/MSFTx/").json()
    assert detail["collateral"]["state"] == "frozen"
    assert detail["collateral"]["status"] == "breach"
    created = admin_api.post(
        "/api/v1/assets/",
        {"code": "SPYx", "name": "SPDR", "isin": "US78462F1030", "kind": "etf"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["collateral"]["reason"] == "no reconciliation yet"
    # Read-only: a client cannot set it.
    changed = admin_api.patch(
        "/api/v1/assets/SPYx/", {"collateral": {"eligible": True}}, format="json"
    )
    assert changed.status_code == 200
    assert changed.json()["collateral"]["eligible"] is False
