"""NHS numbers: ten digits, the last a modulus-11 check digit over the first nine."""

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"


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
