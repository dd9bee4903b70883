"""How a phone number, a UK postcode and free text a person typed are checked and kept:
one rule for the correction form, the JSON API and a clinician's amendment of a
patient's details.

Only ASCII digits and letters count: Unicode has lookalikes (the Kelvin sign for K,
Arabic-Indic digits) that would pass a case-folding or Unicode-digit match and then be
stored and shown as typed. Direction controls (U+202A-U+202E, U+2066-U+2069) make text
display in another order than it is stored, so what staff read is not what was written.
"""

from __future__ import annotations

import re

PHONE = re.compile(r"\+?[0-9 ()-]+", re.ASCII)
PHONE_DIGITS = (10, 15)
MAX_PHONE = 20
# A UK postcode: outward code (area, district) and inward code, with or without a space.
POSTCODE = re.compile(r"([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})", re.ASCII)
DIRECTION_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")

PHONE_EXAMPLE = "07700 900 982"
PHONE_PROBLEM = (
    f"Enter a phone number of up to {MAX_PHONE} characters using only numbers, spaces, brackets, "
    f"dashes and +, like {PHONE_EXAMPLE}"
)
POSTCODE_EXAMPLE = "LS1 4AP"


def phone_number(text: str) -> str | None:
    """The phone number as it is kept (spaces tidied), or None when it is not one: 10
    to 15 ASCII digits, with spaces, brackets, dashes and a leading + allowed, 20
    characters at most ("(0113) 496 0000", "+44 7700 900 982")."""
    text = " ".join(text.split())
    digits = sum(ch.isascii() and ch.isdigit() for ch in text)
    if len(text) > MAX_PHONE or not PHONE.fullmatch(text):
        return None
    if not PHONE_DIGITS[0] <= digits <= PHONE_DIGITS[1]:
        return None
    return text


def uk_postcode(text: str) -> str | None:
    """The postcode as it is kept ("LS1 4AP": capitals, one space), or None."""
    if not text.isascii():
        return None
    found = POSTCODE.fullmatch(text.strip().upper())
    return f"{found[1]} {found[2]}" if found else None


def has_direction_controls(text: str) -> bool:
    return bool(DIRECTION_CONTROLS.search(text))
