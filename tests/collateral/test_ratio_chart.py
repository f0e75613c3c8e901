"""The backing-ratio chart's geometry (framework-free): a step line inside its box, gaps
where the ratio is unknown, a range that shows a few basis points."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audits.core.ratio_chart import Box, Point, chart, percent, summary, y_range

END = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
START = END - timedelta(days=30)
BOX = Box()


def coordinates(path: str) -> list[tuple[str, Decimal]]:
    """("M", x), ("M", y), ("H", x), ("V", y) in order."""
    out = []
    for command, args in re.findall(r"([MHV])([^MHV]*)", path):
        numbers = [Decimal(n) for n in args.split()]
        if command == "M":
            out += [("x", numbers[0]), ("y", numbers[1])]
        else:
            out.append(("x" if command == "H" else "y", numbers[0]))
    return out


def runs_of_known(points, start=START, end=END) -> int:
    """How many unbroken stretches of known ratio have a width on the chart."""
    points = [p for p in sorted(points, key=lambda p: p.at) if p.at <= end]
    runs, inside = 0, False
    for i, p in enumerate(points):
        following = points[i + 1].at if i + 1 < len(points) else end
        if p.ratio is None:
            inside = False
        elif min(max(following, start), end) > max(p.at, start):
            runs += 0 if inside else 1
            inside = True
    return runs


ratios = st.one_of(
    st.none(),
    st.decimals(min_value=Decimal(0), max_value=Decimal(3), places=8, allow_nan=False),
)
moments = st.integers(min_value=-5 * 86_400, max_value=30 * 86_400).map(
    lambda s: START + timedelta(seconds=s)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(moments, ratios), max_size=40), st.sampled_from([None, 10, 100, 10_000]))
def test_every_coordinate_inside_the_box_x_never_goes_back_and_unknown_is_a_gap(raw, breach_bps):
    points = [Point(at, r) for at, r in raw]
    breach = None if breach_bps is None else 1 - Decimal(breach_bps) / 10_000
    drawn = chart(points, START, END, BOX, breach=breach)
    left, right = Decimal(BOX.left), Decimal(BOX.width - BOX.right)
    top, bottom = Decimal(BOX.top), Decimal(BOX.height - BOX.bottom)
    xs = []
    for axis, value in coordinates(drawn.path):
        if axis == "x":
            assert left <= value <= right
            xs.append(value)
        else:
            assert top <= value <= bottom
    assert xs == sorted(xs)
    assert drawn.path.count("M") == runs_of_known(points)
    for tick in drawn.y_ticks:
        assert top <= Decimal(tick.at) <= bottom
    for tick in drawn.x_ticks:
        assert left <= Decimal(tick.at) <= right
    assert top <= Decimal(drawn.reference_y) <= bottom
    if drawn.breach_y is not None:
        assert top <= Decimal(drawn.breach_y) <= bottom
    if drawn.marker:
        assert left <= Decimal(drawn.marker[0]) <= right
        assert top <= Decimal(drawn.marker[1]) <= bottom


def test_a_step_line_holds_each_ratio_until_the_next():
    points = [
        Point(START - timedelta(days=2), Decimal(1)),  # before the window: holds at its edge
        Point(START + timedelta(days=10), Decimal("0.99875")),
        Point(START + timedelta(days=20), None),
        Point(START + timedelta(days=25), Decimal(1)),
    ]
    drawn = chart(points, START, END, BOX, breach=Decimal("0.999"))
    # 100 % and 99.875 % are 12.5 bps apart: the range is a fraction of a percent.
    low, high, _ = y_range([Decimal(1), Decimal("0.99875")], Decimal("0.999"))
    assert Decimal("0.995") <= low < Decimal("0.99875") and Decimal(1) < high <= Decimal("1.005")
    path = drawn.path
    assert path.startswith("M48.00 ") and path.count("M") == 2
    x10 = Decimal(48) + Decimal(264) * 10 / 30
    x20 = Decimal(48) + Decimal(264) * 20 / 30
    x25 = Decimal(48) + Decimal(264) * 25 / 30
    assert f"H{x10:.2f}V" in path and path.split("M")[1].endswith(f"H{x20:.2f}")
    assert path.split("M")[2].startswith(f"{x25:.2f} ") and path.endswith("H312.00")
    # 99.875 % lies below the 100 % line and below the breach line (99.9 %).
    levels = [Decimal(v) for v in re.findall(r"V([\d.]+)", path)]
    assert levels[0] > Decimal(drawn.breach_y) > Decimal(drawn.reference_y)
    assert drawn.marker == ("312.00", drawn.reference_y)
    assert drawn.summary == "Lowest 99.87 % on 9 Nov; now 100.00 %; unknown at times."
    assert [t.label for t in drawn.x_ticks] == ["1 Nov", "8 Nov", "15 Nov", "22 Nov", "29 Nov"]
    assert "100.0 %" in [t.label for t in drawn.y_ticks]


def test_nothing_known():
    drawn = chart([], START, END, BOX)
    assert drawn.path == "" and drawn.marker is None
    assert drawn.summary == "No reconciliation in this period."
    unknown = chart([Point(START + timedelta(days=1), None)], START, END, BOX)
    assert unknown.path == "" and unknown.marker is None
    assert unknown.summary == "No known ratio in this period; now unknown."


def test_far_off_figures_are_clamped_but_told_exactly():
    drawn = chart([Point(START + timedelta(days=1), Decimal("0.5"))], START, END, BOX)
    assert drawn.summary == "Lowest 50.00 % on 31 Oct; now 50.00 %."
    assert coordinates(drawn.path)[1] == ("y", Decimal(BOX.height - BOX.bottom))


def test_percent_rounds_down():
    assert percent(Decimal("0.99875")) == "99.87 %"
    assert percent(Decimal("1")) == "100.00 %"
    assert summary([Point(END, Decimal("0.9999999"))], START).startswith("Lowest 99.99 %")


def test_an_empty_window_is_refused():
    with pytest.raises(ValueError):
        chart([], END, END, BOX)
