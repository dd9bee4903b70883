"""What the pages of several audiences share: how items are ordered for reading and how
staff read stored JSON. Each page module keeps what is its own."""

import json
import re
import secrets
from datetime import date, datetime, time

from django import forms
from django.core.paginator import Paginator
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.functional import cached_property

from phr.dates import range_error


def newest_first(entries: QuerySet) -> QuerySet:
    """Current items first, newest first; items entered in error after all of them."""
    return entries.order_by("entered_in_error", F("clinical_date").desc(nulls_last=True), "pk")


class _Number:
    """A JSON number kept as the text it was written with."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def pretty_json(text: str) -> str:
    """The stored JSON indented for reading, every number exactly as stored (1.10 stays
    1.10: a float would drop the precision the sender recorded)."""
    token = secrets.token_hex(8)
    indented = json.dumps(
        json.loads(text, parse_float=_Number),
        indent=2,
        ensure_ascii=False,
        default=lambda number: f"{token}{number.text}",
    )
    return re.sub(rf'"{token}([-+0-9.eE]+)"', r"\1", indented)


class DayRangeForm(forms.Form):
    """A filter form with date_from and date_to: a range that ends before it starts is
    an error on date_to, in the words of the one rule (phr.dates.range_error)."""

    def clean(self):
        data = super().clean()
        error = range_error(data.get("date_from"), data.get("date_to"))
        if error:
            self.add_error("date_to", error)
        return data


UNTIL_PARTS = ("day", "month", "year")


def typed_end_date(data) -> tuple[datetime | None, str]:
    """An end date typed in three boxes (until_day, until_month, until_year), as the
    moment it takes effect (the start of that day), or None and what to fix; ("", None)
    when nothing was typed. ASCII digits only: other scripts' digits are refused."""
    parts = [str(data.get(f"until_{p}") or "").strip() for p in UNTIL_PARTS]
    if not any(parts):
        return None, ""
    if not all(part.isascii() and part.isdigit() for part in parts):
        return None, "Enter the end date as numbers, for example 1 3 2027"
    try:
        chosen = date(int(parts[2]), int(parts[1]), int(parts[0]))
    except ValueError:
        return None, "The end date must be a real date, for example 1 3 2027"
    return timezone.make_aware(datetime.combine(chosen, time.min)), ""


class CappedPaginator(Paginator):
    """Pages of a search that may match millions of rows: it counts no further than
    ``cap`` (COUNT over a LIMIT, read on the search's index), so a month of a large
    organisation's events costs what a few pages do. Past the cap, ``capped`` is true
    and the page says "more than"; the person narrows the search to see the rest."""

    def __init__(self, object_list, per_page, cap: int, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.cap = cap

    @cached_property
    def found(self) -> int:
        """How many rows match, counted to one past the cap."""
        return self.object_list[: self.cap + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self.found, self.cap)

    @property
    def capped(self) -> bool:
        return self.found > self.cap
