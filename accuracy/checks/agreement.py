"""Accuracy checks: medicines that the holders record differently.

The same medicine (by code, or by its name without strength and form where the codes
differ) with a different amount, frequency or route at two holders, or active at one
and stopped at another: the patient may be taking one thing while a clinician reads
another. Each holder's latest item for the medicine is compared; what each says is the
prescriber's own words where there are some ("500mg twice daily with meals").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

from phr.render.dosage import dosages_words

from .base import Audience, Hit, Item, Kind, Record, Severity, rule

MEDICINE_TYPES = ("MedicationRequest", "MedicationStatement")
STOPPED = {"stopped", "completed", "cancelled", "entered-in-error", "not-taken"}
ACTIVE = {"active", "intended", "on-hold", "draft"}

# Words that describe a form or a pack, not the medicine.
FORM_WORDS = {
    "tablet",
    "tablets",
    "capsule",
    "capsules",
    "caps",
    "tabs",
    "oral",
    "solution",
    "suspension",
    "inhaler",
    "inhalation",
    "powder",
    "cream",
    "ointment",
    "gel",
    "injection",
    "modified",
    "release",
    "gastro",
    "resistant",
    "dispersible",
    "effervescent",
    "soluble",
    "film",
    "coated",
    "chewable",
    "liquid",
    "syrup",
    "drops",
    "eye",
    "ear",
    "nasal",
    "spray",
    "patch",
    "patches",
    "pessary",
    "suppository",
    "suppositories",
    "sachets",
    "sachet",
    "granules",
    "m/r",
    "mr",
    "dose",
    "doses",
    "pre-filled",
    "pen",
    "pens",
    "vial",
    "ampoule",
    "ampoules",
    "ml",
}
CODE_SYSTEMS = ("http://snomed.info/sct", "https://dmd.nhs.uk", "http://www.nlm.nih.gov/research/umls/rxnorm")


def medicine_key(item: Item) -> str:
    """What makes two items the same medicine: the name's words before its strength,
    without form words ("metformin" for "Metformin 500mg tablets"), or its code when
    it has no name."""
    name = item.concept_text("medicationCodeableConcept") or item.entry.display
    words = []
    for word in re.split(r"[\s,()]+", name.lower()):
        if not word:
            continue
        if re.match(r"^\d", word):  # the strength starts: the name is over
            break
        if word not in FORM_WORDS:
            words.append(re.sub(r"[^a-z\-]", "", word))
    key = " ".join(w for w in words if w)
    if key:
        return key
    for coding in item.codings("medicationCodeableConcept"):
        if coding.get("system") in CODE_SYSTEMS and coding.get("code"):
            return f"{coding['system']}|{coding['code']}"
    return ""


# --- How to take it, as numbers ------------------------------------------------------------

UNITS = {
    "mg": Fraction(1),
    "milligram": Fraction(1),
    "milligrams": Fraction(1),
    "g": Fraction(1000),
    "gram": Fraction(1000),
    "grams": Fraction(1000),
    "microgram": Fraction(1, 1000),
    "micrograms": Fraction(1, 1000),
    "mcg": Fraction(1, 1000),
    "ug": Fraction(1, 1000),
    "µg": Fraction(1, 1000),
}
TIMES_WORDS = {
    r"\bonce\b": 1,
    r"\btwice\b": 2,
    r"\bthrice\b": 3,
    r"\bthree times\b": 3,
    r"\bfour times\b": 4,
    r"\b(od|qd|daily|nocte|mane)\b": 1,
    r"\b(bd|bid)\b": 2,
    r"\b(tds|tid)\b": 3,
    r"\b(qds|qid)\b": 4,
    r"\beach (morning|evening|night)\b": 1,
    r"\bat night\b": 1,
    r"\bin the (morning|evening)\b": 1,
    r"\b(\d+) times\b": None,
}
PERIOD_DAYS = {
    "h": Fraction(1, 24),
    "d": Fraction(1),
    "wk": Fraction(7),
    "mo": Fraction(30),
    "a": Fraction(365),
}


@dataclass(frozen=True)
class Dose:
    amount_mg: Fraction | None = None  # one dose, in mg, when its unit is a mass
    amount: tuple | None = None  # one dose in another unit: (value, unit)
    per_day: Fraction | None = None
    route: str = ""
    when_needed: bool = False
    words: str = ""

    def differs(self, other: Dose) -> list[str]:
        """What two doses disagree on, only where both say it."""
        found = []
        by_mass = self.amount_mg is not None and other.amount_mg is not None
        if (
            (self.amount_mg != other.amount_mg)
            if by_mass
            else bool(self.amount and other.amount and self.amount != other.amount)
        ):
            found.append("amount")
        if (
            self.per_day is not None
            and other.per_day is not None
            and self.per_day != other.per_day
            and not (self.when_needed or other.when_needed)
        ):
            found.append("frequency")
        if self.route and other.route and self.route != other.route:
            found.append("route")
        return found


def _dosages(resource: dict) -> list[dict]:
    key = "dosageInstruction" if resource.get("resourceType") == "MedicationRequest" else "dosage"
    return [d for d in resource.get(key) or () if isinstance(d, dict)]


def _text_amount(text: str) -> tuple[Fraction | None, tuple | None]:
    found = re.search(r"(\d+(?:\.\d+)?)\s*(mg|g|micrograms?|mcg|ug|µg|milligrams?|grams?)\b", text)
    if found:
        return Fraction(found.group(1)) * UNITS[found.group(2)], None
    counted = re.search(
        r"(\d+(?:\.\d+)?|one|two|three|four)\s+(tablets?|capsules?|puffs?|drops?|sachets?)", text
    )
    if counted:
        number = {"one": "1", "two": "2", "three": "3", "four": "4"}.get(counted.group(1), counted.group(1))
        return None, (Fraction(number), counted.group(2).rstrip("s"))
    return None, None


def _text_per_day(text: str) -> Fraction | None:
    every = re.search(r"every (\d+) hours?", text)
    if every and int(every.group(1)):
        return Fraction(24, int(every.group(1)))
    for pattern, times in TIMES_WORDS.items():
        found = re.search(pattern, text)
        if found:
            return Fraction(int(found.group(1))) if times is None else Fraction(times)
    return None


def _structured(dosage: dict) -> tuple[Fraction | None, tuple | None, Fraction | None]:
    amount_mg = amount = per_day = None
    for rate in dosage.get("doseAndRate") or ():
        quantity = rate.get("doseQuantity") if isinstance(rate, dict) else None
        if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
            unit = str(quantity.get("code") or quantity.get("unit") or "").lower()
            value = Fraction(str(quantity["value"]))
            if unit in UNITS:
                amount_mg = value * UNITS[unit]
            else:
                amount = (value, unit.rstrip("s"))
    repeat = (dosage.get("timing") or {}).get("repeat") if isinstance(dosage.get("timing"), dict) else None
    if (
        isinstance(repeat, dict)
        and repeat.get("frequency")
        and repeat.get("period")
        and repeat.get("periodUnit")
    ):
        days = PERIOD_DAYS.get(str(repeat["periodUnit"]))
        try:
            if days:
                per_day = Fraction(str(repeat["frequency"])) / (Fraction(str(repeat["period"])) * days)
        except (ValueError, ZeroDivisionError):
            per_day = None
    return amount_mg, amount, per_day


def dose_of(item: Item) -> Dose:
    dosages = _dosages(item.resource)
    if not dosages:
        return Dose(words=dosages_words(item.resource))
    first = dosages[0]  # one dose line is compared: several lines say a regimen
    text = " ".join(str(first.get(k) or "") for k in ("text", "patientInstruction")).lower()
    amount_mg, amount, per_day = _structured(first)
    text_mg, text_amount = _text_amount(text)
    route = ""
    for coding in (
        (first.get("route") or {}).get("coding") or () if isinstance(first.get("route"), dict) else ()
    ):
        route = str(coding.get("display") or coding.get("code") or "").lower()
    return Dose(
        amount_mg=amount_mg if amount_mg is not None else text_mg,
        amount=amount or text_amount,
        per_day=per_day if per_day is not None else _text_per_day(text),
        route=route,
        when_needed=bool(first.get("asNeededBoolean"))
        or bool(re.search(r"when (required|needed)|as (required|needed)|\bprn\b", text)),
        words=dosages_words(item.resource),
    )


def _status(item: Item) -> str:
    status = str(item.resource.get("status") or "")
    if status in STOPPED:
        return "stopped"
    return "active" if status in ACTIVE or not status else "other"


def _latest_by_holder(items: list[Item]) -> dict[int, Item]:
    latest: dict[int, Item] = {}
    for item in items:
        known = latest.get(item.holder.pk)
        if known is None or (item.entry.clinical_date or item.entry.last_updated_at, str(item.entry.pk)) > (
            known.entry.clinical_date or known.entry.last_updated_at,
            str(known.entry.pk),
        ):
            latest[item.holder.pk] = item
    return latest


def _by_medicine(record: Record) -> dict[str, dict[int, Item]]:
    groups: dict[str, list[Item]] = {}
    for item in record.of_type(*MEDICINE_TYPES):
        if item.entry.entered_in_error or item.resource.get("status") == "entered-in-error":
            continue
        key = medicine_key(item)
        if key:
            groups.setdefault(key, []).append(item)
    return {key: _latest_by_holder(items) for key, items in sorted(groups.items())}


def _pairs(latest: dict[int, Item]) -> Iterator[tuple[Item, Item]]:
    holders = sorted(latest)
    for i, first in enumerate(holders):
        for second in holders[i + 1 :]:
            yield latest[first], latest[second]


ASPECT_WORDS = {"amount": "how much", "frequency": "how often", "route": "how"}


@rule(
    "medicine-dose-disagrees",
    kind=Kind.AGREEMENT,
    severity=Severity.HIGH,
    audience=Audience.BOTH,
    title="A medicine is recorded with different doses",
    sentence="{holders} record {medicine} differently: they disagree on {aspects}.",
)
def medicine_dose_disagrees(record: Record) -> Iterator[Hit]:
    for _key, latest in _by_medicine(record).items():
        for first, second in _pairs(latest):
            if _status(first) != "active" or _status(second) != "active":
                continue
            one, other = dose_of(first), dose_of(second)
            aspects = one.differs(other)
            if not aspects:
                continue
            yield Hit(
                items=(first, second),
                says={first.entry.pk: one.words or "no dose", second.entry.pk: other.words or "no dose"},
                words={
                    "holders": f"{first.holder.name} and {second.holder.name}",
                    "medicine": first.name,
                    "aspects": " and ".join(ASPECT_WORDS[a] for a in aspects) + " to take it",
                },
            )


@rule(
    "medicine-active-and-stopped",
    kind=Kind.AGREEMENT,
    severity=Severity.HIGH,
    audience=Audience.BOTH,
    title="A medicine is current at one organisation and stopped at another",
    sentence="{active} records {medicine} as a current medicine; {stopped} records it as stopped.",
)
def medicine_active_and_stopped(record: Record) -> Iterator[Hit]:
    for _key, latest in _by_medicine(record).items():
        for first, second in _pairs(latest):
            statuses = (_status(first), _status(second))
            if set(statuses) != {"active", "stopped"}:
                continue
            active, stopped = (first, second) if statuses[0] == "active" else (second, first)
            yield Hit(
                items=(first, second),
                says={active.entry.pk: "current", stopped.entry.pk: "stopped"},
                words={"active": active.holder.name, "stopped": stopped.holder.name, "medicine": active.name},
            )
