"""The framework-free session clock: ages in sessions of the home exchange, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from audits.core.market_hours import (
    OutsideCalendar,
    UnknownExchange,
    known_exchange,
    scheduled_session,
    session_clock,
)

NEW_YORK_EST = timezone(timedelta(hours=-5))


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(scope="module")
def nyse():
    return session_clock("XNYS")


def test_friday_statement_is_fresh_on_monday_morning_and_one_session_old_after_close(nyse):
    friday_close = utc(2026, 11, 20, 21)
    assert nyse.sessions_closed_between(friday_close, utc(2026, 11, 21, 12)) == 0  # Saturday
    assert nyse.sessions_closed_between(friday_close, utc(2026, 11, 23, 14, 0)) == 0  # Monday am
    assert nyse.sessions_closed_between(friday_close, utc(2026, 11, 23, 20, 59, 59)) == 0
    assert nyse.sessions_closed_between(friday_close, utc(2026, 11, 23, 21)) == 1  # close counts
    assert nyse.sessions_closed_between(friday_close, utc(2026, 11, 23, 21, 1)) == 1


def test_missing_tuesday_statement_makes_monday_two_sessions_old_after_wednesday_close(nyse):
    monday_close = utc(2026, 11, 16, 21)
    assert nyse.sessions_closed_between(monday_close, utc(2026, 11, 18, 20, 59)) == 1
    assert nyse.sessions_closed_between(monday_close, utc(2026, 11, 18, 21, 1)) == 2


def test_a_statement_taken_just_after_a_close_does_not_count_that_close(nyse):
    assert nyse.sessions_closed_between(utc(2026, 11, 23, 21, 0, 0, 500_000),
                                        utc(2026, 11, 24, 21, 0)) == 1  # fmt: skip
    assert nyse.sessions_closed_between(utc(2026, 11, 23, 20, 59, 59, 999_999),
                                        utc(2026, 11, 23, 21, 0)) == 1  # fmt: skip


def test_thanksgiving_is_no_session_and_the_day_after_closes_at_13_new_york(nyse):
    assert not scheduled_session("XNYS", date(2026, 11, 26))
    assert not nyse.is_open(utc(2026, 11, 26, 16))
    wednesday_close = utc(2026, 11, 25, 21)
    assert nyse.sessions_closed_between(wednesday_close, utc(2026, 11, 26, 23)) == 0
    assert nyse.is_open(utc(2026, 11, 27, 17, 59))
    assert not nyse.is_open(utc(2026, 11, 27, 18, 1))
    assert nyse.next_close(utc(2026, 11, 27, 15)) == utc(2026, 11, 27, 18)
    # The early close is a close: Wednesday's statement is one session old at 18:00 UTC Friday.
    assert nyse.sessions_closed_between(wednesday_close, utc(2026, 11, 27, 17, 59)) == 0
    assert nyse.sessions_closed_between(wednesday_close, utc(2026, 11, 27, 18, 0)) == 1
    assert nyse.next_open(utc(2026, 11, 25, 22)) == utc(2026, 11, 27, 14, 30)


def test_carter_day_of_mourning_is_a_closure_the_library_knows(nyse):
    assert not scheduled_session("XNYS", date(2025, 1, 9))
    assert not nyse.is_open(utc(2025, 1, 9, 16))
    wednesday_close = utc(2025, 1, 8, 21)
    assert nyse.sessions_closed_between(wednesday_close, utc(2025, 1, 10, 20, 59)) == 0
    assert nyse.sessions_closed_between(wednesday_close, utc(2025, 1, 10, 21, 1)) == 1


def test_an_extra_closure_removes_that_session(nyse):
    storm = session_clock("XNYS", [date(2026, 11, 23)])
    friday_close, tuesday_noon = utc(2026, 11, 20, 21), utc(2026, 11, 24, 17)
    assert nyse.sessions_closed_between(friday_close, tuesday_noon) == 1
    assert storm.sessions_closed_between(friday_close, tuesday_noon) == 0
    assert nyse.is_open(utc(2026, 11, 23, 16)) and not storm.is_open(utc(2026, 11, 23, 16))
    assert storm.next_open(friday_close) == utc(2026, 11, 24, 14, 30)
    assert storm.next_close(friday_close) == utc(2026, 11, 24, 21)
    assert len(storm.closes) == len(nyse.closes) - 1


def test_clocks_are_cached_per_mic_and_set_of_closures(nyse):
    assert session_clock("XNYS") is nyse
    a = session_clock("XNYS", [date(2026, 11, 23), date(2026, 11, 24)])
    assert session_clock("XNYS", (date(2026, 11, 24), date(2026, 11, 23))) is a
    # A closure on a day with no session changes nothing.
    assert session_clock("XNYS", [date(2026, 11, 21)]).closes == nyse.closes


def test_dst_spring_forward_week_moves_the_close_from_21_to_20_utc(nyse):
    friday_close = utc(2026, 3, 6, 21)  # 16:00 EST
    assert nyse.next_close(friday_close) == utc(2026, 3, 9, 20)  # 16:00 EDT
    assert nyse.sessions_closed_between(friday_close, utc(2026, 3, 9, 20, 30)) == 1
    assert nyse.is_open(utc(2026, 3, 9, 13, 45))  # 09:45 EDT
    assert not nyse.is_open(utc(2026, 3, 6, 14, 15))  # 09:15 EST


def test_dst_fall_back_week_moves_the_close_from_20_to_21_utc(nyse):
    friday_close = utc(2026, 10, 30, 20)  # 16:00 EDT
    assert nyse.sessions_closed_between(friday_close, utc(2026, 11, 2, 20, 30)) == 0
    assert nyse.is_open(utc(2026, 11, 2, 20, 30))  # 15:30 EST
    assert nyse.next_close(friday_close) == utc(2026, 11, 2, 21)
    assert not nyse.is_open(utc(2026, 11, 2, 14, 15))  # 09:15 EST


def test_any_utc_offset_is_accepted(nyse):
    friday_close = datetime(2026, 11, 20, 16, tzinfo=NEW_YORK_EST)
    assert nyse.sessions_closed_between(friday_close, utc(2026, 11, 23, 21, 1)) == 1


def test_naive_datetimes_are_refused(nyse):
    naive = datetime(2026, 11, 23, 12)
    with pytest.raises(ValueError, match="naive"):
        nyse.sessions_closed_between(naive, utc(2026, 11, 24))
    with pytest.raises(ValueError, match="naive"):
        nyse.sessions_closed_between(utc(2026, 11, 20), naive)
    for method in (nyse.is_open, nyse.next_open, nyse.next_close):
        with pytest.raises(ValueError, match="naive"):
            method(naive)


def test_unknown_exchange_is_refused():
    for mic in ("XXXX", "xnys", "NYSE1", "", "24/7"):
        assert not known_exchange(mic)
        with pytest.raises(UnknownExchange):
            session_clock(mic)
    assert known_exchange("XNYS") and known_exchange("XLON") and known_exchange("XNAS")


def test_times_outside_the_calendar_fail_closed(nyse):
    long_ago, far_ahead = utc(1990, 1, 2, 15), utc(2100, 1, 4, 15)
    with pytest.raises(OutsideCalendar, match="XNYS"):
        nyse.sessions_closed_between(long_ago, utc(2026, 11, 23))
    with pytest.raises(OutsideCalendar):
        nyse.sessions_closed_between(utc(2026, 11, 23), far_ahead)
    for method in (nyse.is_open, nyse.next_open, nyse.next_close):
        with pytest.raises(OutsideCalendar):
            method(far_ahead)
        with pytest.raises(OutsideCalendar):
            method(long_ago)
    with pytest.raises(OutsideCalendar):
        scheduled_session("XNYS", date(2100, 1, 4))
    # An empty or reversed interval is 0 whatever the calendar covers.
    assert nyse.sessions_closed_between(far_ahead, long_ago) == 0


def test_the_last_session_is_known_and_nothing_after_it(nyse):
    last_open = datetime.fromtimestamp(nyse.opens[-1], UTC)
    assert nyse.next_open(last_open) is None
    assert nyse.next_close(last_open) == datetime.fromtimestamp(nyse.closes[-1], UTC)


def test_a_lunch_break_is_closed():
    hong_kong = session_clock("XHKG")
    assert hong_kong.is_open(utc(2026, 11, 23, 3, 30))  # 11:30 HKT
    assert not hong_kong.is_open(utc(2026, 11, 23, 4, 30))  # 12:30 HKT, lunch
    assert hong_kong.is_open(utc(2026, 11, 23, 5, 30))  # 13:30 HKT


def test_open_is_included_and_close_excluded(nyse):
    assert not nyse.is_open(utc(2026, 11, 23, 14, 29, 59))
    assert nyse.is_open(utc(2026, 11, 23, 14, 30))
    assert nyse.is_open(utc(2026, 11, 23, 20, 59, 59, 999_999))
    assert not nyse.is_open(utc(2026, 11, 23, 21))
    assert nyse.next_open(utc(2026, 11, 23, 14, 30)) == utc(2026, 11, 24, 14, 30)
    assert nyse.next_close(utc(2026, 11, 23, 21)) == utc(2026, 11, 24, 21)
