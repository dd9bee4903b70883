"""The form inputs for each kind of part a clinician can correct (phr.amend_fields), and
reading them back: every problem is a message saying what to fix, attached to the input
that has it, never an exception that reaches the page.

Numbers and dates are read from text inputs here rather than by Django's number and date
fields so that the message names the part ("Enter when it started as a real date").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from django import forms
from django.utils import timezone
from django.utils.html import format_html

from phr.amend_fields import FREQUENCY_UNITS, Part, choices_of, own_code_system
from phr.columns import ICD10_SYSTEMS
from phr.render.concepts import SYSTEM_NAMES

MAX_TEXT = 500
MAX_DIGITS = 12  # a dose or a result; more is a typing slip
MAX_PLACES = 6  # decimal places: finer is no dose or result anyone measures
MAX_TIMES = 24
# A number as people type it: ASCII digits, an optional decimal part, no exponent ("1e-9999"
# would be written out in full, megabytes of zeros) and no digits of other scripts.
NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+", re.ASCII)


def _whole_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "²" and "٣", which int() then refuses
    or reads as another script's numbers."""
    return text.isascii() and text.isdigit()


class Problem(ValueError):
    """An input that cannot be used: ``name`` is the input's suffix, the message says why."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


def _lower_first(label: str) -> str:
    return label[0].lower() + label[1:]


def _char(label: str, *, max_length: int = MAX_TEXT, width: str = "", textarea: bool = False, hint: str = ""):
    attrs = {"class": f"nhsuk-input--width-{width}"} if width else {}
    widget = forms.Textarea(attrs={"rows": 3}) if textarea else forms.TextInput(attrs=attrs)
    return forms.CharField(
        label=label,
        help_text=hint,
        required=False,
        max_length=max_length,
        widget=widget,
        error_messages={
            "max_length": f"{label} must be {max_length} characters or fewer",
            "null_characters_not_allowed": f"{label} has a character that cannot be stored: retype it",
        },
    )


@dataclass
class Inputs:
    """The inputs of one part on the form, as the template lays them out."""

    part: Part
    names: list[str]

    @property
    def kind(self) -> str:
        return self.part.kind


SHORT_LABELS = {
    "day": "Day",
    "month": "Month",
    "year": "Year",
    "value": "Number",
    "unit": "Unit",
    "times": "How many times",
    "period": "Each",
    "text": "In words",
    "code": "Code",
}


def fields_for(part: Part, resource: dict) -> dict[str, forms.Field]:
    """The form fields of one part, named ``<key>`` or ``<key>_<input>``; each knows the
    short label it shows inside the part's fieldset ("Day", "Unit")."""
    fields = _fields_for(part, resource)
    for name, field in fields.items():
        field.short_label = (
            part.label if name == part.key else SHORT_LABELS[name.removeprefix(f"{part.key}_")]
        )
    return fields


def _fields_for(part: Part, resource: dict) -> dict[str, forms.Field]:
    label, key = part.label, part.key
    if part.kind == "text":
        return {key: _char(label)}
    if part.kind == "lines":
        return {key: _char(label, textarea=True, hint="One line of the address on each line of the box.")}
    if part.kind == "choice":
        return {
            key: forms.ChoiceField(
                label=label,
                required=False,
                choices=choices_of(part, resource),
                widget=forms.RadioSelect,
                error_messages={"invalid_choice": f"Choose {_lower_first(label)} from the list"},
            )
        }
    if part.kind == "date":
        return {
            f"{key}_day": _char(f"{label}: day", max_length=2, width="2"),
            f"{key}_month": _char(f"{label}: month", max_length=2, width="2"),
            f"{key}_year": _char(f"{label}: year", max_length=4, width="4"),
        }
    if part.kind == "number":
        unit = (resource.get("valueQuantity") or {}).get("unit") or ""
        # The unit is the sender's text: escaped here, as the hint is shown as HTML.
        hint = format_html("In {}, the unit it was recorded in.", unit) if unit else ""
        return {key: _char(label, max_length=20, width="10", hint=hint)}
    if part.kind == "quantity":
        return {
            f"{key}_value": _char(f"{label}: number", max_length=20, width="5"),
            f"{key}_unit": _char(
                f"{label}: unit", max_length=40, width="10", hint="For example, mg or tablet."
            ),
        }
    if part.kind == "frequency":
        return {
            f"{key}_times": _char(f"{label}: how many times", max_length=3, width="3"),
            f"{key}_period": forms.ChoiceField(
                label=f"{label}: each",
                required=False,
                choices=(("", "Choose"), *FREQUENCY_UNITS),
                error_messages={"invalid_choice": "Choose a day or a week"},
            ),
        }
    if part.kind == "concept":
        system = own_code_system(resource, part)
        fields = {f"{key}_text": _char(f"{label}: in words")}
        if system:
            fields[f"{key}_code"] = _char(
                f"{label}: code",
                max_length=64,
                width="10",
                hint=format_html(
                    "Optional. A code from the item's own code system{}. Leave it as it is to keep "
                    "the coding as sent, or empty it to record the words alone.",
                    f" ({_system_name(system)})" if _system_name(system) else "",
                ),
            )
        return fields
    raise ValueError(f"no inputs for a part of kind {part.kind}")


def _system_name(system: str) -> str:
    """A code system by the name staff know it (SNOMED CT, dm+d, LOINC, ICD-10), or "":
    its URL is for the FHIR disclosure only."""
    return SYSTEM_NAMES.get(system) or ("ICD-10" if system in ICD10_SYSTEMS else "")


def initial_for(part: Part, resource: dict) -> dict[str, str]:
    """What each input shows before the clinician changes anything: the item as it is."""
    value, key = part.value_in(resource), part.key
    if part.kind in ("text", "choice"):
        return {key: value or ""}
    if part.kind == "lines":
        return {key: "\n".join(value)}
    if part.kind == "date":
        year, month, day = [*(value or "").split("-"), "", "", ""][:3]
        return {f"{key}_day": day.lstrip("0"), f"{key}_month": month.lstrip("0"), f"{key}_year": year}
    if part.kind == "number":
        return {key: "" if value is None else format(value, "f")}
    if part.kind == "quantity":
        amount, unit = value
        return {f"{key}_value": "" if amount is None else format(amount, "f"), f"{key}_unit": unit}
    if part.kind == "frequency":
        times, unit = value
        return {f"{key}_times": "" if times is None else str(times), f"{key}_period": unit}
    if part.kind == "concept":
        text, code = value
        return {f"{key}_text": text, f"{key}_code": code}
    return {}


def value_from(part: Part, data: dict):
    """The part's new value from the cleaned inputs; raises Problem naming the input."""
    key = part.key
    get = lambda name: (data.get(f"{key}_{name}" if name else key) or "").strip()  # noqa: E731
    label = _lower_first(part.label)
    if part.kind == "text":
        if part.required and not get(""):
            raise Problem("", f"Enter {label}")
        return get("")
    if part.kind == "lines":
        lines = tuple(line.strip() for line in get("").splitlines() if line.strip())
        if len(lines) > 5:
            raise Problem("", "Enter at most 5 lines of the address")
        return lines
    if part.kind == "choice":
        if part.required and not get(""):
            raise Problem("", f"Choose {label}")
        return get("")
    if part.kind == "date":
        return _date(part, get, label)
    if part.kind == "number":
        amount = _number(get(""), "", label)
        if amount is None and part.required:
            raise Problem("", f"Enter {label} as a number")
        return amount
    if part.kind == "quantity":
        amount, unit = _number(get("value"), "value", label), get("unit")
        if amount is None and unit:
            raise Problem("value", f"Enter {label} as a number, or empty the unit too")
        if amount is not None and not unit:
            raise Problem("unit", f"Enter the unit of {label}, for example mg")
        return (amount, unit)
    if part.kind == "frequency":
        return _frequency(get, label)
    if part.kind == "concept":
        text, code = get("text"), get("code")
        if not text:
            raise Problem("text", f"Enter {label} in words")
        if code and not all(c.isascii() and (c.isalnum() or c in "-._") for c in code):
            raise Problem("code", "A code has only letters, numbers, dots, dashes and underscores")
        return (text, code)
    raise ValueError(part.kind)


def _number(text: str, name: str, label: str) -> Decimal | None:
    if not text:
        return None
    plain = text.replace(",", "")
    if plain.startswith("-") and NUMBER.fullmatch(plain[1:]):
        raise Problem(name, f"{label[0].upper()}{label[1:]} cannot be less than 0")
    if not NUMBER.fullmatch(plain):
        raise Problem(name, f"Enter {label} as a number, like 5 or 2.5")
    try:
        amount = Decimal(plain)
    except (InvalidOperation, ValueError):  # the pattern lets none through; kept as a guard
        raise Problem(name, f"Enter {label} as a number, like 5 or 2.5") from None
    if "." in plain and len(plain.split(".")[1]) > MAX_PLACES:
        raise Problem(name, f"{label[0].upper()}{label[1:]} can have at most {MAX_PLACES} decimal places")
    if len(amount.as_tuple().digits) > MAX_DIGITS or amount >= Decimal(10) ** 9:
        raise Problem(name, f"{label[0].upper()}{label[1:]} is too large: check the number")
    return amount


def _frequency(get, label: str):
    times, period = get("times"), get("period")
    if not times and not period:
        return (None, "")
    if not _whole_number(times) or not 1 <= int(times) <= MAX_TIMES:
        raise Problem("times", f"Enter how many times as a whole number from 1 to {MAX_TIMES}")
    if not period:
        raise Problem("period", "Choose a day or a week")
    return (int(times), period)


def _date(part: Part, get, label: str) -> str:
    """A FHIR date from the day, month and year inputs: a year alone, or a month and year,
    say only as much as the clinician knows; nothing at all removes an optional date."""
    day, month, year = get("day"), get("month"), get("year")
    if not (day or month or year):
        if part.required:
            raise Problem("day", f"Enter {label}")
        return ""
    for name, text in (("day", day), ("month", month), ("year", year)):
        if text and not _whole_number(text):
            raise Problem(name, f"Enter {label} using numbers only, like 27 3 2024")
    if not year:
        raise Problem("year", f"{label[0].upper()}{label[1:]} must include a year")
    if len(year) != 4:
        raise Problem("year", "The year must have 4 numbers")
    if day and not month:
        raise Problem("month", f"{label[0].upper()}{label[1:]} must include a month")
    try:
        moment = date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        raise Problem(
            "day" if day else "month", f"{label[0].upper()}{label[1:]} must be a real date"
        ) from None
    if moment > timezone.localdate():
        raise Problem("day" if day else "year", f"{label[0].upper()}{label[1:]} must be today or in the past")
    if moment.year < 1850:
        raise Problem("year", "The year must be 1850 or later")
    if day:
        return moment.isoformat()
    return f"{moment:%Y-%m}" if month else f"{moment:%Y}"
