"""The bisect tables checked against exchange_calendars' own API, and properties of the count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from exchange_calendars import get_calendar
from hypothesis import given, settings
from hypothesis import strategies as st

from audits.core.market_hours import session_clock

MICS = ["XNYS", "XLON", "XHKG", "XTKS"]
NYSE = session_clock("XNYS")
# Whole seconds inside the calendar, a little inside its edges.
instants = st.integers(min_value=NYSE.first, max_value=NYSE.last).map(
    lambda s: datetime.fromtimestamp(s, UTC)
)


def _library_count(calendar, start: datetime, end: datetime) -> int:
    """Sessions whose close is in (start, end], asked of the library session by session."""
    if end <= start:
        return 0
    first = max(pd.Timestamp(start.date()) - pd.Timedelta(days=2), calendar.first_session)
    last = min(pd.Timestamp(end.date()) + pd.Timedelta(days=2), calendar.last_session)
    return sum(
        1
        for session in calendar.sessions_in_range(first, last)
        if pd.Timestamp(start) < calendar.session_close(session) <= pd.Timestamp(end)
    )


@pytest.mark.parametrize("mic", MICS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_count_matches_the_library(mic, data):
    clock, calendar = session_clock(mic), get_calendar(mic)
    start = data.draw(
        st.integers(min_value=clock.first, max_value=clock.last).map(
            lambda s: datetime.fromtimestamp(s, UTC)
        )
    )
    span = data.draw(st.integers(min_value=0, max_value=60 * 86400))
    end = min(start + timedelta(seconds=span), datetime.fromtimestamp(clock.last, UTC))
    assert clock.sessions_closed_between(start, end) == _library_count(calendar, start, end)


@pytest.mark.parametrize("mic", MICS)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_is_open_matches_the_library_minute_by_minute(mic, data):
    clock, calendar = session_clock(mic), get_calendar(mic)
    minute = data.draw(st.integers(min_value=clock.first // 60, max_value=clock.last // 60 - 1))
    at = datetime.fromtimestamp(minute * 60, UTC)
    assert clock.is_open(at) == calendar.is_open_on_minute(pd.Timestamp(at))


@pytest.mark.parametrize("mic", MICS)
def test_every_close_and_open_is_the_library_session_close(mic):
    clock, calendar = session_clock(mic), get_calendar(mic)
    sessions = calendar.sessions
    assert len(clock.closes) == len(sessions)
    for i in range(0, len(sessions), 97):  # a spread of sessions, not the whole table
        assert clock.closes[i] == calendar.session_close(sessions[i]).timestamp()
        assert clock.opens[i] == calendar.session_open(sessions[i]).timestamp()


@settings(max_examples=300, deadline=None)
@given(a=instants, b=instants, c=instants)
def test_counts_add_up_over_consecutive_intervals(a, b, c):
    a, b, c = sorted((a, b, c))
    assert NYSE.sessions_closed_between(a, b) + NYSE.sessions_closed_between(
        b, c
    ) == NYSE.sessions_closed_between(a, c)


@settings(max_examples=300, deadline=None)
@given(start=instants, end=instants, later=instants)
def test_count_never_decreases_as_the_end_moves_later(start, end, later):
    end, later = sorted((end, later))
    assert NYSE.sessions_closed_between(start, end) <= NYSE.sessions_closed_between(start, later)
    assert NYSE.sessions_closed_between(later, end) == 0  # reversed or empty interval
