"""Legal deadlines for deciding a correction request, by jurisdiction profile.

UK GDPR Art. 12(3): one calendar month from receipt, extendable once by up to two
further months if the patient is told, with reasons, within the first month. Where the
following month has no such day (31 January), the deadline is that month's last day.
HIPAA 164.526: 60 days, extendable once by up to 30 days with a written statement.
"""

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or the last day of that month when it is shorter."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Profile:
    key: str
    name: str
    months: int = 0
    days: int = 0
    extension_months: int = 0
    extension_days: int = 0
    complaint_body: str = ""
    complaint_url: str = ""

    def due(self, received: date) -> date:
        return add_months(received, self.months) + timedelta(days=self.days)

    def latest_extension(self, first_due: date) -> date:
        return add_months(first_due, self.extension_months) + timedelta(days=self.extension_days)

    @property
    def period_words(self) -> str:
        return "one calendar month" if self.months == 1 else f"{self.days} days"

    @property
    def extension_words(self) -> str:
        return (
            f"{self.extension_months} further months"
            if self.extension_months
            else f"{self.extension_days} further days"
        )


PROFILES = {
    "uk-gdpr": Profile(
        "uk-gdpr",
        "UK GDPR",
        months=1,
        extension_months=2,
        complaint_body="the Information Commissioner's Office (ICO)",
        complaint_url="https://ico.org.uk/make-a-complaint/",
    ),
    "hipaa": Profile(
        "hipaa",
        "HIPAA",
        days=60,
        extension_days=30,
        complaint_body="the Office for Civil Rights of the U.S. Department of Health and Human Services",
        complaint_url="https://www.hhs.gov/ocr/complaints/",
    ),
}


def profile() -> Profile:
    return PROFILES[settings.CORRECTION_JURISDICTION]
