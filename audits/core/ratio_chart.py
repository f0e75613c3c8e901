"""The geometry of a backing-ratio chart: a step line over a time window, as SVG path data.

Framework-free and exact: ratios are Decimals, times are aware datetimes, and everything
drawn comes out as strings with two decimal places. Each reconciliation's ratio holds from
its instant until the next one's (a step, not a slope: nothing was measured in between); an
unknown ratio leaves a gap. The vertical range is chosen around 100 % so that a shortfall of
a few basis points is visible, and clamped, so one wild figure cannot flatten the rest (the
text summary carries the exact figures).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

ONE = Decimal(1)
#: The range always shows at least 100 % ± this, so a flat line is not magnified into noise.
MIN_HALF_SPAN = Decimal("0.001")
#: Figures beyond these are drawn at the edge.
FLOOR, CEILING = Decimal("0.8"), Decimal("1.2")
#: Tick steps (as ratios) from finest to coarsest; at most MAX_Y_TICKS intervals are drawn.
NICE_STEPS = tuple(
    Decimal(s) for s in ("0.0005", "0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "0.1")
)
MAX_Y_TICKS = 4
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TWO_PLACES = Decimal("0.01")


@dataclass(frozen=True)
class Point:
    """From `at` on, the ratio was `ratio` (None: unknown)."""

    at: datetime
    ratio: Decimal | None


@dataclass(frozen=True)
class Box:
    """The SVG's size and the margins around the plot area (for the axis labels)."""

    width: int = 320
    height: int = 120
    left: int = 48
    right: int = 8
    top: int = 8
    bottom: int = 20


@dataclass(frozen=True)
class Tick:
    at: str  # the x or y coordinate
    label: str


@dataclass(frozen=True)
class Chart:
    width: str
    height: str
    left: str
    right: str
    top: str
    bottom: str
    plot_width: str
    plot_height: str
    #: the step line, one "M" per unbroken run; empty when nothing is known in the window
    path: str
    #: where the latest known figure stands (x, y), or None
    marker: tuple[str, str] | None
    reference_y: str
    breach_y: str | None
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    summary: str


def _fmt(value: Decimal) -> str:
    return str(value.quantize(TWO_PLACES))


def percent(ratio: Decimal) -> str:
    """The ratio as a percentage with two places, rounded down (never flatter than it is)."""
    return f"{(ratio * 100).quantize(TWO_PLACES, rounding=ROUND_FLOOR)} %"


def day_label(at: datetime) -> str:
    return f"{at.day} {MONTHS[at.month - 1]}"


def _micros(delta: timedelta) -> Decimal:
    return Decimal(delta // timedelta(microseconds=1))


def y_range(
    ratios: Sequence[Decimal], breach: Decimal | None = None
) -> tuple[Decimal, Decimal, Decimal]:
    """(low, high, step): a range holding 100 %, the figures and the breach level (clamped
    to FLOOR..CEILING), widened to whole steps of a nice size."""
    values = [min(max(r, FLOOR), CEILING) for r in ratios]
    values += [ONE - MIN_HALF_SPAN, ONE + MIN_HALF_SPAN]
    if breach is not None and FLOOR <= breach <= CEILING:
        values.append(breach)
    low, high = min(values), max(values)
    for step in NICE_STEPS:
        lo = (low / step).to_integral_value(ROUND_FLOOR) * step
        hi = (high / step).to_integral_value(ROUND_CEILING) * step
        if (hi - lo) / step <= MAX_Y_TICKS:
            break
    return max(lo, FLOOR), min(hi, CEILING), step


def _step_label(value: Decimal, step: Decimal) -> str:
    exponent = (step * 100).normalize().as_tuple().exponent
    places = max(0, -exponent) if isinstance(exponent, int) else 0
    return f"{(value * 100).quantize(Decimal(1).scaleb(-places))} %"


def summary(points: Sequence[Point], start: datetime) -> str:
    """ "Lowest 99.87 % on 27 Nov; now 100.00 %", in words a screen reader reads out."""
    known = [(max(p.at, start), p.ratio) for p in points if p.ratio is not None]
    if not points:
        return "No reconciliation in this period."
    now = points[-1].ratio
    now_text = f"now {percent(now)}" if now is not None else "now unknown"
    if not known:
        return f"No known ratio in this period; {now_text}."
    at, lowest = min(known, key=lambda k: (k[1], k[0]))
    gaps = any(p.ratio is None for p in points)
    unknown = "; unknown at times" if gaps and now is not None else ""
    return f"Lowest {percent(lowest)} on {day_label(at)}; {now_text}{unknown}."


def chart(
    points: Sequence[Point],
    start: datetime,
    end: datetime,
    box: Box = Box(),
    breach: Decimal | None = None,
) -> Chart:
    """The chart of ``points`` (oldest first; one may precede ``start``: its ratio holds at
    the window's edge) between ``start`` and ``end``. ``breach`` is the ratio below which
    the asset is in breach (a dashed line), if any."""
    if end <= start:
        raise ValueError("the window must end after it starts")
    points = sorted(points, key=lambda p: p.at)
    left, right = Decimal(box.left), Decimal(box.width - box.right)
    top, bottom = Decimal(box.top), Decimal(box.height - box.bottom)
    span = _micros(end - start)

    def x(at: datetime) -> Decimal:
        at = min(max(at, start), end)
        return left + (right - left) * _micros(at - start) / span

    in_window = [p for p in points if p.at <= end]
    ratios = [p.ratio for p in in_window if p.ratio is not None]
    low, high, step = y_range(ratios, breach)

    def y(ratio: Decimal) -> Decimal:
        ratio = min(max(ratio, low), high)
        return top + (bottom - top) * (high - ratio) / (high - low)

    parts: list[str] = []
    drawing = False
    marker = None
    for i, p in enumerate(in_window):
        x0 = x(p.at)
        x1 = x(in_window[i + 1].at) if i + 1 < len(in_window) else right
        if p.ratio is None:
            drawing = False
            continue
        marker = (_fmt(x1), _fmt(y(p.ratio)))
        if x1 <= x0:
            continue  # superseded within the same instant, before the window, or at its end
        level = _fmt(y(p.ratio))
        if drawing:
            parts.append(f"V{level}")
        else:
            parts.append(f"M{_fmt(x0)} {level}")
            drawing = True
        parts.append(f"H{_fmt(x1)}")
    if in_window and in_window[-1].ratio is None:
        marker = None

    x_ticks = []
    day = end.replace(hour=0, minute=0, second=0, microsecond=0)
    while day >= start:
        x_ticks.append(Tick(_fmt(x(day)), day_label(day)))
        day -= timedelta(days=7)
    y_ticks = []
    value = low
    while value <= high:
        y_ticks.append(Tick(_fmt(y(value)), _step_label(value, step)))
        value += step
    return Chart(
        width=str(box.width),
        height=str(box.height),
        left=_fmt(left),
        right=_fmt(right),
        top=_fmt(top),
        bottom=_fmt(bottom),
        plot_width=_fmt(right - left),
        plot_height=_fmt(bottom - top),
        path="".join(parts),
        marker=marker,
        reference_y=_fmt(y(ONE)),
        breach_y=_fmt(y(breach)) if breach is not None and low <= breach <= high else None,
        x_ticks=tuple(reversed(x_ticks)),
        y_ticks=tuple(reversed(y_ticks)),
        summary=summary(in_window, start),
    )
