"""Dates in one style: the NHS style guide's, in the portal's time zone."""

from datetime import UTC, date, datetime

import pytest
from django.template import Context, Template

from phr.render.dates import clock, day, day_and_time, fhir_moment


def test_a_day_has_no_leading_zero_and_the_whole_month():
    assert day(date(2026, 12, 6)) == "6 December 2026"
    assert day(datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == "1 July 2026"  # BST: already the 1st
    assert day(None) == ""


@pytest.mark.parametrize(
    ("hour", "minute", "words"),
    [(0, 0, "12am"), (9, 0, "9am"), (9, 5, "9:05am"), (12, 0, "12pm"), (14, 30, "2:30pm")],
)
def test_the_clock_is_twelve_hour_with_minutes_only_when_there_are_some(hour, minute, words):
    assert clock(datetime(2026, 1, 1, hour, minute)) == words


def test_a_moment_is_the_day_and_the_time_in_london():
    winter = datetime(2026, 12, 6, 14, 5, 31, tzinfo=UTC)
    assert day_and_time(winter) == "6 December 2026 at 2:05pm"
    assert day_and_time(winter, seconds=True) == "6 December 2026 at 2:05:31pm"
    assert day_and_time(datetime(2026, 7, 1, 8, 0, tzinfo=UTC)) == "1 July 2026 at 9am"


@pytest.mark.parametrize(
    ("sent", "words"),
    [
        ("2024", "2024"),
        ("2024-05", "May 2024"),
        ("2024-05-09", "9 May 2024"),
        ("2024-05-09T08:30:00Z", "9 May 2024 at 9:30am"),
        ("not a date", "not a date"),
        ("", ""),
        (None, ""),
    ],
)
def test_a_fhir_date_says_as_much_as_it_was_sent_with(sent, words):
    assert fhir_moment(sent) == words


def test_every_template_has_the_filters_without_loading_them():
    moment = datetime(2026, 12, 6, 14, 5, tzinfo=UTC)
    rendered = Template("{{ m|day }} / {{ m|day_and_time }} / {{ m|day_and_time_seconds }}").render(
        Context({"m": moment})
    )
    assert rendered == "6 December 2026 / 6 December 2026 at 2:05pm / 6 December 2026 at 2:05:00pm"
