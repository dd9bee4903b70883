"""How to take a medicine, in words. The prescriber's own text wins: it is what the
label says. Without it the dose, route, timing and "when needed" are put into words
from their parts ("2 tablets by mouth twice a day when needed")."""

from __future__ import annotations

from .concepts import concept_words
from .units import unit_words
from .values import number, number_words

PERIOD_UNITS = {
    "s": "second",
    "min": "minute",
    "h": "hour",
    "d": "day",
    "wk": "week",
    "mo": "month",
    "a": "year",
}
TIMES = {1: "once", 2: "twice"}

# Timing.code (HL7 GTS abbreviations), which arrive with or without a display.
TIMING_CODES = {
    "QD": "once a day",
    "BID": "twice a day",
    "TID": "3 times a day",
    "QID": "4 times a day",
    "AM": "in the morning",
    "PM": "in the evening",
    "QOD": "every other day",
    "Q4H": "every 4 hours",
    "Q6H": "every 6 hours",
    "WK": "once a week",
    "MO": "once a month",
}

# Timing.repeat.when (event timing codes).
WHEN_WORDS = {
    "MORN": "in the morning",
    "AFT": "in the afternoon",
    "EVE": "in the evening",
    "NIGHT": "at night",
    "HS": "at bedtime",
    "WAKE": "when you wake up",
    "C": "with meals",
    "CM": "with breakfast",
    "CD": "with lunch",
    "CV": "with the evening meal",
    "AC": "before meals",
    "ACM": "before breakfast",
    "ACD": "before lunch",
    "ACV": "before the evening meal",
    "PC": "after meals",
    "PCM": "after breakfast",
    "PCD": "after lunch",
    "PCV": "after the evening meal",
}

# Route, by SNOMED CT code and by a word in its display.
ROUTE_CODES = {
    "26643006": "by mouth",
    "37839007": "under the tongue",
    "54471007": "in the cheek",
    "6064005": "on the skin",
    "45890007": "through the skin",
    "47625008": "into a vein",
    "78421000": "into a muscle",
    "34206005": "under the skin",
    "37161004": "into the back passage",
    "16857009": "into the vagina",
    "46713006": "into the nose",
    "54485002": "into the eye",
    "10547007": "into the ear",
    "447694001": "breathed in",
    "18679011": "breathed in",
}
ROUTE_WORDS = {
    "oral": "by mouth",
    "sublingual": "under the tongue",
    "buccal": "in the cheek",
    "topical": "on the skin",
    "cutaneous": "on the skin",
    "transdermal": "through the skin",
    "intravenous": "into a vein",
    "intramuscular": "into a muscle",
    "subcutaneous": "under the skin",
    "rectal": "into the back passage",
    "vaginal": "into the vagina",
    "nasal": "into the nose",
    "ocular": "into the eye",
    "ophthalmic": "into the eye",
    "otic": "into the ear",
    "aural": "into the ear",
    "inhalation": "breathed in",
    "inhaled": "breathed in",
    "respiratory": "breathed in",
}

# Units that count things and so take a plural: 2 tablets, 1 tablet.
COUNTED = frozenset(
    {
        "tablet",
        "capsule",
        "puff",
        "drop",
        "sachet",
        "patch",
        "spray",
        "dose",
        "application",
        "ampoule",
        "vial",
        "suppository",
        "pessary",
        "lozenge",
        "unit",
        "injection",
        "pastille",
        "inhalation",
        "actuation",
        "pump",
        "spoonful",
    }
)


def _counted(value, unit: str) -> str:
    unit = unit or "dose"
    singular = unit[:-1] if unit.endswith("s") and unit[:-1] in COUNTED else unit
    one = number(value) == 1
    if singular in COUNTED:
        unit = singular if one else f"{singular}s"
    return f"{number_words(value)} {unit}"


def dose_words(dosage: dict) -> str:
    """The first dose or dose range: "2 tablets", "1 to 2 puffs", "500 mg"."""
    for item in dosage.get("doseAndRate") or ():
        if not isinstance(item, dict):
            continue
        quantity = item.get("doseQuantity")
        if isinstance(quantity, dict) and quantity.get("value") is not None:
            return _counted(quantity["value"], unit_words(quantity))
        span = item.get("doseRange")
        if isinstance(span, dict):
            low, high = span.get("low") or {}, span.get("high") or {}
            if low.get("value") is not None and high.get("value") is not None:
                unit = unit_words(high) or unit_words(low)
                return f"{number_words(low['value'])} to {_counted(high['value'], unit)}"
    return ""


def _times(count: int) -> str:
    return TIMES.get(count, f"{count} times")


def repeat_words(repeat: dict) -> str:
    """Timing.repeat in words: "twice a day", "every 4 hours", "every 4 to 6 hours"."""
    parts = []
    frequency = number(repeat.get("frequency"))
    frequency_max = number(repeat.get("frequencyMax"))
    period = number(repeat.get("period"))
    period_max = number(repeat.get("periodMax"))
    unit = PERIOD_UNITS.get(str(repeat.get("periodUnit") or ""))
    if unit and period is not None:
        frequency = int(frequency) if frequency is not None else 1
        if period == 1 and period_max is None:
            if frequency_max is not None:
                parts.append(f"{frequency} to {int(frequency_max)} times a {unit}")
            else:
                parts.append(f"{_times(frequency)} a {unit}")
        else:
            span = number_words(period) + (
                f" to {number_words(period_max)}" if period_max is not None else ""
            )
            every = f"every {span} {unit}s"
            parts.append(every if frequency == 1 else f"{_times(frequency)} {every}")
    for code in repeat.get("when") or ():
        if code in WHEN_WORDS:
            parts.append(WHEN_WORDS[code])
    for day_of_week in repeat.get("dayOfWeek") or ():
        parts.append(f"on {_DAYS.get(day_of_week, day_of_week)}")
    if repeat.get("timeOfDay"):
        parts.append("at " + " and ".join(str(t)[:5] for t in repeat["timeOfDay"]))
    bounds = repeat.get("boundsDuration")
    if isinstance(bounds, dict) and bounds.get("value") is not None:
        length = number(bounds["value"])
        named = PERIOD_UNITS.get(
            str(bounds.get("code") or bounds.get("unit") or ""), str(bounds.get("unit") or "")
        )
        if named:
            parts.append(f"for {number_words(length)} {named}{'' if length == 1 else 's'}")
    if repeat.get("count") is not None:
        parts.append(f"for {repeat['count']} doses")
    return " ".join(parts)


_DAYS = {
    "mon": "Mondays",
    "tue": "Tuesdays",
    "wed": "Wednesdays",
    "thu": "Thursdays",
    "fri": "Fridays",
    "sat": "Saturdays",
    "sun": "Sundays",
}


def timing_words(timing) -> str:
    """Timing in words: its repeat, else its code."""
    if not isinstance(timing, dict):
        return ""
    repeat = timing.get("repeat")
    words = repeat_words(repeat) if isinstance(repeat, dict) else ""
    if words:
        return words
    code = timing.get("code")
    if not isinstance(code, dict):
        return ""
    for coding in code.get("coding") or ():
        if isinstance(coding, dict) and coding.get("code") in TIMING_CODES:
            return TIMING_CODES[coding["code"]]
    return concept_words(code).lower()


def route_words(route) -> str:
    """The route as a patient says it ("by mouth"), else its name."""
    if not isinstance(route, dict):
        return ""
    for coding in route.get("coding") or ():
        if isinstance(coding, dict) and str(coding.get("code")) in ROUTE_CODES:
            return ROUTE_CODES[str(coding["code"])]
    name = concept_words(route)
    for word in name.lower().replace("-", " ").split():
        if word in ROUTE_WORDS:
            return ROUTE_WORDS[word]
    return f"by the {name.lower()} route".replace(" route route", " route") if name else ""


def when_needed(dosage: dict) -> str:
    if dosage.get("asNeededBoolean") is True:
        return "when needed"
    reason = concept_words(dosage.get("asNeededCodeableConcept"))
    return f"when needed for {reason[0].lower()}{reason[1:]}" if reason else ""


def dosage_words(dosage) -> str:
    """One Dosage in words: its text, else the patient instruction, else its parts."""
    if not isinstance(dosage, dict):
        return ""
    for key in ("text", "patientInstruction"):
        if str(dosage.get(key) or "").strip():
            return str(dosage[key]).strip()
    parts = [
        dose_words(dosage),
        route_words(dosage.get("route")),
        timing_words(dosage.get("timing")),
        when_needed(dosage),
    ]
    words = " ".join(p for p in parts if p)
    extra = [concept_words(c) for c in dosage.get("additionalInstruction") or ()]
    extra = [e for e in extra if e]
    if extra:
        words = f"{words}. {', '.join(extra)}" if words else ", ".join(extra)
    return words[:1].upper() + words[1:]


def dosages_words(resource: dict) -> str:
    """Every dosage of a MedicationStatement (dosage) or MedicationRequest (dosageInstruction)."""
    dosages = resource.get("dosage") or resource.get("dosageInstruction") or ()
    found = [dosage_words(d) for d in dosages if isinstance(d, dict)]
    return "; ".join(w for w in found if w)
