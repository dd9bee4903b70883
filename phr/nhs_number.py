"""NHS numbers: ten digits, the last a modulus-11 check digit over the first nine."""

import re

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
# How FHIR names an organisation by its ODS code (the NHS Organisation Data Service).
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"

# What could be an NHS number, valid or mistyped: ten digits, together or grouped 3-3-4
# by a space or a dash, as typed or as a URL carries them (+, %20, %2D), with no digit
# either side. Matching too much (a run of digits in some other id) is the safe error.
_LOOKS_LIKE = re.compile(r"(?<!\d)\d{3}(?:[ +-]|%20|%2[dD])?\d{3}(?:[ +-]|%20|%2[dD])?\d{4}(?!\d)")
MASK = "**********"


def check_digit(first_nine: str) -> int | None:
    """The check digit for nine digits, or None when no valid NHS number can start so."""
    total = sum(int(digit) * weight for digit, weight in zip(first_nine, range(10, 1, -1), strict=True))
    digit = 11 - total % 11
    if digit == 11:
        return 0
    if digit == 10:
        return None
    return digit


def normalise(value: str) -> str:
    return "".join(value.split())


def is_valid_nhs_number(value: str) -> bool:
    """True for ten digits whose last digit is the modulus-11 check of the first nine."""
    value = normalise(value or "")
    if len(value) != 10 or not value.isdigit():
        return False
    return check_digit(value[:9]) == int(value[9])


def mask_nhs_numbers(text: str) -> str:
    """The text with everything that could be an NHS number blanked out: for what is
    logged or audited of what a caller asked for, which must never hold one."""
    return _LOOKS_LIKE.sub(MASK, text)


def unissued_numbers(start: int = 9_990_000_000):
    """Valid NHS numbers in the 999 range, which is never issued to a real person:
    distinct and in order, for tests, the demo's extras and benches."""
    number = start
    while number < 10_000_000_000:
        if is_valid_nhs_number(str(number)):
            yield str(number)
        number += 1
