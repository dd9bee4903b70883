"""Units as people write them. A Quantity carries a UCUM code for machines (`Cel`,
`mm[Hg]`, `kg/m2`) and sometimes a unit for people; a patient should see °C, mmHg and
kg/m², never the code. What is not known here is shown as it was sent, without UCUM's
curly-brace annotations, rather than guessed at."""

from __future__ import annotations

import re

UCUM = "http://unitsofmeasure.org"

TIMES_TEN = "\N{MULTIPLICATION SIGN} 10"

# UCUM code → how it is written for people. Units written the same way in both
# (mmol/L, mg/dL, g/L, kg, cm, U/L) need no entry.
UCUM_WORDS = {
    "Cel": "°C",
    "[degF]": "°F",
    "mm[Hg]": "mmHg",
    "kg/m2": "kg/m²",
    "m2": "m²",
    "/min": "per minute",
    "{beats}/min": "beats per minute",
    "{breaths}/min": "breaths per minute",
    "/h": "per hour",
    "/d": "per day",
    "/wk": "per week",
    "10*3/uL": f"{TIMES_TEN}³/µL",
    "10*6/uL": f"{TIMES_TEN}⁶/µL",
    "10*9/L": f"{TIMES_TEN}⁹/L",
    "10*12/L": f"{TIMES_TEN}¹²/L",
    "[in_i]": "in",
    "[ft_i]": "ft",
    "[lb_av]": "lb",
    "[oz_av]": "oz",
    "[stone_av]": "st",
    "ug": "µg",
    "mcg": "µg",
    "umol/L": "µmol/L",
    "ug/L": "µg/L",
    "ug/dL": "µg/dL",
    "uL": "µL",
    "mL/min/{1.73_m2}": "mL/min/1.73 m²",
    "mL/min/1.73m2": "mL/min/1.73 m²",
    "[iU]/L": "IU/L",
    "[IU]/L": "IU/L",
    "m[iU]/L": "mIU/L",
    "m[IU]/L": "mIU/L",
    "u[iU]/mL": "µIU/mL",
    "[iU]": "IU",
    "[IU]": "IU",
    "mL": "ml",
    "L": "litres",
    "L/min": "litres per minute",
    "h": "hours",
    "min": "minutes",
    "d": "days",
    "wk": "weeks",
    "mo": "months",
    "a": "years",
    "%": "%",
    "1": "",
    "{score}": "",
    "{count}": "",
    "{ratio}": "",
    "{#}": "",
    "[pH]": "",
}

# A Quantity's own unit that is the spelled-out form of a UCUM code: the short form reads better.
SPELLED_OUT = {
    "millimeter of mercury": "mmHg",
    "milligram": "mg",
    "milligrams": "mg",
    "gram": "g",
    "kilogram": "kg",
    "microgram": "µg",
    "micrograms": "µg",
    "millilitre": "ml",
    "milliliter": "ml",
    "degrees celsius": "°C",
    "degree celsius": "°C",
}

# Units written straight after the number, with no space: 97%, 37.5°C.
JOINED = frozenset({"%", "°C", "°F"})

_ANNOTATION = re.compile(r"\{[^}]*\}")
_POWER = re.compile(r"^10\*(\d+)")
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_RAW = re.compile(r"[\[\]{}]|^10\*|\*")


def ucum_words(code: str) -> str:
    """A UCUM code in the form people write it; an unknown code as sent, minus any
    annotations in curly braces ("{tablets}" says "tablets": its words are kept)."""
    code = (code or "").strip()
    if code in UCUM_WORDS:
        return UCUM_WORDS[code]
    if code.startswith("{") and code.endswith("}") and "}" not in code[1:-1]:
        return code[1:-1].replace("_", " ")  # a unit that is only an annotation: {tablet}
    cleaned = _ANNOTATION.sub("", code).replace("[", "").replace("]", "").replace("_", " ")
    cleaned = _POWER.sub(lambda m: TIMES_TEN + m.group(1).translate(_SUPERSCRIPT), cleaned)
    cleaned = re.sub(r"^u(?=[a-zA-Z])", "µ", cleaned)
    return cleaned.strip(" /") if cleaned != code else code


def _human(unit: str) -> bool:
    """Whether a Quantity's own unit is already in people's words, not a raw code."""
    return bool(unit) and not _RAW.search(unit) and unit not in UCUM_WORDS


def unit_words(quantity) -> str:
    """The unit of a FHIR Quantity in people's words. A UCUM code this module knows wins
    (so `millimeter of mercury` is shown as mmHg); then the Quantity's own unit when it
    is not itself a raw code; then the code, cleaned up. A bare string is taken as both
    the unit and its code ("Cel" → "°C")."""
    if isinstance(quantity, str):
        quantity = {"unit": quantity, "code": quantity}
    if not isinstance(quantity, dict):
        return ""
    unit = str(quantity.get("unit") or "").strip()
    code = str(quantity.get("code") or "").strip()
    if code and code in UCUM_WORDS and quantity.get("system") in (UCUM, None):
        return UCUM_WORDS[code]
    if unit.lower() in SPELLED_OUT:
        return SPELLED_OUT[unit.lower()]
    if unit in UCUM_WORDS:
        return UCUM_WORDS[unit]
    if _human(unit):
        return unit
    return ucum_words(unit or code)


def with_unit(number: str, unit: str) -> str:
    """A number and its unit as written: "97%", "37.5°C", "4.1 mmol/L", "72"."""
    if not unit:
        return number
    return f"{number}{unit}" if unit in JOINED else f"{number} {unit}"
