"""The one rule for a range of days a search or a filter is given: its end may not come
before its start. Every form and API serializer that takes a range asks this."""

from datetime import date

END_BEFORE_START = "The end date must be the same as or after the start date"


def range_error(start: date | None, end: date | None) -> str | None:
    """The words for a range that ends before it starts, or None when it is usable (an
    open end is usable)."""
    if start and end and end < start:
        return END_BEFORE_START
    return None
