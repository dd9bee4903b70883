"""Results in words: a value with its unit, the normal range, and whether the result is
high or low. The flag comes from the organisation's own interpretation where it sent
one; only without it is the value compared with the range, and only when both are in
the same unit, because a comparison across units would be a guess."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .concepts import LOINC, SNOMED, concept_words, concepts_words
from .dates import fhir_moment, period_words
from .units import unit_words, with_unit

COMPARATOR_WORDS = {"<": "less than", "<=": "up to", ">": "more than", ">=": "at least"}

INTERPRETATION_WORDS = {
    "H": "High",
    "HH": "High",
    "HU": "High",
    ">": "High",
    "L": "Low",
    "LL": "Low",
    "LU": "Low",
    "<": "Low",
    "A": "Abnormal",
    "AA": "Abnormal",
    "N": "Normal",
    "POS": "Positive",
    "NEG": "Negative",
    "DET": "Detected",
    "ND": "Not detected",
    "IND": "Not clear",
}

ABSENT_WORDS = {
    "unknown": "Not known",
    "asked-unknown": "Asked, but not known",
    "not-asked": "Not asked",
    "masked": "Withheld",
    "not-performed": "The test was not done",
    "not-applicable": "Does not apply",
    "error": "There was an error",
    "as-text": "No result was recorded",
}

SYSTOLIC = frozenset({(LOINC, "8480-6"), (SNOMED, "72313002"), (SNOMED, "271649006")})
DIASTOLIC = frozenset({(LOINC, "8462-4"), (SNOMED, "1091811000000102"), (SNOMED, "271650006")})

# What "/min" counts, for the measurements that count something every minute.
PER_MINUTE = {(LOINC, "8867-4"): "beats per minute", (LOINC, "9279-1"): "breaths per minute"}


@dataclass(frozen=True)
class Measurement:
    """A result as a list or a chart shows it. ``value`` is words ("4.1", "159/95",
    "Positive"); ``number``, ``low`` and ``high`` are there for a chart, where known."""

    value: str
    unit: str = ""
    range: str = ""
    flag: str = ""
    number: Decimal | None = None
    low: Decimal | None = None
    high: Decimal | None = None

    @property
    def text(self) -> str:
        return with_unit(self.value, self.unit)


def number(value) -> Decimal | None:
    """A FHIR decimal as a Decimal, or None (booleans and text are not numbers)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        found = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return found if found.is_finite() else None


def number_words(value) -> str:
    """A number as a person writes it. Precision a laboratory sent is kept (4.10 stays
    4.10); a machine's float (168.80253764416227) is rounded to what a person reads."""
    found = number(value)
    if found is None:
        return str(value) if value is not None else ""
    if found.as_tuple().exponent < -3:
        found = found.quantize(Decimal("0.1")) if abs(found) >= 1 else Decimal(f"{found:.3g}")
    return f"{found:f}"


def _codes(concept) -> set[tuple[str, str]]:
    if not isinstance(concept, dict):
        return set()
    return {
        (str(c.get("system")), str(c.get("code"))) for c in concept.get("coding") or () if isinstance(c, dict)
    }


def _unit(quantity, code_concept=None) -> str:
    words = unit_words(quantity)
    if words == "per minute":
        for code in _codes(code_concept):
            if code in PER_MINUTE:
                return PER_MINUTE[code]
    return words


def quantity_words(quantity, code_concept=None) -> str:
    """A Quantity in words: "4.1 mmol/L", "37.5°C", "less than 5 mmol/L". The concept the
    quantity measures, where given, names what is counted ("72 beats per minute")."""
    if not isinstance(quantity, dict) or quantity.get("value") is None:
        return ""
    shown = with_unit(number_words(quantity["value"]), _unit(quantity, code_concept))
    comparator = COMPARATOR_WORDS.get(str(quantity.get("comparator") or ""))
    return f"{comparator} {shown}" if comparator else shown


def _same_unit(a, b) -> bool:
    """Whether two Quantities are in one unit (a bound sent without a unit takes the value's)."""

    def key(q):
        return str(q.get("code") or q.get("unit") or "")

    return not key(b) or key(a) == key(b)


def _bound_words(low, high) -> str:
    low_ok = isinstance(low, dict) and low.get("value") is not None
    high_ok = isinstance(high, dict) and high.get("value") is not None
    if low_ok and high_ok:
        if _same_unit(low, high):
            unit = unit_words(low) or unit_words(high)
            return f"{number_words(low['value'])} to {with_unit(number_words(high['value']), unit)}"
        return f"{quantity_words(low)} to {quantity_words(high)}"
    if low_ok:
        return f"{quantity_words(low)} or more"
    if high_ok:
        return f"{quantity_words(high)} or less"
    return ""


def range_words(ranges) -> str:
    """Observation.referenceRange in words: "3.5 to 5.3 mmol/L", or the range's own text."""
    if isinstance(ranges, dict):
        ranges = [ranges]
    parts = []
    for item in ranges if isinstance(ranges, list) else ():
        if not isinstance(item, dict):
            continue
        words = str(item.get("text") or "").strip() or _bound_words(item.get("low"), item.get("high"))
        applies = concepts_words(item.get("appliesTo"))
        if words:
            parts.append(f"{words} ({applies})" if applies else words)
    return "; ".join(parts)


def _bounds(resource: dict, quantity) -> tuple[Decimal | None, Decimal | None]:
    """The first reference range's bounds, where they are in the value's unit."""
    for item in resource.get("referenceRange") or ():
        if not isinstance(item, dict):
            continue
        low, high = item.get("low"), item.get("high")
        low = number(low.get("value")) if isinstance(low, dict) and _same_unit(quantity, low) else None
        high = number(high.get("value")) if isinstance(high, dict) and _same_unit(quantity, high) else None
        if low is not None or high is not None:
            return low, high
    return None, None


def interpretation_flag(interpretation) -> str:
    """The organisation's interpretation as one word ("High"), or its own words."""
    if isinstance(interpretation, dict):
        interpretation = [interpretation]
    for concept in interpretation if isinstance(interpretation, list) else ():
        for _system, code in sorted(_codes(concept)):
            if code in INTERPRETATION_WORDS:
                return INTERPRETATION_WORDS[code]
    return concepts_words(interpretation)


def computed_flag(value: Decimal | None, low: Decimal | None, high: Decimal | None) -> str:
    """High or Low against the range (its bounds count as in range), Normal within it."""
    if value is None or (low is None and high is None):
        return ""
    if low is not None and value < low:
        return "Low"
    if high is not None and value > high:
        return "High"
    return "Normal"


def flag(resource: dict) -> str:
    """Whether an Observation is high, low or abnormal: its interpretation first, then
    its value against its range."""
    sent = interpretation_flag(resource.get("interpretation"))
    if sent:
        return sent
    quantity = resource.get("valueQuantity")
    if not isinstance(quantity, dict) or quantity.get("comparator"):
        return ""
    return computed_flag(number(quantity.get("value")), *_bounds(resource, quantity))


def blood_pressure(components) -> Measurement | None:
    """Systolic and diastolic components as one reading: "159/95" mmHg."""
    readings = {}
    for component in components or ():
        if not isinstance(component, dict) or not isinstance(component.get("valueQuantity"), dict):
            continue
        codes = _codes(component.get("code"))
        side = "systolic" if codes & SYSTOLIC else ("diastolic" if codes & DIASTOLIC else None)
        if side:
            readings[side] = component["valueQuantity"]
    if len(readings) != 2 or any(q.get("value") is None for q in readings.values()):
        return None
    systolic, diastolic = readings["systolic"], readings["diastolic"]
    return Measurement(
        value=f"{number_words(systolic['value'])}/{number_words(diastolic['value'])}",
        unit=unit_words(systolic),
        flag=interpretation_flag(
            [i for c in components if isinstance(c, dict) for i in c.get("interpretation") or ()]
        ),
    )


def _other_value(resource: dict) -> str:
    """A value that is not a Quantity, in words."""
    if "valueCodeableConcept" in resource:
        return concept_words(resource["valueCodeableConcept"])
    if "valueBoolean" in resource:
        return "Yes" if resource["valueBoolean"] else "No"
    if "valueDateTime" in resource:
        return fhir_moment(resource["valueDateTime"])
    if "valuePeriod" in resource:
        return period_words(resource["valuePeriod"])
    if "valueRange" in resource and isinstance(resource["valueRange"], dict):
        return _bound_words(resource["valueRange"].get("low"), resource["valueRange"].get("high"))
    if isinstance(resource.get("valueRatio"), dict):
        ratio = resource["valueRatio"]
        top, bottom = quantity_words(ratio.get("numerator")), quantity_words(ratio.get("denominator"))
        return f"{top} per {bottom}" if top and bottom else ""
    for key in ("valueString", "valueInteger", "valueTime"):
        if key in resource and resource[key] is not None:
            return str(resource[key])
    return ""


def component_words(components) -> str:
    """Components other than a blood pressure: "name: value; name: value"."""
    parts = []
    for component in components or ():
        if not isinstance(component, dict):
            continue
        value = quantity_words(component.get("valueQuantity"), component.get("code")) or _other_value(
            component
        )
        if value:
            parts.append(f"{concept_words(component.get('code')) or 'Part'}: {value}")
    return "; ".join(parts)


def measurement(resource: dict) -> Measurement | None:
    """An Observation's result as value, unit, range and flag, or None when it has none
    (then absent_reason says why, where the organisation said)."""
    ranges = range_words(resource.get("referenceRange"))
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict) and quantity.get("value") is not None:
        comparator = COMPARATOR_WORDS.get(str(quantity.get("comparator") or ""))
        shown = number_words(quantity["value"])
        low, high = _bounds(resource, quantity)
        return Measurement(
            value=f"{comparator} {shown}" if comparator else shown,
            unit=_unit(quantity, resource.get("code")),
            range=ranges,
            flag=flag(resource),
            number=None if comparator else number(quantity["value"]),
            low=low,
            high=high,
        )
    other = _other_value(resource)
    if other:
        return Measurement(
            value=other, range=ranges, flag=interpretation_flag(resource.get("interpretation"))
        )
    components = resource.get("component") or ()
    pressure = blood_pressure(components)
    if pressure:
        own = interpretation_flag(resource.get("interpretation"))
        return Measurement(pressure.value, pressure.unit, ranges, own or pressure.flag)
    parts = component_words(components)
    if parts:
        return Measurement(
            value=parts, range=ranges, flag=interpretation_flag(resource.get("interpretation"))
        )
    return None


def absent_reason(resource: dict) -> str:
    """Why there is no value ("Specimen unsatisfactory for evaluation"), where one was sent."""
    reason = resource.get("dataAbsentReason")
    if not isinstance(reason, dict):
        return ""
    for _system, code in sorted(_codes(reason)):
        if code in ABSENT_WORDS and not reason.get("text"):
            return ABSENT_WORDS[code]
    return str(reason.get("text") or "").strip() or concept_words(reason) or "No result was recorded"
