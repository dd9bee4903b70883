"""Accuracy checks: the completeness rules (something a holder's copy should say and does
not) and the duplicate rule (the same item twice at one holder). accuracy.checks.base
declares what a rule is."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import orjson

from phr.render.dates import day_and_time

from .base import Audience, Hit, Item, Kind, Record, Severity, rule
from .holders import allergy_active, codes_of, concept_of, lower_first, medicine_active, normalised, words_of

# ----------------------------------------------------------------------------------------
# A medicine with no dose.


def _has_dose(dosage) -> bool:
    """A Dosage that says how much or when: words, a dose or rate, or a timing."""
    if not isinstance(dosage, dict):
        return False
    if str(dosage.get("text") or "").strip() or str(dosage.get("patientInstruction") or "").strip():
        return True
    for dose in dosage.get("doseAndRate") or ():
        if isinstance(dose, dict) and any(k.startswith(("dose", "rate")) for k in dose if dose[k]):
            return True
    if any(dosage.get(k) for k in ("maxDosePerPeriod", "maxDosePerAdministration")):
        return True
    timing = dosage.get("timing")
    return isinstance(timing, dict) and any(timing.get(k) for k in ("repeat", "code", "event"))


@rule(
    "medicine-without-dose",
    kind=Kind.COMPLETENESS,
    severity=Severity.LOW,
    audience=Audience.HOLDER,
    title="A medicine is recorded without a dose",
    sentence="{holder}'s record has {medicine} with no dose: it does not say how much to take or when.",
)
def medicine_without_dose(record: Record) -> Iterator[Hit]:
    for item in record.items:
        if not medicine_active(item):
            continue
        dosages = item.resource.get("dosageInstruction" if item.type == "MedicationRequest" else "dosage")
        if isinstance(dosages, list) and any(_has_dose(d) for d in dosages):
            continue
        medicine = words_of(item)
        yield Hit(
            items=(item,),
            says={item.entry.pk: f"{medicine}, with no dose"},
            words={"holder": item.holder.name, "medicine": medicine},
        )


# ----------------------------------------------------------------------------------------
# An allergy in words only.


@rule(
    "allergy-without-coded-substance",
    kind=Kind.COMPLETENESS,
    severity=Severity.LOW,
    audience=Audience.HOLDER,
    title="An allergy is recorded in words only",
    sentence=(
        "{holder}'s record has an allergy ({allergy}) that is written in words only, so other "
        "systems cannot check medicines against it."
    ),
)
def allergy_without_coded_substance(record: Record) -> Iterator[Hit]:
    for item in record.of_type("AllergyIntolerance"):
        if not allergy_active(item) or codes_of(item):
            continue
        allergy = words_of(item) if concept_of(item) else "with no substance named"
        yield Hit(
            items=(item,),
            says={item.entry.pk: f"an allergy: {allergy}, in words only"},
            words={"holder": item.holder.name, "allergy": lower_first(allergy)},
        )


# ----------------------------------------------------------------------------------------
# A final result with no value.

RESULT_FINAL = frozenset({"final", "amended", "corrected"})


def _has_value(part: dict) -> bool:
    return any(key.startswith("value") and part[key] not in (None, "", {}, []) for key in part)


def _explained(part: dict) -> bool:
    return _has_value(part) or isinstance(part.get("dataAbsentReason"), dict)


@rule(
    "result-without-value",
    kind=Kind.COMPLETENESS,
    severity=Severity.LOW,
    audience=Audience.HOLDER,
    title="A result is final but has no value",
    sentence="{holder}'s record has a final result for {test} with no value and no reason why.",
)
def result_without_value(record: Record) -> Iterator[Hit]:
    for item in record.of_type("Observation"):
        resource = item.resource
        if item.entry.entered_in_error or resource.get("status") not in RESULT_FINAL:
            continue
        if _explained(resource) or resource.get("hasMember"):
            continue
        components = [c for c in resource.get("component") or () if isinstance(c, dict)]
        if components and all(_explained(c) for c in components):
            continue
        test = words_of(item)
        yield Hit(
            items=(item,),
            says={item.entry.pk: f"a final result for {lower_first(test)}, with no value"},
            words={"holder": item.holder.name, "test": lower_first(test)},
        )


# ----------------------------------------------------------------------------------------
# The same item twice at one holder.

# Types that are not items of the record a patient would see twice.
NOT_DUPLICATED = frozenset({"Patient", "Provenance", "AuditEvent", "Bundle", "Claim", "ExplanationOfBenefit"})


def _what(item: Item):
    """What the item is: its codes, else its name in words (None: it says neither)."""
    codes = codes_of(item)
    if codes:
        return ("codes", tuple(sorted(codes)))
    concept = concept_of(item)
    text = normalised((concept or {}).get("text") or "") if concept else ""
    if not text and item.type in ("MedicationRequest", "MedicationStatement"):
        reference = item.resource.get("medicationReference")
        text = normalised(reference.get("display") or "") if isinstance(reference, dict) else ""
    return ("text", text) if text else None


def _value(item: Item) -> bytes:
    """An Observation's value and components' values, for comparing (b"" for other types)."""
    if item.type != "Observation":
        return b""
    resource = item.resource
    values = {k: v for k, v in resource.items() if k.startswith("value")}
    components = [
        {k: v for k, v in c.items() if k.startswith("value") or k == "code"}
        for c in resource.get("component") or ()
        if isinstance(c, dict)
    ]
    return orjson.dumps([values, components], option=orjson.OPT_SORT_KEYS)


@rule(
    "duplicate-at-holder",
    kind=Kind.DUPLICATE,
    severity=Severity.LOW,
    audience=Audience.HOLDER,
    title="The same item is recorded twice",
    sentence="{holder}'s record has {item} {times}{when}.",
)
def duplicate_at_holder(record: Record) -> Iterator[Hit]:
    groups = defaultdict(list)
    for item in record.items:
        if item.entry.entered_in_error or item.type in NOT_DUPLICATED:
            continue
        what = _what(item)
        if what is None:
            continue
        moment = item.entry.clinical_date
        minute = moment.replace(second=0, microsecond=0).isoformat() if moment else ""
        groups[(item.holder.pk, item.type, what, minute, _value(item))].append(item)
    for key in sorted(groups, key=repr):
        found = sorted(groups[key], key=lambda i: str(i.entry.pk))
        if len({i.entry.fhir_id for i in found}) < 2:
            continue
        first = found[0]
        moment = first.entry.clinical_date
        name = words_of(first)
        yield Hit(
            items=tuple(found),
            says={
                i.entry.pk: f"{name}, recorded on {day_and_time(moment)}" if moment else name for i in found
            },
            words={
                "holder": first.holder.name,
                "item": lower_first(name),
                "times": "twice" if len(found) == 2 else f"{len(found)} times",
                "when": f", on {day_and_time(moment)}" if moment else "",
            },
        )
