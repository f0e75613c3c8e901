"""Clocks from the database: admin-entered closures count, one query for many exchanges."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.core.exceptions import ValidationError

from audits import market_calendars
from audits.core.market_hours import UnknownExchange
from audits.models import MarketClosure
from audits.validators import validate_mic

pytestmark = pytest.mark.django_db

FRIDAY_CLOSE = datetime(2026, 11, 20, 21, tzinfo=UTC)
TUESDAY_NOON = datetime(2026, 11, 24, 17, tzinfo=UTC)


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_an_admin_entered_closure_is_honoured():
    assert (
        market_calendars.clock_for("XNYS").sessions_closed_between(FRIDAY_CLOSE, TUESDAY_NOON) == 1
    )
    closure = MarketClosure.objects.create(mic="XNYS", date=date(2026, 11, 23), reason="Storm")
    assert (
        market_calendars.clock_for("XNYS").sessions_closed_between(FRIDAY_CLOSE, TUESDAY_NOON) == 0
    )
    # Another exchange's closure does not touch New York.
    MarketClosure.objects.create(mic="XLON", date=date(2026, 11, 24), reason="Fog")
    assert (
        market_calendars.clock_for("XNYS").sessions_closed_between(FRIDAY_CLOSE, TUESDAY_NOON) == 0
    )
    closure.delete()
    assert (
        market_calendars.clock_for("XNYS").sessions_closed_between(FRIDAY_CLOSE, TUESDAY_NOON) == 1
    )


def test_clocks_for_many_exchanges_is_one_query(django_assert_num_queries):
    MarketClosure.objects.create(mic="XNYS", date=date(2026, 11, 23), reason="Storm")
    MarketClosure.objects.create(mic="XLON", date=date(2026, 11, 23), reason="Fog")
    mics = ["XNYS", "XLON", "XHKG", "XTKS", "XNYS"]
    with django_assert_num_queries(1):
        clocks = market_calendars.clocks_for(mics)
    assert set(clocks) == {"XNYS", "XLON", "XHKG", "XTKS"}
    monday_noon_new_york = datetime(2026, 11, 23, 17, tzinfo=UTC)
    assert not clocks["XNYS"].is_open(monday_noon_new_york)
    assert not clocks["XLON"].is_open(datetime(2026, 11, 23, 11, tzinfo=UTC))
    assert clocks["XHKG"].is_open(datetime(2026, 11, 23, 2, tzinfo=UTC))
    with django_assert_num_queries(0):
        assert market_calendars.clocks_for([]) == {}


def test_unknown_exchange_is_refused():
    with pytest.raises(UnknownExchange):
        market_calendars.clock_for("QQQQ")


def test_market_state_for_the_feed():
    assert market_calendars.market_state("XNYS", datetime(2026, 11, 27, 17, 59, tzinfo=UTC)) == {
        "mic": "XNYS",
        "open": True,
        "next_open": "2026-11-30T14:30:00+00:00",
        "next_close": "2026-11-27T18:00:00+00:00",
    }
    closed = market_calendars.market_state("XNYS", datetime(2026, 11, 26, 12, tzinfo=UTC))
    assert closed["open"] is False and closed["next_open"] == "2026-11-27T14:30:00+00:00"


@pytest.mark.parametrize(
    ("value", "message"),
    [("xnys", "4 capital letters"), ("XNY", "4 capital letters"), ("XNYSE", "4 capital letters"),
     ("QQQQ", "'QQQQ' is not an exchange with a known trading calendar")],
)  # fmt: skip
def test_validate_mic_names_the_mic(value, message):
    with pytest.raises(ValidationError, match=message):
        validate_mic(value)
    validate_mic("XNYS")


def test_admin_add_page_explains_when_to_add_a_closure(admin_client):
    page = admin_client.get("/admin/audits/marketclosure/add/")
    assert page.status_code == 200
    assert b"announced after the library" in page.content


def test_admin_adds_a_closure_recorded_as_theirs(admin_client, admin_user):
    response = admin_client.post(
        "/admin/audits/marketclosure/add/",
        {"mic": "XNYS", "date": "2026-11-23", "reason": "Hurricane"},
    )
    assert response.status_code == 302
    closure = MarketClosure.objects.get()
    assert (closure.mic, closure.date, closure.created_by) == (
        "XNYS",
        date(2026, 11, 23),
        admin_user,
    )
    listing = admin_client.get("/admin/audits/marketclosure/").content.decode()
    assert "Hurricane" in listing and "XNYS" in listing
    assert not market_calendars.clock_for("XNYS").is_open(datetime(2026, 11, 23, 16, tzinfo=UTC))


@pytest.mark.parametrize(
    ("data", "message"),
    [({"mic": "XNYS", "date": "2026-11-26", "reason": "Holiday"}, "not trade on 2026-11-26"),
     ({"mic": "XNYS", "date": "2026-11-21", "reason": "Saturday"}, "not trade on 2026-11-21"),
     ({"mic": "QQQQ", "date": "2026-11-23", "reason": "?"}, "not an exchange with a known")],
)  # fmt: skip
def test_admin_refuses_a_needless_or_unknown_closure(admin_client, data, message):
    response = admin_client.post("/admin/audits/marketclosure/add/", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not MarketClosure.objects.exists()


def test_one_closure_per_exchange_and_day(admin_client):
    MarketClosure.objects.create(mic="XNYS", date=date(2026, 11, 23), reason="Storm")
    response = admin_client.post(
        "/admin/audits/marketclosure/add/",
        {"mic": "XNYS", "date": "2026-11-23", "reason": "Storm again"},
    )
    assert response.status_code == 200
    assert MarketClosure.objects.count() == 1
