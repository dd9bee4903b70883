"""Deadline arithmetic for both jurisdiction profiles."""

from datetime import date

import pytest

from accuracy.deadlines import PROFILES, add_months


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (date(2026, 1, 31), date(2026, 2, 28)),  # no 31 February: the month's last day
        (date(2028, 1, 31), date(2028, 2, 29)),  # leap year
        (date(2026, 1, 15), date(2026, 2, 15)),
        (date(2026, 12, 31), date(2027, 1, 31)),  # across the year
        (date(2026, 3, 31), date(2026, 4, 30)),
        (date(2026, 2, 28), date(2026, 3, 28)),
    ],
)
def test_uk_gdpr_gives_one_calendar_month(received, due):
    assert PROFILES["uk-gdpr"].due(received) == due


def test_uk_gdpr_extends_by_at_most_two_further_months():
    rules = PROFILES["uk-gdpr"]
    first = rules.due(date(2025, 11, 30))
    assert first == date(2025, 12, 30)
    assert rules.latest_extension(first) == date(2026, 2, 28)


def test_hipaa_gives_sixty_days_and_thirty_more():
    rules = PROFILES["hipaa"]
    first = rules.due(date(2026, 1, 1))
    assert first == date(2026, 3, 2)
    assert rules.latest_extension(first) == date(2026, 4, 1)


def test_add_months_clamps_and_carries_years():
    assert add_months(date(2024, 8, 31), 6) == date(2025, 2, 28)
    assert add_months(date(2023, 12, 31), 2) == date(2024, 2, 29)
