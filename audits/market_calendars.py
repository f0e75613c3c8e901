"""Trading-session clocks for exchanges: the library's calendar plus admin-entered closures.

Reconciliation measures a statement's age in sessions of the asset's home exchange; this is
where it gets the clocks. Closures are read on every call (one cheap query for all MICs), so a
closure saved in the admin counts at once; the clocks themselves are cached by
`audits.core.market_hours` per MIC and set of closure dates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime

from audits.core.market_hours import SessionClock, session_clock
from audits.models import MarketClosure

DEFAULT_MIC = "XNYS"


def clocks_for(mics: Iterable[str]) -> dict[str, SessionClock]:
    """One clock per MIC, with one query for the closures of all of them.

    Raises `UnknownExchange` for a MIC the calendar library does not know.
    """
    wanted = set(mics)
    if not wanted:
        return {}
    closures: dict[str, set[date]] = defaultdict(set)
    for mic, day in MarketClosure.objects.filter(mic__in=wanted).values_list("mic", "date"):
        closures[mic].add(day)
    return {mic: session_clock(mic, closures[mic]) for mic in sorted(wanted)}


def clock_for(mic: str) -> SessionClock:
    """The clock of one exchange (library calendar minus its admin-entered closures)."""
    return clocks_for([mic])[mic]


def market_state(mic: str, now: datetime) -> dict:
    """Whether `mic` trades at `now` and when it next opens and closes, for the API feed."""
    clock = clock_for(mic)
    next_open = clock.next_open(now)
    next_close = clock.next_close(now)
    return {
        "mic": mic,
        "open": clock.is_open(now),
        "next_open": next_open.isoformat() if next_open else None,
        "next_close": next_close.isoformat() if next_close else None,
    }
