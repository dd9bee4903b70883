"""What the pages of several audiences share: how items are ordered for reading and how
staff read stored JSON. Each page module keeps what is its own."""

import json
import re
import secrets

from django import forms
from django.db.models import F, QuerySet

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
