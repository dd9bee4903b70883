"""Dates in one style everywhere, the NHS style guide's: "6 December 2026", and
"6 December 2026 at 2:05pm" when the time matters. Never "06 December", never an
abbreviated month, never ISO; a FHIR date says only as much as it was sent with
("2024", "May 2024")."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import timezone

from phr.columns import parse_fhir_datetime


def _local(moment: datetime) -> datetime:
    return timezone.localtime(moment) if timezone.is_aware(moment) else moment


def day(moment: date | datetime | None) -> str:
    """A day as people read it: 1 March 2027 (an aware moment in the portal's time zone)."""
    if moment is None:
        return ""
    if isinstance(moment, datetime):
        moment = _local(moment)
    return f"{moment.day} {moment:%B %Y}"


def clock(moment: datetime, *, seconds: bool = False) -> str:
    """9am, 9:30am, 2:05pm (2:05:31pm where an audit needs the seconds)."""
    hour = moment.hour % 12 or 12
    minutes = f":{moment:%M}" if moment.minute or seconds else ""
    extra = f":{moment:%S}" if seconds else ""
    return f"{hour}{minutes}{extra}{'am' if moment.hour < 12 else 'pm'}"


def day_and_time(moment: datetime | None, *, seconds: bool = False) -> str:
    """1 March 2027 at 9:05am, in the portal's time zone."""
    if moment is None:
        return ""
    local = _local(moment)
    return f"{day(local)} at {clock(local, seconds=seconds)}"


def fhir_moment(value) -> str:
    """A FHIR date or dateTime in words, as precise as it was sent: "2024", "May 2024",
    "12 May 2024", "12 May 2024 at 9:30am" (UK time). What does not parse is shown as it
    was sent: nothing is hidden because it is odd."""
    if not isinstance(value, str) or not value:
        return ""
    moment = parse_fhir_datetime(value)
    if moment is None:
        return value
    if len(value) == 4:
        return value
    if len(value) == 7:
        return f"{moment:%B %Y}"
    if len(value) == 10:
        return day(moment)
    return day_and_time(moment)


def period_words(period) -> str:
    """A FHIR Period in words: "1 February 2024 at 2pm to 2:45pm" (one day named once),
    "from June 2020", "until 3 March 2024"."""
    if not isinstance(period, dict):
        return ""
    start, end = fhir_moment(period.get("start")), fhir_moment(period.get("end"))
    end_day, at, end_time = end.partition(" at ")
    if at and start.startswith(f"{end_day} at "):
        return f"{start} to {end_time}"
    if start and end:
        return f"{start} to {end}"
    return f"from {start}" if start else (f"until {end}" if end else "")
