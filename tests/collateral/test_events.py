"""GET /api/v1/collateral/events: eligibility changes from a cursor, each seen exactly once."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from audits import eligibility
from audits.models import EligibilityEvent
from tests.collateral.conftest import APPLE, MICROSOFT, NVIDIA

URL = "/api/v1/collateral/events"


@pytest.fixture
def history(book):
    """Three assets approved (3 unfrozen events, by the admin), then AAPLx frozen by a named
    admin, then MSFTx frozen automatically when its supply outgrows its reserves."""
    isins = {"AAPLx": APPLE, "MSFTx": MICROSOFT, "NVDAx": NVIDIA}
    assets = {code: book.asset(code, isin) for code, isin in isins.items()}
    book.holds({isin: "500" for isin in isins.values()})
    for asset in assets.values():
        book.supply(asset, "500")
    for asset in assets.values():
        book.make_eligible(asset)
    ops = get_user_model().objects.create_user(
        "alice.ops", "alice@example.com", "pw", is_staff=True, is_superuser=True
    )
    eligibility.manual_freeze(assets["AAPLx"].pk, ops, "custodian under review")
    book.supply(assets["MSFTx"], "600")
    book.reconcile(assets["MSFTx"])
    return assets


def consume(api, page_size: int, after: int = 0) -> tuple[list[dict], int]:
    """A consumer following `next` until `more` is false; returns events and its cursor."""
    seen: list[dict] = []
    url = f"{URL}?after={after}&limit={page_size}"
    for _ in range(100):
        page = api.get(url).json()
        seen += page["events"]
        url = page["next"]
        after = page["last_seq"]
        if not page["more"]:
            return seen, after
    raise AssertionError("never reached the end")


@pytest.mark.django_db
def test_event_fields(api, history):
    events = api.get(URL).json()["events"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert [(e["asset"], e["event_type"]) for e in events] == [
        ("AAPLx", "eligibility.unfrozen"),
        ("MSFTx", "eligibility.unfrozen"),
        ("NVDAx", "eligibility.unfrozen"),
        ("AAPLx", "eligibility.frozen"),
        ("MSFTx", "eligibility.frozen"),
    ]
    manual, automatic = events[3], events[4]
    stored = EligibilityEvent.objects.get(seq=4)
    assert manual == {
        "seq": 4,
        "event_type": "eligibility.frozen",
        "asset": "AAPLx",
        "isin": APPLE,
        "from_state": "eligible",
        "to_state": "frozen",
        "from_haircut_bps": 0,
        "to_haircut_bps": 0,
        "reason": "Frozen by an admin: custodian under review",
        "reconciliation_id": stored.reconciliation_id,
        "actor": "admin",
        "created_at": stored.created_at.isoformat().replace("+00:00", "Z"),
    }
    assert automatic["actor"] is None
    assert automatic["reconciliation_id"] is not None
    assert "short by" in automatic["reason"]


@pytest.mark.django_db
def test_admin_names_are_never_published(api, history):
    body = api.get(URL).content.decode()
    assert "alice" not in body
    assert '"actor":"admin"' in body


@pytest.mark.django_db
@pytest.mark.parametrize("page_size", [1, 2, 3, 5, 1000])
def test_paging_sees_every_event_exactly_once(api, history, book, page_size):
    seen, cursor = consume(api, page_size)
    assert [e["seq"] for e in seen] == [1, 2, 3, 4, 5]
    assert cursor == 5
    # Nothing new: the cursor stays and the page is empty.
    empty = api.get(f"{URL}?after={cursor}").json()
    assert (empty["events"], empty["last_seq"], empty["more"]) == ([], 5, False)
    # Later events are picked up from the cursor, and only they.
    eligibility.manual_freeze(history["NVDAx"].pk, book.admin, "corporate action")
    later, cursor = consume(api, page_size, after=cursor)
    assert [(e["seq"], e["asset"]) for e in later] == [(6, "NVDAx")]
    assert cursor == 6


@pytest.mark.django_db
def test_next_link_and_default_limit(api, history):
    page = api.get(f"{URL}?after=1&limit=2").json()
    assert [e["seq"] for e in page["events"]] == [2, 3]
    assert page["last_seq"] == 3
    assert page["more"] is True
    assert page["next"] == "http://testserver/api/v1/collateral/events?after=3&limit=2"
    assert api.get(URL).json()["next"].endswith("?after=5&limit=100")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query, field",
    [
        ("after=-1", "after"),
        ("after=abc", "after"),
        ("after=1.5", "after"),
        ("after=%C2%B2", "after"),  # a superscript two is a digit to str.isdigit
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
    ],
)
def test_bad_parameters_are_problems(api, query, field):
    response = api.get(f"{URL}?{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["errors"][0]["field"] == field
    assert field in body["detail"]


@pytest.mark.django_db
def test_limit_is_honoured_at_the_maximum(api, history):
    page = api.get(f"{URL}?limit=1000").json()
    assert len(page["events"]) == 5
    assert page["more"] is False
