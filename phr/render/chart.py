"""A small chart of one test repeated over time, drawn on the server as SVG (no script,
so the strict Content-Security-Policy holds and it prints): its values as a line, the
normal range as a band. The numbers always stand beside it in a table: the chart is for
people who would rather look, the table for everyone else and for screen readers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .dates import day

WIDTH, HEIGHT = 320, 160
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44, 12, 12, 28


@dataclass(frozen=True)
class Point:
    when: datetime
    value: Decimal


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    line: str  # the polyline's points attribute
    dots: list[tuple[float, float]]
    band: tuple[float, float, float, float] | None  # the normal range: x, y, width, height
    y_labels: list[tuple[float, str]]  # y position, value
    x_labels: list[tuple[float, str]]  # x position, date
    plot: tuple[float, float, float, float]  # left, top, right, bottom


def _words(value: Decimal) -> str:
    return f"{value.normalize():f}" if value == value.to_integral() else f"{value:f}"


def draw(points: list[Point], low: Decimal | None = None, high: Decimal | None = None) -> Chart | None:
    """The chart's geometry, or None with fewer than two points to join."""
    points = sorted(points, key=lambda p: p.when)
    if len(points) < 2:
        return None
    values = [p.value for p in points] + [b for b in (low, high) if b is not None]
    bottom, top = min(values), max(values)
    if top == bottom:
        top, bottom = top + 1, bottom - 1
    margin = (top - bottom) / 10
    top, bottom = top + margin, bottom - margin
    first, last = points[0].when.timestamp(), points[-1].when.timestamp()
    span = (last - first) or 1.0
    left, right = PAD_LEFT, WIDTH - PAD_RIGHT
    upper, lower = PAD_TOP, HEIGHT - PAD_BOTTOM

    def x(when: datetime) -> float:
        return round(left + (when.timestamp() - first) / span * (right - left), 1)

    def y(value: Decimal) -> float:
        return round(lower - float((value - bottom) / (top - bottom)) * (lower - upper), 1)

    dots = [(x(p.when), y(p.value)) for p in points]
    band = None
    if low is not None or high is not None:
        band_top = y(high) if high is not None else upper
        band_bottom = y(low) if low is not None else lower
        band = (left, band_top, right - left, round(band_bottom - band_top, 1))
    shown = sorted({min(p.value for p in points), max(p.value for p in points)})
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        line=" ".join(f"{px},{py}" for px, py in dots),
        dots=dots,
        band=band,
        y_labels=[(y(v), _words(v)) for v in shown],
        x_labels=[(x(points[0].when), day(points[0].when)), (x(points[-1].when), day(points[-1].when))],
        plot=(left, upper, right, lower),
    )
