"""A test repeated over time: the values of one kind of result on a patient's record,
for the chart and table on a result's page.

Works on entries the view has already read through consent.policy (which decided and
audited the read): the same test is the same code (or, with no code, the same name), in
the same unit, so that no two different things share a line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from phr.columns import parse_fhir_datetime
from phr.models import RecordEntry
from phr.render.chart import Chart, Point, draw
from phr.render.dates import day
from phr.render.values import Measurement, measurement, number_words

from .record_display import decode


@dataclass(frozen=True)
class Row:
    when: str
    value: str
    entry: RecordEntry


@dataclass(frozen=True)
class Series:
    unit: str
    rows: list[Row]  # newest first, for the table
    chart: Chart | None
    low: str
    high: str


def _codes(resource: dict) -> frozenset[tuple[str, str]]:
    codings = (resource.get("code") or {}).get("coding") or ()
    return frozenset((str(c.get("system")), str(c.get("code"))) for c in codings if isinstance(c, dict))


def _reading(resource: dict) -> tuple[datetime, Decimal, str, Measurement] | None:
    """When the result was taken, its number, its unit in words and the whole reading
    (phr.render's one reading of a value): None when it is not a plain number."""
    found = measurement(resource)
    when = parse_fhir_datetime(str(resource.get("effectiveDateTime") or resource.get("issued") or ""))
    if found is None or found.number is None or when is None:
        return None
    return when, found.number, found.unit, found


def series_for(entry: RecordEntry, candidates: Iterable[RecordEntry]) -> Series | None:
    """The series the entry belongs to, or None when it is not a number repeated at
    least twice in the same unit."""
    try:
        resource = decode(entry.json)
    except ValueError:
        return None
    if not isinstance(resource, dict) or resource.get("resourceType") != "Observation":
        return None
    own = _reading(resource)
    if own is None:
        return None
    codes, unit = _codes(resource), own[2]
    readings: dict[object, tuple[datetime, Decimal, RecordEntry]] = {}
    for other in candidates:
        try:
            theirs = decode(other.json)
        except ValueError:
            continue
        if not isinstance(theirs, dict) or (codes and not codes & _codes(theirs)):
            continue
        reading = _reading(theirs)
        if reading is not None and reading[2] == unit:
            readings[other.pk] = (reading[0], reading[1], other)
    readings[entry.pk] = (own[0], own[1], entry)
    if len(readings) < 2:
        return None
    ordered = sorted(readings.values(), key=lambda r: r[0])
    low, high = own[3].low, own[3].high
    return Series(
        unit=unit,
        rows=[Row(day(when), number_words(value), item) for when, value, item in reversed(ordered)],
        chart=draw([Point(when, value) for when, value, _ in ordered], low, high),
        low=f"{low:f}" if low is not None else "",
        high=f"{high:f}" if high is not None else "",
    )
