"""FHIR search parameters for the stored record, parsed from a query string into filters
on the permitted queryset the policy hands out. No HTTP and no policy here.

What each parameter matches:
- ``patient``: the network patient's UUID (``<uuid>`` or ``Patient/<uuid>``); it chooses
  whose record the policy opens.
- ``_id``: the resource's stored id (as the data owner sent it), comma-separated for any.
- ``date`` (the column ``clinical_date``, the date a patient would recognise) and
  ``_lastUpdated``, with the prefixes eq (the default), gt, lt, ge and le, at the precision
  given (a year, a month, a day or an instant); repeat a parameter to give a range.
- ``category`` and ``code``: a token, ``code`` or ``system|code``, matched against the
  stored JSON text (``"code":"<code>"``, and ``"system":"<system>"`` when given). This is a
  deliberate approximation: it does not check that the system and the code sit in the same
  coding, nor in the element the parameter names. It never reads a row the policy did not
  permit, because it only narrows the permitted queryset.
- ``_count`` (default 50, at most 500) and ``_offset`` (from 0 to MAX_OFFSET) page the results.
- ``_sort``: ``date``, ``_lastUpdated``, either with ``-`` for newest first, comma-separated;
  ties are broken by the entry's id so that pages never overlap.
- ``_summary=count`` answers the total only; ``_summary=false`` is the full resources.
- ``_elements``: comma-separated top-level element names; each resource keeps those, its
  mandatory elements and id, meta and resourceType, and is tagged SUBSETTED.

The searches of the portal's own resources (Consent, AuditEvent, Provenance, Task,
Communication) answer the same way (``parse_answer``): paging, ``_summary``, ``_elements``,
and ``_sort`` by the dates each view names, sorted in the database where the rows have the
column (``sort_rows``) and otherwise by the value in the built resource (``sort_items``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter

import orjson
from django.db.models import F, Q, QuerySet

DEFAULT_COUNT = 50
MAX_COUNT = 500
# No search has this many results; a larger offset is refused rather than sent to a
# database, which fails on a number beyond its integers (SQLite's and PostgreSQL's 64 bits).
MAX_OFFSET = 2**31 - 1
PREFIXES = ("eq", "gt", "lt", "ge", "le")
# Parameters every search accepts and ignores: the format is always JSON.
IGNORED = frozenset({"_format"})
# What a search answers with: every search that takes _summary and _elements takes both.
SHAPE_PARAMS = frozenset({"_summary", "_elements"})
# How a search answers, whatever it filters by: which page, in what order, in what shape.
ANSWER_PARAMS = frozenset({"_count", "_offset", "_sort", *SHAPE_PARAMS})
RECORD_PARAMS = frozenset({"patient", "_id", "_lastUpdated", "category", "code", "date", *ANSWER_PARAMS})
SORT_COLUMNS = {"date": "clinical_date", "_lastUpdated": "last_updated_at"}
ELEMENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")


class SearchError(ValueError):
    """A search parameter the server cannot use; ``parameter`` names it for the outcome."""

    def __init__(self, parameter: str, message: str, *, code: str = "invalid"):
        super().__init__(message)
        self.parameter = parameter
        self.message = message
        self.code = code  # the OperationOutcome issue code: invalid, or too-costly


@dataclass
class Page:
    count: int = DEFAULT_COUNT
    offset: int = 0

    def of(self, found):
        """This page of a queryset or a list, already in the order it is answered in."""
        return found[self.offset : self.offset + self.count]


@dataclass
class Shape:
    """What each match is answered with: nothing but the total, or some of its elements."""

    count_only: bool = False
    elements: frozenset[str] = frozenset()


@dataclass
class Answer:
    """How a search of the portal's own resources answers: which page, in _sort's order
    (each key what sort_rows or sort_items sorts by, and whether newest first), and shape."""

    page: Page = field(default_factory=Page)
    shape: Shape = field(default_factory=Shape)
    sort: list[tuple[object, bool]] = field(default_factory=list)


@dataclass
class RecordSearch:
    """A parsed search of one patient's stored record."""

    patient: str | None = None
    ids: list[str] = field(default_factory=list)
    dates: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    updated: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    categories: list[list[tuple[str, str]]] = field(default_factory=list)
    codes: list[list[tuple[str, str]]] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (column, newest first)
    page: Page = field(default_factory=Page)
    shape: Shape = field(default_factory=Shape)

    def apply(self, entries: QuerySet) -> QuerySet:
        """Narrow (already permitted) entries to those that match every parameter."""
        if self.ids:
            entries = entries.filter(fhir_id__in=self.ids)
        for prefix, start, end in self.dates:
            entries = entries.filter(_range_q("clinical_date", prefix, start, end))
        for prefix, start, end in self.updated:
            entries = entries.filter(_range_q("last_updated_at", prefix, start, end))
        for tokens in (*self.categories, *self.codes):
            entries = entries.filter(_token_q(tokens))
        return entries

    def sorted(self, entries: QuerySet) -> QuerySet:
        """Order by _sort (see sort_rows)."""
        return sort_rows(entries, self.sort)


def sort_rows(rows: QuerySet, sort: list[tuple[object, bool]]) -> QuerySet:
    """Order by _sort (each key a column name or an expression); dates without a value last
    either way, then by id so that pages never overlap. No _sort keeps the rows' own order."""
    if not sort:
        return rows
    keys = []
    for column, newest in sort:
        value = F(column) if isinstance(column, str) else column
        keys.append(value.desc(nulls_last=True) if newest else value.asc(nulls_last=True))
    return rows.order_by(*keys, "pk")


def sort_items(items: list, sort: list[tuple[Callable, bool]]) -> list:
    """The same order for what a search builds in Python (each key a function of an item):
    items without a value last either way, ties in the order they were built."""
    for key, newest in reversed(sort):
        keyed = [(key(item), item) for item in items]
        dated = sorted((pair for pair in keyed if pair[0] is not None), key=itemgetter(0), reverse=newest)
        items = [item for _, item in dated] + [item for value, item in keyed if value is None]
    return items


def check_known(params, allowed: frozenset[str]) -> None:
    """Refuse any parameter this search does not support (FHIR lets a server ignore them,
    but a silently ignored filter would show a patient more than they asked for)."""
    for name in params:
        if name not in allowed and name not in IGNORED:
            raise SearchError(name, f"The search parameter '{name[:40]}' is not supported here")


def parse_page(params) -> Page:
    return Page(
        count=min(_whole(params, "_count", DEFAULT_COUNT, minimum=1), MAX_COUNT),
        offset=_whole(params, "_offset", 0, minimum=0, maximum=MAX_OFFSET),
    )


def parse_shape(params) -> Shape:
    """_summary (count or false) and _elements, or SearchError naming the one at fault."""
    shape = Shape()
    for value in params.getlist("_summary"):
        if value not in ("count", "false"):
            raise SearchError("_summary", "_summary must be count or false")
        shape.count_only = shape.count_only or value == "count"
    names = [part.strip() for value in params.getlist("_elements") for part in value.split(",")]
    for name in names:
        if not ELEMENT_NAME.match(name):
            raise SearchError("_elements", "_elements must be top-level element names separated by commas")
    shape.elements = frozenset(names)
    return shape


def parse_sort(params, keys: Mapping[str, object] = SORT_COLUMNS) -> list[tuple[object, bool]]:
    """_sort as (what to sort by, newest first) per key, among the keys this search sorts by."""
    sort = []
    for value in params.getlist("_sort"):
        for key in value.split(","):
            column = keys.get(key.removeprefix("-"))
            if column is None:
                named = [name for key in keys for name in (key, f"-{key}")]
                raise SearchError("_sort", f"_sort takes {', '.join(named[:-1])} or {named[-1]}")
            sort.append((column, key.startswith("-")))
    return sort


def parse_answer(params, filters: frozenset[str], sort_keys: Mapping[str, object]) -> Answer:
    """A portal search's paging, _summary, _elements and _sort (by ``sort_keys``), having
    refused any parameter that is neither one of those nor one of its ``filters``."""
    check_known(params, filters | ANSWER_PARAMS)
    return Answer(page=parse_page(params), shape=parse_shape(params), sort=parse_sort(params, sort_keys))


def _whole(params, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:  # not a number, or more digits than Python converts
        raise SearchError(name, f"{name} must be a whole number") from None
    if number < minimum:
        raise SearchError(name, f"{name} must be at least {minimum}")
    if maximum is not None and number > maximum:
        raise SearchError(name, f"{name} must be at most {maximum}")
    return number


def patient_id(value: str, parameter: str = "patient") -> str:
    """The patient UUID from ``<uuid>`` or ``Patient/<uuid>``."""
    raw = value.removeprefix("Patient/")
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise SearchError(parameter, f"{parameter} must be a patient id (a UUID)") from None


def parse_record_search(params, *, allowed: frozenset[str] = RECORD_PARAMS) -> RecordSearch:
    """Parse a record search's query string (a QueryDict), or raise SearchError."""
    check_known(params, allowed)
    search = RecordSearch(page=parse_page(params), shape=parse_shape(params), sort=parse_sort(params))
    if params.get("patient"):
        search.patient = patient_id(params["patient"])
    for value in params.getlist("_id"):
        search.ids += [part for part in value.split(",") if part]
    search.dates = [parse_date("date", v) for v in params.getlist("date")]
    search.updated = [parse_date("_lastUpdated", v) for v in params.getlist("_lastUpdated")]
    search.categories = [parse_tokens("category", v) for v in params.getlist("category")]
    search.codes = [parse_tokens("code", v) for v in params.getlist("code")]
    return search


def parse_date(parameter: str, value: str) -> tuple[str, datetime, datetime]:
    """A date parameter as (prefix, start, end): the instants its precision covers."""
    prefix, text = ("eq", value)
    if value[:2] in PREFIXES:
        prefix, text = value[:2], value[2:]
    elif value[:2].isalpha():
        raise SearchError(parameter, f"{parameter} takes the prefixes eq, gt, lt, ge and le only")
    bounds = _bounds(text)
    if bounds is None:
        raise SearchError(
            parameter, f"{parameter} must be a date such as 2024, 2024-03, 2024-03-01 or 2024-03-01T09:30:00Z"
        )
    return (prefix, *bounds)


def _bounds(text: str) -> tuple[datetime, datetime] | None:
    try:
        if len(text) == 4 and text.isdigit():
            start = datetime(int(text), 1, 1, tzinfo=UTC)
            return start, start.replace(year=start.year + 1)
        if len(text) == 7 and text[4] == "-":
            start = datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=UTC)
            end = (
                start.replace(year=start.year + 1, month=1)
                if start.month == 12
                else start.replace(month=start.month + 1)
            )
            return start, end
        if len(text) == 10:
            start = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return start, start + timedelta(days=1)
        if len(text) > 10 and "T" in text:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            return moment, moment + timedelta(seconds=1)
    except (ValueError, OverflowError):
        return None
    return None


def _range_q(column: str, prefix: str, start: datetime, end: datetime) -> Q:
    if prefix == "gt":
        return Q(**{f"{column}__gte": end})
    if prefix == "ge":
        return Q(**{f"{column}__gte": start})
    if prefix == "lt":
        return Q(**{f"{column}__lt": start})
    if prefix == "le":
        return Q(**{f"{column}__lt": end})
    return Q(**{f"{column}__gte": start, f"{column}__lt": end})


def parse_tokens(parameter: str, value: str) -> list[tuple[str, str]]:
    """A token parameter's comma-separated values as (system, code) pairs (either may be empty)."""
    tokens = []
    for part in value.split(","):
        system, bar, code = part.partition("|")
        if not bar:
            system, code = "", part
        if not code:
            raise SearchError(parameter, f"{parameter} must be a code or system|code")
        tokens.append((system, code))
    if not tokens:
        raise SearchError(parameter, f"{parameter} must be a code or system|code")
    return tokens


def _literal(name: str, value: str) -> str:
    # The stored text is canonical (orjson, keys sorted, no spaces), so a key and its value
    # appear exactly as orjson writes them.
    return f'"{name}":{orjson.dumps(value).decode()}'


def _token_q(tokens: list[tuple[str, str]]) -> Q:
    match = Q()
    for system, code in tokens:
        one = Q(json__contains=_literal("code", code))
        if system:
            one &= Q(json__contains=_literal("system", system))
        match |= one
    return match
