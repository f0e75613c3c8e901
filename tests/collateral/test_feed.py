"""GET /api/v1/collateral/eligibility: every active asset's standing, from real evidence."""

from __future__ import annotations

import hashlib
import json

import pytest
from stdnum import isin as stdnum_isin

from audits import eligibility, reconciliation
from audits.models import Asset, Eligibility, Reconciliation
from tests.collateral.conftest import APPLE, MICROSOFT, NVIDIA

URL = "/api/v1/collateral/eligibility"


def by_code(response) -> dict[str, dict]:
    return {row["code"]: row for row in response.json()["assets"]}


@pytest.fixture
def three(book):
    """AAPLx fully backed and approved; MSFTx short by 12.5 bps (a breach); NVDAx never
    reconciled; an inactive asset that must not appear."""
    apple = book.asset("AAPLx", APPLE)
    microsoft = book.asset("MSFTx", MICROSOFT)
    book.asset("NVDAx", NVIDIA)
    book.asset("OLDx", "US4592001014", active=False)
    book.holds({APPLE: "1000", MICROSOFT: "998.75"})
    book.supply(apple, "1000")
    book.supply(microsoft, "1000")
    book.make_eligible(apple)
    book.reconcile(microsoft)
    return apple, microsoft


@pytest.mark.django_db
def test_fields_and_values(api, three):
    apple, microsoft = three
    response = api.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    rows = by_code(response)
    assert list(rows) == ["AAPLx", "MSFTx", "NVDAx"]  # active only, by code

    a = rows["AAPLx"]
    latest = Reconciliation.objects.filter(asset=apple).latest("computed_at")
    row = Eligibility.objects.get(asset=apple)
    assert a == {
        "code": "AAPLx",
        "isin": APPLE,
        "eligible": True,
        "state": "eligible",
        "haircut_bps": 0,
        "since": row.since.isoformat().replace("+00:00", "Z"),
        "reason": "Unfreeze approved after 3 healthy runs: evidence healthy",
        "status": "healthy",
        "ratio": "1",
        "reserves": "1000",
        "supply": "1000",
        "shortfall_bps": 0,
        "liabilities": None,
        "coverage": None,
        "evidence_as_of": latest.evidence_as_of.isoformat().replace("+00:00", "Z"),
        "computed_at": latest.computed_at.isoformat().replace("+00:00", "Z"),
        "last_checked_at": latest.checked_at.isoformat().replace("+00:00", "Z"),
        "reconciliation_id": latest.pk,
        "market": a["market"],
    }
    assert latest.checks == 3  # three runs, one row: last_checked_at is the third
    assert set(a["market"]) == {"mic", "open", "next_open", "next_close"}
    assert a["market"]["mic"] == "XNYS"
    assert isinstance(a["market"]["open"], bool)

    m = rows["MSFTx"]
    assert (m["eligible"], m["state"], m["status"]) == (False, "frozen", "breach")
    # Decimal strings, exact, never floats.
    assert (m["reserves"], m["supply"], m["ratio"], m["shortfall_bps"]) == (
        "998.75",
        "1000",
        "0.99875",
        13,
    )
    assert m["reconciliation_id"] == Reconciliation.objects.get(asset=microsoft).pk


@pytest.mark.django_db
def test_an_asset_without_reconciliation_or_eligibility_row_is_frozen(api, three):
    nvidia = Asset.objects.get(code="NVDAx")
    assert not Eligibility.objects.filter(asset=nvidia).exists()
    n = by_code(api.get(URL))["NVDAx"]
    assert n["eligible"] is False
    assert n["state"] == "frozen"
    assert n["reason"] == "no reconciliation yet"
    for field in ("status", "ratio", "reserves", "supply", "shortfall_bps", "evidence_as_of",
                  "computed_at", "last_checked_at", "reconciliation_id", "since"):  # fmt: skip
        assert n[field] is None, field
    assert n["market"]["mic"] == "XNYS"


@pytest.mark.django_db
def test_amounts_are_strings_in_the_raw_body(api, three):
    body = api.get(URL).content.decode()
    assert '"reserves":"998.75"' in body
    assert '"ratio":"0.99875"' in body


@pytest.mark.django_db
def test_etag_and_304(api, three, book):
    first = api.get(URL)
    etag = first["ETag"]
    assert etag == '"' + hashlib.sha256(first.content).hexdigest() + '"'
    assert first["Cache-Control"] == "public, max-age=5"

    again = api.get(URL, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert again["Cache-Control"] == "public, max-age=5"
    # Weak form and lists match too (RFC 9110 weak comparison for If-None-Match).
    assert api.get(URL, HTTP_IF_NONE_MATCH=f'"nope", W/{etag}').status_code == 304
    assert api.get(URL, HTTP_IF_NONE_MATCH='"nope"').status_code == 200

    # Any change in the feed changes the tag: an admin freezes AAPLx.
    eligibility.manual_freeze(Asset.objects.get(code="AAPLx").pk, book.admin, "custodian audit")
    changed = api.get(URL, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert by_code(changed)["AAPLx"]["reason"] == "Frozen by an admin: custodian audit"


@pytest.mark.django_db
def test_constant_number_of_queries(api, book, django_assert_max_num_queries):
    """Thirty assets cost the same queries as one: two (assets joined, exchange closures)."""
    assets = []
    holdings = {}
    for n in range(30):
        code = stdnum_isin.calc_check_digit(f"US{n:09d}")
        isin = f"US{n:09d}{code}"
        assets.append(book.asset(f"T{n:02d}x", isin))
        holdings[isin] = "10"
    book.holds(holdings)
    for asset in assets:
        book.supply(asset, "10")
    book.reconcile(*assets)
    with django_assert_max_num_queries(2):
        response = api.get(URL)
    rows = response.json()["assets"]
    assert len(rows) == 30
    assert all(r["status"] == "healthy" and r["ratio"] == "1" for r in rows)


@pytest.mark.django_db
def test_schema_documents_the_feed(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/collateral/eligibility"]["get"]
    example = operation["responses"]["200"]["content"]["application/json"]["examples"]
    assert any(e["value"]["assets"][0]["state"] == "frozen" for e in example.values())
    assert "304" in operation["responses"]
    fields = schema["components"]["schemas"]["FeedAsset"]["properties"]
    for name in ("eligible", "haircut_bps", "ratio", "reserves", "supply", "shortfall_bps",
                 "evidence_as_of", "last_checked_at", "reconciliation_id", "market"):  # fmt: skip
        assert name in fields, name
    assert fields["reserves"]["type"] == "string"
    assert "/api/v1/collateral/events" in schema["paths"]
    assert json.dumps(schema)  # serialisable


@pytest.mark.django_db
def test_users_balances_and_coverage_once_a_snapshot_is_counted(api, three):
    from datetime import timedelta

    from django.utils import timezone

    from tests.reconciliation.liability_seed import publish

    apple, _ = three
    publish({apple: 250 * 10**apple.decimals}, timezone.now() - timedelta(hours=1))
    reconciliation.reconcile_assets([apple.pk])
    a = by_code(api.get(URL))["AAPLx"]
    assert (a["liabilities"], a["coverage"]) == ("250", "4")
    assert a["status"] == "healthy"
