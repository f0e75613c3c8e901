"""Trading sessions of an exchange, for measuring how old a custodian statement is.

Custodians report on trading days of the asset's home exchange (an ISO 10383 MIC), not on
weekends or exchange holidays, while chains run 24/7. So a statement's age is counted in
sessions of that exchange that have *closed* since the statement's as-of, not in hours.

The schedule comes from exchange_calendars (regular hours, holidays, early closes and past
ad-hoc closures). Building a calendar takes about half a second, so each MIC is built once
per process and turned into sorted tuples of epoch seconds: a question is then one or two
bisects, with no pandas per call (reconciliation asks it for every statement of a run).
Closures announced after the library's release are passed in as `extra_closures`.

Everything outside the calendar's range raises `OutsideCalendar`: an age we cannot know must
not read as "fresh" (callers fail closed).
"""

from __future__ import annotations

import re
import threading
import warnings
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import exchange_calendars

__all__ = [
    "OutsideCalendar",
    "SessionClock",
    "UnknownExchange",
    "known_exchange",
    "scheduled_session",
    "session_clock",
]

_MIC = re.compile(r"[A-Z0-9]{4}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


class UnknownExchange(ValueError):
    """The MIC is not one exchange_calendars knows."""


class OutsideCalendar(ValueError):
    """A time before the first or after the last session the calendar knows."""


def known_exchange(mic: str) -> bool:
    """Four capitals or digits, and a calendar exchange_calendars has (aliases such as XNAS
    included: they share another exchange's schedule)."""
    return isinstance(mic, str) and _MIC.fullmatch(mic) is not None and mic in _calendar_names()


@lru_cache(maxsize=1)
def _calendar_names() -> frozenset[str]:
    return frozenset(exchange_calendars.get_calendar_names(include_aliases=True))


def _seconds(at: datetime, what: str) -> int:
    """Whole epoch seconds, floored: every open and close is on a whole second, so flooring
    never moves an instant across one."""
    if not isinstance(at, datetime):
        raise TypeError(f"{what} must be a datetime, not {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} is a naive datetime ({at.isoformat()}); give it a UTC offset")
    return (at - _EPOCH) // _SECOND


def _instant(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


@dataclass(frozen=True)
class SessionClock:
    """The sessions of one exchange as sorted epoch seconds (UTC).

    `opens[i]` and `closes[i]` belong to session i. `trading_starts`/`trading_ends` are the
    intervals in which the market actually trades: the session itself, or its two halves
    around a lunch break on exchanges that have one. `first`/`last` bound what the clock
    knows (the first open and the last close).
    """

    mic: str
    opens: tuple[int, ...] = field(repr=False)
    closes: tuple[int, ...] = field(repr=False)
    trading_starts: tuple[int, ...] = field(repr=False)
    trading_ends: tuple[int, ...] = field(repr=False)
    first: int
    last: int

    def _inside(self, seconds: int, at: datetime, what: str) -> None:
        if not self.first <= seconds <= self.last:
            raise OutsideCalendar(
                f"{what} {at.isoformat()} is outside the {self.mic} calendar "
                f"({_instant(self.first).isoformat()} to {_instant(self.last).isoformat()})"
            )

    def sessions_closed_between(self, start: datetime, end: datetime) -> int:
        """Sessions whose close is in (start, end]; 0 if end <= start."""
        s = _seconds(start, "start")
        e = _seconds(end, "end")
        if e <= s:
            return 0
        self._inside(s, start, "start")
        self._inside(e, end, "end")
        return bisect_right(self.closes, e) - bisect_right(self.closes, s)

    def is_open(self, at: datetime) -> bool:
        """Trading at `at`: from an open (included) to a close (excluded), not in a break."""
        t = _seconds(at, "at")
        self._inside(t, at, "at")
        i = bisect_right(self.trading_starts, t) - 1
        return i >= 0 and t < self.trading_ends[i]

    def next_open(self, at: datetime) -> datetime | None:
        """The first session open after `at`; None if the calendar ends before one."""
        t = _seconds(at, "at")
        self._inside(t, at, "at")
        i = bisect_right(self.opens, t)
        return _instant(self.opens[i]) if i < len(self.opens) else None

    def next_close(self, at: datetime) -> datetime | None:
        """The first session close after `at` (the session's, not a lunch break's)."""
        t = _seconds(at, "at")
        self._inside(t, at, "at")
        i = bisect_right(self.closes, t)
        return _instant(self.closes[i]) if i < len(self.closes) else None


# One session as (date, open, close, break start or None, break end or None).
_Session = tuple[date, int, int, int | None, int | None]

_build_lock = threading.Lock()


def _epoch_list(series) -> list[int | None]:
    return [None if ts is None or ts != ts else int(ts.timestamp()) for ts in series]


@lru_cache(maxsize=64)
def _sessions(mic: str) -> tuple[_Session, ...]:
    """The library's sessions of `mic`, built once per process (about 0.5 s)."""
    with warnings.catch_warnings():
        # exchange-calendars 4.13 reads Series.values, which pandas 3.1 deprecates for pandas 4
        # (pinned at 3.1 here); the values it reads are the same.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        calendar = exchange_calendars.get_calendar(mic)
    opens = (calendar.opens.array.asi8 // 1_000_000_000).tolist()
    closes = (calendar.closes.array.asi8 // 1_000_000_000).tolist()
    labels = [ts.date() for ts in calendar.sessions]
    break_starts = _epoch_list(calendar.break_starts.to_list())
    break_ends = _epoch_list(calendar.break_ends.to_list())
    return tuple(zip(labels, opens, closes, break_starts, break_ends, strict=True))


@lru_cache(maxsize=256)
def _clock(mic: str, extra_closures: frozenset[date]) -> SessionClock:
    with _build_lock:  # two threads asking at once build the calendar once
        sessions = _sessions(mic)
    first, last = sessions[0][1], sessions[-1][2]
    kept = [s for s in sessions if s[0] not in extra_closures]
    starts: list[int] = []
    ends: list[int] = []
    for _, open_, close, break_start, break_end in kept:
        if break_start is not None and break_end is not None and break_start < break_end:
            starts += (open_, break_end)
            ends += (break_start, close)
        else:
            starts.append(open_)
            ends.append(close)
    return SessionClock(
        mic=mic,
        opens=tuple(s[1] for s in kept),
        closes=tuple(s[2] for s in kept),
        trading_starts=tuple(starts),
        trading_ends=tuple(ends),
        first=first,
        last=last,
    )


def session_clock(mic: str, extra_closures: Iterable[date] = ()) -> SessionClock:
    """The clock of `mic` with the sessions on `extra_closures` dates removed.

    Cached per (mic, set of extra closures); the library calendar is cached per MIC.
    """
    if not known_exchange(mic):
        raise UnknownExchange(
            f"{mic!r} is not an exchange (ISO 10383 MIC) exchange_calendars knows"
        )
    closures = frozenset(extra_closures)
    for day in closures:
        if not isinstance(day, date) or isinstance(day, datetime):
            raise TypeError(f"extra closures are dates, not {type(day).__name__}")
    return _clock(mic, closures)


@lru_cache(maxsize=64)
def _session_dates(mic: str) -> frozenset[date]:
    with _build_lock:
        return frozenset(s[0] for s in _sessions(mic))


def scheduled_session(mic: str, day: date) -> bool:
    """Whether the library's calendar has `mic` trading on `day` (before extra closures)."""
    if not known_exchange(mic):
        raise UnknownExchange(
            f"{mic!r} is not an exchange (ISO 10383 MIC) exchange_calendars knows"
        )
    with _build_lock:
        sessions = _sessions(mic)
    if not sessions[0][0] <= day <= sessions[-1][0]:
        raise OutsideCalendar(
            f"{day.isoformat()} is outside the {mic} calendar "
            f"({sessions[0][0].isoformat()} to {sessions[-1][0].isoformat()})"
        )
    return day in _session_dates(mic)
