"""Benchmark: statement age in sessions, 10,000 times (issue 10: reconciliation of a run).

Times `SessionClock.sessions_closed_between` (two bisects over precomputed epoch seconds)
against the same question asked of exchange_calendars directly (`sessions_in_range` and the
sessions' closes), on the same 10,000 random (as-of, now) pairs, and checks both agree.

    .venv/bin/python bench/market_hours_bench.py [--mic XNYS] [--calls 10000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd
from exchange_calendars import get_calendar

from audits.core.market_hours import session_clock


def library_count(calendar, start: datetime, end: datetime) -> int:
    """The library's answer: sessions between the two dates whose close is in (start, end]."""
    first = max(pd.Timestamp(start.date()), calendar.first_session)
    last = min(pd.Timestamp(end.date()), calendar.last_session)
    if first > last:
        return 0
    closes = calendar.closes.loc[calendar.sessions_in_range(first, last)]
    return int(((closes > pd.Timestamp(start)) & (closes <= pd.Timestamp(end))).sum())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mic", default="XNYS")
    parser.add_argument("--calls", type=int, default=10_000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the library's pandas deprecation warnings

    t0 = time.perf_counter()
    clock = session_clock(args.mic)
    built = time.perf_counter() - t0
    calendar = get_calendar(args.mic)

    rng = random.Random(10)
    last = datetime.fromtimestamp(clock.last, UTC)
    recent = last - timedelta(days=400)
    pairs = []
    for _ in range(args.calls):
        now = recent + timedelta(seconds=rng.randrange(int((last - recent).total_seconds())))
        as_of = now - timedelta(seconds=rng.randrange(14 * 86400))
        pairs.append((as_of, now))

    t0 = time.perf_counter()
    ours = [clock.sessions_closed_between(a, b) for a, b in pairs]
    ours_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    theirs = [library_count(calendar, a, b) for a, b in pairs]
    theirs_s = time.perf_counter() - t0

    mismatches = sum(1 for x, y in zip(ours, theirs, strict=True) if x != y)
    print(f"{args.mic}: clock built in {built:.3f} s (library calendar included)")
    print(f"SessionClock.sessions_closed_between: {args.calls} calls in {ours_s * 1000:.1f} ms "
          f"({ours_s / args.calls * 1e6:.2f} µs per call)")  # fmt: skip
    print(f"exchange_calendars sessions_in_range + closes: {args.calls} calls in {theirs_s:.2f} s "
          f"({theirs_s / args.calls * 1e6:.0f} µs per call)")  # fmt: skip
    print(f"speed-up x{theirs_s / ours_s:.0f}; answers differing: {mismatches}")
    if mismatches:
        sys.exit(1)


if __name__ == "__main__":
    main()
