"""Accuracy checks (issue 13): how well the rules find errors put there on purpose, and
what running them costs the ingest.

A labelled set is made from the shared Synthea samples by a seeded generator: each
patient's bundle is split between two or three holders (a GP practice, a hospital, a
community team; every holder gets the Patient resource, each other item goes to one of
them, the items of one kind - one code, one medicine - to the same holder), and then
errors are injected at known places: for every rule in accuracy.checks.base.RULES an
injector changes or creates items so that exactly that rule should fire on known
entries. The same split without injections is checked first (the clean baseline: what
the rules rightly find in Synthea's own data); injections never touch an item the
baseline implicates, and a finding identical to a baseline one is not counted.

For each database (SQLite in a scratch file; PostgreSQL when DATABASE_URL_BENCH or
127.0.0.1:5432 answers) it reports:

  accuracy   per rule: injections, found (true positives), missed (false negatives),
             findings matching no injection and not in the baseline (false positives),
             precision and recall; the clean baseline's findings by rule
  cost       the same labelled set ingested with the checks off (the entries_changed
             receiver disconnected) and on (receiver connected, then
             accuracy.tasks.check_pending run in-process, as the worker would), rounds
             alternating in one process; the ratio ingest-only / ingest+checks

Prints a table and writes bench/results/checks.json.

    python bench/checks.py [--rounds 3] [--seed 13] [--files N] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO.parent / "shared" / "fhir-samples" / "synthea"
RESULTS = REPO / "bench" / "results"
PG_BENCH_DB = "bench_checks"
SEED = 13
GOAL_RECALL = 0.95
GOAL_PRECISION = 0.95
GOAL_RATIO = 0.80  # ingest-only time over ingest + checks time

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"

# role -> (ODS suffix, name, kind); the first role holds everyone, the others by turn.
HOLDERS = {
    "gp": ("GP", "Riverside Surgery", "gp_practice"),
    "hospital": ("HO", "City Teaching Hospitals", "acute_trust"),
    "community": ("CO", "Northside Community Team", "community_services"),
}
# Reference data a holder keeps of its own: every holder gets a copy.
SHARED_TYPES = frozenset({"Organization", "Practitioner"})
EVENT_TYPES = ("Observation", "Procedure", "Immunization")

# Medicines the injectors prescribe (RxNorm, as Synthea writes them); one name per injection.
MEDICINES = (
    ("Amlodipine 5 MG Oral Tablet", "197361"),
    ("Simvastatin 20 MG Oral Tablet", "314231"),
    ("Lisinopril 10 MG Oral Tablet", "314076"),
    ("Atorvastatin 20 MG Oral Tablet", "617310"),
    ("Sertraline 50 MG Oral Tablet", "312940"),
    ("Omeprazole 20 MG Delayed Release Oral Capsule", "198053"),
    ("Ramipril 5 MG Oral Capsule", "845488"),
    ("Bisoprolol Fumarate 5 MG Oral Tablet", "854905"),
    ("Citalopram 20 MG Oral Tablet", "200371"),
    ("Lansoprazole 30 MG Delayed Release Oral Capsule", "311277"),
    ("Losartan Potassium 50 MG Oral Tablet", "979485"),
    ("Furosemide 40 MG Oral Tablet", "313988"),
)
PENICILLINS = (
    ("Amoxicillin 500 MG Oral Capsule", "308191"),
    ("Flucloxacillin 500 MG Oral Capsule", "1668240"),
    ("Phenoxymethylpenicillin 250 MG Oral Tablet", "834061"),
)
UNRELATED_DISPLAYS = ("Ingrown toenail", "Seasonal hay fever", "Tooth extraction", "Fractured wrist")
ALLERGY_WORDS = ("Sticking plaster", "Latex gloves", "Washing powder", "Cat fur")


# --- The split ------------------------------------------------------------------------------


def _fake_item(resource: dict):
    """An accuracy.checks Item over a resource not stored yet (for the rules' own readers)."""
    from accuracy.checks.base import Item

    entry = SimpleNamespace(display="", resource_type=resource.get("resourceType"), entered_in_error=False)
    return Item(entry, resource)


def _group_key(resource: dict) -> tuple:
    """What makes items one kind, kept by one holder: a medicine's name, else the codes."""
    from accuracy.checks.agreement import medicine_key
    from accuracy.checks.holders import codes_of

    rtype = resource["resourceType"]
    if rtype in ("MedicationRequest", "MedicationStatement"):
        return (rtype, medicine_key(_fake_item(resource)))
    codes = codes_of(_fake_item(resource))
    if codes and rtype not in ("Claim", "ExplanationOfBenefit"):
        return (rtype, tuple(sorted(codes)))
    return (rtype, resource.get("id"))


@dataclass
class Split:
    label: str  # the sample's name, e.g. Clemente_Kreiger
    patient_id: str  # the Patient resource's id
    holders: list[str]  # roles, in ingest order
    resources: dict[str, list[dict]]  # role -> resources (each holder has its Patient copy)
    birth: date
    death: date | None
    sex: str


def make_split(label: str, bundle: dict, rng: random.Random) -> Split:
    resources = [e["resource"] for e in bundle["entry"]]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    holders = ["gp", "hospital"] + (["community"] if rng.random() < 0.5 else [])
    held: dict[str, list[dict]] = {role: [] for role in holders}
    chosen: dict[tuple, str] = {}
    for resource in resources:
        rtype = resource["resourceType"]
        if rtype == "Patient" or rtype in SHARED_TYPES:
            for role in holders:
                held[role].append(copy.deepcopy(resource))
            continue
        key = _group_key(resource)
        if key not in chosen:
            chosen[key] = rng.choice(holders)
        held[chosen[key]].append(copy.deepcopy(resource))
    death = patient.get("deceasedDateTime")
    return Split(
        label=label,
        patient_id=patient["id"],
        holders=holders,
        resources=held,
        birth=date.fromisoformat(patient["birthDate"]),
        death=date.fromisoformat(death[:10]) if death else None,
        sex=str(patient.get("gender") or ""),
    )


def bundle_of(split: Split, role: str, tag: str) -> dict:
    """A holder's transaction Bundle; the Patient's identifiers carry the run's tag so that
    each run's holders link to a patient of their own (Synthea's identifier links them)."""
    entries = []
    for resource in split.resources[role]:
        resource = copy.deepcopy(resource)
        if resource["resourceType"] == "Patient":
            for identifier in resource.get("identifier") or ():
                if identifier.get("value"):
                    identifier["value"] = f"{identifier['value']}-{tag}"
        entries.append(
            {
                "fullUrl": f"urn:uuid:{resource['id']}",
                "resource": resource,
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


# --- Injections -----------------------------------------------------------------------------

Identity = tuple[str, str, str]  # (holder role, resource type, FHIR id)


@dataclass
class Injection:
    rule: str
    label: str
    expected: frozenset  # of Identity: the entries a finding of the rule must implicate
    note: str


@dataclass
class Work:
    """One patient's split being injected: what is taken, and what must be left alone."""

    split: Split
    rng: random.Random
    avoid: set  # identities a clean-baseline finding implicates
    used: set = field(default_factory=set)  # identities an injection changed or made
    names: set = field(default_factory=set)  # medicine keys and codes already in the record
    injections: list = field(default_factory=list)

    def items(self, *types: str, roles=None):
        for role in roles or self.split.holders:
            for resource in self.split.resources[role]:
                if resource["resourceType"] in types:
                    identity = (role, resource["resourceType"], resource["id"])
                    if identity not in self.avoid and identity not in self.used:
                        yield role, resource

    def pick(self, candidates):
        candidates = list(candidates)
        return self.rng.choice(candidates) if candidates else None

    def take(self, role: str, resource: dict) -> Identity:
        identity = (role, resource["resourceType"], resource["id"])
        self.used.add(identity)
        return identity

    def add(self, role: str, resource: dict) -> Identity:
        resource.setdefault("id", str(uuid.UUID(int=self.rng.getrandbits(128), version=4)))
        self.split.resources[role].append(resource)
        return self.take(role, resource)

    def copy_to(self, role: str, resource: dict) -> dict:
        made = copy.deepcopy(resource)
        made["id"] = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        return made

    def other(self, role: str) -> str:
        return self.rng.choice([r for r in self.split.holders if r != role])

    def two(self) -> tuple[str, str]:
        first, second = self.rng.sample(self.split.holders, 2)
        return first, second

    @property
    def until(self) -> date:
        return self.split.death or date.today()

    def recent(self) -> datetime:
        """A date inside the patient's life, after all of Synthea's, and within the 15
        years before now (or death) that medicine-unchanged-too-long allows."""
        return datetime.combine(self.until - timedelta(days=30), datetime.min.time(), tzinfo=UTC).replace(
            hour=10
        )

    def patient_ref(self) -> dict:
        return {"reference": f"Patient/{self.split.patient_id}"}

    def medicine(self, bank=MEDICINES):
        from accuracy.checks.agreement import medicine_key

        for name, code in bank:
            made = {"medicationCodeableConcept": {"text": name}}
            key = medicine_key(_fake_item({"resourceType": "MedicationRequest", **made}))
            if key not in self.names and code not in self.names:
                self.names |= {key, code}
                return name, code
        return None


def _dosage(mg: int, per_day: int) -> dict:
    times = {1: "once", 2: "twice", 3: "three times"}[per_day]
    return {
        "sequence": 1,
        "text": f"{mg} mg {times} a day",
        "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [
            {"doseQuantity": {"value": mg, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}
        ],
    }


def _prescription(work: Work, name: str, code: str, when: datetime, *, status="active", dose=(500, 2)):
    resource = {
        "resourceType": "MedicationRequest",
        "id": str(uuid.UUID(int=work.rng.getrandbits(128), version=4)),
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": code, "display": name}],
            "text": name,
        },
        "subject": work.patient_ref(),
        "authoredOn": when.isoformat(),
    }
    if dose:
        resource["dosageInstruction"] = [_dosage(*dose)]
    return resource


def _fhir_time(moment: date) -> str:
    return f"{moment.isoformat()}T10:00:00+00:00"


def _snomed(resource: dict, element: str = "code") -> list[dict]:
    concept = resource.get(element)
    if isinstance(concept, list):
        concept = concept[0] if concept else None
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or () if c.get("system") == SNOMED and c.get("code")]


def _status(code: str, system: str) -> dict:
    return {"coding": [{"system": system, "code": code}]}


CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"


def inject_dose(work: Work, rule: str):
    medicine = work.medicine()
    if medicine is None:
        return None
    first, second = work.two()
    when = work.recent()
    one = _prescription(work, *medicine, when, dose=(500, 2))
    other = _prescription(work, *medicine, when, dose=(1000, 2))
    return {work.add(first, one), work.add(second, other)}, f"{medicine[0]}: 500 mg and 1000 mg twice a day"


def inject_active_and_stopped(work: Work, rule: str):
    medicine = work.medicine()
    if medicine is None:
        return None
    first, second = work.two()
    when = work.recent()
    one = _prescription(work, *medicine, when)
    other = _prescription(work, *medicine, when, status="stopped")
    return {work.add(first, one), work.add(second, other)}, f"{medicine[0]}: active and stopped"


def inject_allergy_vs_prescription(work: Work, rule: str):
    from accuracy.checks.holders import allergy_active, classes_of, medicine_active

    everything = (r for role in work.split.holders for r in work.split.resources[role])
    for resource in everything:
        item = _fake_item(resource)
        if (allergy_active(item) or medicine_active(item)) and any(
            c.key == "penicillins" for c in classes_of(item)
        ):
            return None  # the record has a penicillin of its own: a new one would pair with it
    medicine = work.medicine(PENICILLINS)
    if medicine is None:
        return None
    first, second = work.two()
    allergy = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": _status("active", ALLERGY_CLINICAL),
        "verificationStatus": _status("confirmed", ALLERGY_VERIFICATION),
        "type": "allergy",
        "category": ["medication"],
        "code": {"coding": [{"system": SNOMED, "code": "91936005", "display": "Allergy to penicillin"}]},
        "patient": work.patient_ref(),
        "recordedDate": _fhir_time(work.until - timedelta(days=400)),
    }
    prescription = _prescription(work, *medicine, work.recent())
    return {work.add(first, allergy), work.add(second, prescription)}, f"penicillin allergy; {medicine[0]}"


def inject_problem_status(work: Work, rule: str):
    from accuracy.checks.plausibility import CONDITION_LIMITS

    counts = defaultdict(int)
    for role in work.split.holders:
        for resource in work.split.resources[role]:
            if resource["resourceType"] == "Condition":
                for coding in _snomed(resource):
                    counts[coding["code"]] += 1
    candidates = []
    for role, resource in work.items("Condition"):
        codes = [c["code"] for c in _snomed(resource)]
        status = ((resource.get("clinicalStatus") or {}).get("coding") or [{}])[0].get("code")
        unique = codes and all(counts[c] == 1 and c not in CONDITION_LIMITS for c in codes)
        if unique and status in ("active", "resolved"):
            candidates.append((role, resource, status))
    chosen = work.pick(candidates)
    if chosen is None:
        return None
    role, resource, status = chosen
    made = work.copy_to(role, resource)
    flipped = "resolved" if status == "active" else "active"
    made["clinicalStatus"] = _status(flipped, CONDITION_CLINICAL)
    if flipped == "active":
        made.pop("abatementDateTime", None)
    return {work.take(role, resource), work.add(work.other(role), made)}, f"{status} and {flipped}"


def _patient_copy(work: Work, role: str) -> dict:
    return next(r for r in work.split.resources[role] if r["resourceType"] == "Patient")


def inject_personal_details(work: Work, rule: str):
    # The second holder's copy; never the sex (other rules need the holders to agree on it)
    # nor the date of death (the record's date of death bounds other dates).
    gp, other = work.split.holders[0], work.split.holders[1]
    resource = _patient_copy(work, other)
    detail = work.rng.choice(["name", "date of birth", "address"])
    if detail == "address" and not any(a.get("postalCode") for a in resource.get("address") or ()):
        detail = "name"
    if detail == "name":
        for name in resource.get("name") or ():
            name["family"] = f"{name.get('family', '')}-Okafor"
    elif detail == "date of birth":
        resource["birthDate"] = (date.fromisoformat(resource["birthDate"]) - timedelta(days=9)).isoformat()
    else:
        for address in resource.get("address") or ():
            address["postalCode"] = "ZZ99 3AB"
    return {work.take(other, resource), (gp, "Patient", work.split.patient_id)}, detail


def inject_nhs_number(work: Work, rule: str):
    from phr.nhs_number import check_digit

    role = work.split.holders[0]
    resource = _patient_copy(work, role)
    first_nine = f"999{work.rng.randrange(10**6):06d}"
    right = check_digit(first_nine)
    wrong = (right + 1) % 10 if right is not None else 0
    resource.setdefault("identifier", []).append({"system": NHS_SYSTEM, "value": f"{first_nine}{wrong}"})
    return {work.take(role, resource)}, f"{first_nine}{wrong}"


def inject_entered_in_error(work: Work, rule: str):
    chosen = work.pick(work.items(*EVENT_TYPES))
    if chosen is None:
        return None
    role, resource = chosen
    made = work.copy_to(role, resource)
    resource["status"] = "entered-in-error"
    return {work.take(role, resource), work.add(work.other(role), made)}, resource["resourceType"]


def _measured(work: Work):
    from accuracy.checks.plausibility import _convert, _measure_of

    for role, resource in work.items("Observation"):
        quantity = resource.get("valueQuantity")
        measure = _measure_of(resource.get("code"))
        if measure and isinstance(quantity, dict) and _convert(measure, quantity)[0] == "fits":
            yield role, resource, measure, quantity


def inject_value_out_of_range(work: Work, rule: str):
    from accuracy.checks.plausibility import _convert

    chosen = work.pick(_measured(work))
    if chosen is None:
        return None
    role, resource, measure, quantity = chosen
    original = quantity["value"]
    quantity["value"] = round(max(abs(original), 1) * 1000, 1)
    _, value = _convert(measure, quantity)
    if value is None or measure.low <= value <= measure.high:
        quantity["value"] = original
        return None
    return {work.take(role, resource)}, f"{measure.noun}: {original} -> {quantity['value']}"


def inject_unit(work: Work, rule: str):
    from accuracy.checks.plausibility import _unit_key

    chosen = work.pick(_measured(work))
    if chosen is None:
        return None
    role, resource, measure, quantity = chosen
    unit = next(u for u in ("mmol/L", "kg", "cm", "%") if _unit_key(u) not in measure.units)
    quantity["unit"] = quantity["code"] = unit
    return {work.take(role, resource)}, f"{measure.noun} in {unit}"


def inject_date(work: Work, rule: str):
    chosen = work.pick(work.items(*EVENT_TYPES))
    if chosen is None:
        return None
    role, resource = chosen
    if work.rng.random() < 0.5:
        moment, why = work.split.birth - timedelta(days=3 * 365), "before birth"
    else:
        moment, why = date.today() + timedelta(days=2 * 365), "in the future"
    when = _fhir_time(moment)
    if resource["resourceType"] == "Observation":
        resource.pop("effectivePeriod", None)
        resource["effectiveDateTime"] = when
    elif resource["resourceType"] == "Immunization":
        resource["occurrenceDateTime"] = when
    else:
        resource.pop("performedDateTime", None)
        resource["performedPeriod"] = {"start": when, "end": when}
    return {work.take(role, resource)}, why


def inject_condition_impossible(work: Work, rule: str):
    code, display = {
        "male": ("72892002", "Normal pregnancy"),
        "female": ("399068003", "Malignant tumor of prostate"),
    }.get(work.split.sex, (None, None))
    if code is None or code in work.names:
        return None
    onset = work.split.birth + (work.until - work.split.birth) / 2
    condition = {
        "resourceType": "Condition",
        "clinicalStatus": _status("active", CONDITION_CLINICAL),
        "verificationStatus": _status(
            "confirmed", "http://terminology.hl7.org/CodeSystem/condition-ver-status"
        ),
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
        "subject": work.patient_ref(),
        "onsetDateTime": _fhir_time(onset),
        "recordedDate": _fhir_time(onset),
    }
    work.names.add(code)
    return {work.add(work.rng.choice(work.split.holders), condition)}, f"{display} for a {work.split.sex}"


def inject_unchanged_too_long(work: Work, rule: str):
    when = work.recent() - timedelta(days=20 * 365 + 5)
    if when.date() <= work.split.birth + timedelta(days=365):
        return None
    medicine = work.medicine()
    if medicine is None:
        return None
    role = work.rng.choice(work.split.holders)
    return {work.add(role, _prescription(work, *medicine, when))}, f"{medicine[0]} since {when.year}"


def inject_snomed(work: Work, rule: str):
    from accuracy.checks.conformance import snomed_problem

    candidates = [
        (role, resource, coding)
        for role, resource in work.items("Condition", "Procedure", "Observation", "Encounter")
        for coding in _snomed(resource, "type" if resource["resourceType"] == "Encounter" else "code")[:1]
        if not snomed_problem(coding["code"])
    ]
    chosen = work.pick(candidates)
    if chosen is None:
        return None
    role, resource, coding = chosen
    code = coding["code"]
    coding["code"] = code[:-1] + str((int(code[-1]) + 1) % 10)
    return {work.take(role, resource)}, f"{code} -> {coding['code']}"


def inject_loinc(work: Work, rule: str):
    from accuracy.checks.conformance import loinc_problem

    candidates = [
        (role, resource, coding)
        for role, resource in work.items("Observation")
        for coding in ((resource.get("code") or {}).get("coding") or ())[:1]
        if coding.get("system") == LOINC
        and not loinc_problem(str(coding.get("code")))
        and not str(coding.get("code")).startswith("L")
    ]
    chosen = work.pick(candidates)
    if chosen is None:
        return None
    role, resource, coding = chosen
    code = coding["code"]
    coding["code"] = code[:-1] + str((int(code[-1]) + 1) % 10)
    return {work.take(role, resource)}, f"{code} -> {coding['code']}"


def inject_display(work: Work, rule: str):
    """Copy an item to another holder with its code named as something else. The rule
    compares each holder's first-dated item per name, one finding per code: so the item
    is the first dated, of one name, of the only holder with its code (and every item
    with the code is kept from other injections)."""
    from accuracy.checks.base import codings_in
    from accuracy.checks.conformance import _share_nothing
    from phr.columns import clinical_date
    from phr.render.concepts import CONSUMER_NAMES, SYSTEM_NAMES

    carriers = defaultdict(list)  # (system, code) -> (role, resource, display) of every item with it
    for role in work.split.holders:
        for resource in work.split.resources[role]:
            said = {}
            for coding in codings_in(resource):
                said.setdefault(
                    (coding.get("system"), str(coding.get("code"))),
                    " ".join(str(coding.get("display") or "").split()),
                )
            for key, display in said.items():
                carriers[key].append((role, resource, display))
    candidates = []
    for role, resource in work.items("Observation", "DiagnosticReport", "Procedure", "Condition"):
        coding = ((resource.get("code") or {}).get("coding") or [{}])[0]
        key = (coding.get("system"), str(coding.get("code")))
        held = carriers[key]
        when = clinical_date(resource)
        if key[0] not in SYSTEM_NAMES or not coding.get("display") or when is None:
            continue
        if {r for r, _, _ in held} != {role} or {d for _, _, d in held} != {coding["display"]}:
            continue
        others = [clinical_date(r) for _, r, _ in held if r is not resource]
        if any(w is not None and w <= when for w in others):
            continue
        if any((r, x["resourceType"], x["id"]) in work.avoid | work.used for r, x, _ in held):
            continue
        plain = CONSUMER_NAMES.get(key, "").lower()
        display = next((d for d in UNRELATED_DISPLAYS if _share_nothing(coding["display"], d)), None)
        if display and plain not in (coding["display"].lower(), display.lower()):
            candidates.append((role, resource, coding, display, held))
    chosen = work.pick(candidates)
    if chosen is None:
        return None
    role, resource, coding, display, held = chosen
    for other_role, other, _ in held:
        work.take(other_role, other)
    made = work.copy_to(role, resource)
    made["code"]["coding"][0]["display"] = display
    return {work.take(role, resource), work.add(work.other(role), made)}, f"{coding['display']} / {display}"


def inject_without_dose(work: Work, rule: str):
    medicine = work.medicine()
    if medicine is None:
        return None
    role = work.rng.choice(work.split.holders)
    return {work.add(role, _prescription(work, *medicine, work.recent(), dose=None))}, medicine[0]


def inject_allergy_in_words(work: Work, rule: str):
    words = work.rng.choice(ALLERGY_WORDS)
    allergy = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": _status("active", ALLERGY_CLINICAL),
        "verificationStatus": _status("confirmed", ALLERGY_VERIFICATION),
        "type": "allergy",
        "code": {"text": words},
        "patient": work.patient_ref(),
        "recordedDate": _fhir_time(work.until - timedelta(days=200)),
    }
    return {work.add(work.rng.choice(work.split.holders), allergy)}, words


def inject_without_value(work: Work, rule: str):
    candidates = [
        (role, resource)
        for role, resource in work.items("Observation")
        if resource.get("status") == "final"
        and not resource.get("component")
        and not resource.get("hasMember")
        and any(k.startswith("value") for k in resource)
    ]
    chosen = work.pick(candidates)
    if chosen is None:
        return None
    role, resource = chosen
    for key in [k for k in resource if k.startswith("value")]:
        del resource[key]
    return {work.take(role, resource)}, (resource.get("code") or {}).get("text", "")


def inject_duplicate(work: Work, rule: str):
    chosen = work.pick(work.items(*EVENT_TYPES))
    if chosen is None:
        return None
    role, resource = chosen
    return {work.take(role, resource), work.add(role, work.copy_to(role, resource))}, resource["resourceType"]


INJECTORS = {
    # The injectors that need a scarce kind of item go first.
    "display-contradicts": inject_display,
    "problem-status-disagrees": inject_problem_status,
    "snomed-check-digit": inject_snomed,
    "loinc-check-digit": inject_loinc,
    "medicine-dose-disagrees": inject_dose,
    "medicine-active-and-stopped": inject_active_and_stopped,
    "allergy-vs-prescription": inject_allergy_vs_prescription,
    "personal-details-disagree": inject_personal_details,
    "entered-in-error-elsewhere": inject_entered_in_error,
    "value-out-of-range": inject_value_out_of_range,
    "unit-does-not-fit": inject_unit,
    "date-impossible": inject_date,
    "condition-impossible-for-age-or-sex": inject_condition_impossible,
    "medicine-unchanged-too-long": inject_unchanged_too_long,
    "nhs-number-invalid": inject_nhs_number,
    "medicine-without-dose": inject_without_dose,
    "allergy-without-coded-substance": inject_allergy_in_words,
    "result-without-value": inject_without_value,
    "duplicate-at-holder": inject_duplicate,
}
# Rules injected twice per patient where the record allows (single items, plenty of them).
TWICE = frozenset({"value-out-of-range", "unit-does-not-fit", "date-impossible", "result-without-value"})


def inject(split: Split, seed: int, avoid: set) -> list[Injection]:
    """Inject every rule's error into the split (changed in place); what was injected."""
    from accuracy.checks.agreement import medicine_key
    from accuracy.checks.holders import codes_of

    work = Work(split, random.Random(f"{seed}-inject-{split.label}"), set(avoid))
    for role in split.holders:
        for resource in split.resources[role]:
            item = _fake_item(resource)
            if resource["resourceType"] in ("MedicationRequest", "MedicationStatement"):
                work.names.add(medicine_key(item))
            work.names |= {code for _, code in codes_of(item)}
    for rule, injector in INJECTORS.items():
        for _ in range(2 if rule in TWICE else 1):
            made = injector(work, rule)
            if made:
                expected, note = made
                work.injections.append(Injection(rule, split.label, frozenset(expected), note))
    return work.injections


def load_samples(paths) -> list[tuple[str, dict]]:
    return [("_".join(Path(p).stem.split("_")[:2]), json.loads(Path(p).read_text())) for p in paths]


def make_splits(samples, seed: int) -> list[Split]:
    rng = random.Random(seed)
    return [make_split(label, bundle, rng) for label, bundle in samples]


# --- Ingest and check -----------------------------------------------------------------------


def make_holders(tag: str) -> dict:
    from phr.models import Organisation

    return {
        role: Organisation.objects.create(ods_code=f"{tag}{code}"[:12], name=name, kind=kind)
        for role, (code, name, kind) in HOLDERS.items()
    }


def ingest_splits(splits: list[Split], tag: str, holders: dict, documents=None) -> dict:
    """Ingest each holder's share of every patient, one batch per holder; label -> patient pk."""
    from phr.ingest import ingest_documents
    from phr.models import RecordEntry

    documents = documents or prepare(splits, tag)
    for role, docs in documents.items():
        if docs:
            result = ingest_documents(docs, organisation=holders[role], source="bench")
            if result.rejected:
                raise SystemExit(f"ingest rejected {result.rejected} resources: {result.issues[:3]}")
    patients = {}
    for split in splits:
        entry = RecordEntry.objects.get(
            owner=holders["gp"], resource_type="Patient", fhir_id=split.patient_id
        )
        patients[split.label] = entry.patient_id
        linked = RecordEntry.objects.filter(patient_id=entry.patient_id, resource_type="Patient").count()
        if linked != len(split.holders):
            raise SystemExit(f"{split.label}: {linked} holders' copies linked, not {len(split.holders)}")
    return patients


def prepare(splits: list[Split], tag: str) -> dict:
    documents: dict[str, list] = {role: [] for role in HOLDERS}
    for split in splits:
        for role in split.holders:
            documents[role].append((f"{split.label}-{role}", bundle_of(split, role, tag)))
    return documents


def findings_of(patient_pk, roles_by_owner: dict) -> list[tuple[str, frozenset]]:
    from accuracy.models import Finding, FindingEntry

    entries = defaultdict(set)
    for finding_id, owner_id, rtype, fhir_id in FindingEntry.objects.filter(
        finding__patient_id=patient_pk, finding__status=Finding.Status.OPEN
    ).values_list("finding_id", "owner_id", "entry__resource_type", "entry__fhir_id"):
        entries[finding_id].add((roles_by_owner[owner_id], rtype, fhir_id))
    rules = dict(
        Finding.objects.filter(patient_id=patient_pk, status=Finding.Status.OPEN).values_list("pk", "rule")
    )
    return sorted((rules[f], frozenset(e)) for f, e in entries.items())


def check_run(splits: list[Split], tag: str) -> dict:
    """Ingest the splits under new holders, check every patient; label -> findings."""
    from accuracy.checks.engine import run_checks

    holders = make_holders(tag)
    patients = ingest_splits(splits, tag, holders)
    roles_by_owner = {org.pk: role for role, org in holders.items()}
    found = {}
    for label, pk in patients.items():
        run_checks(pk)
        found[label] = findings_of(pk, roles_by_owner)
    return found


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


def score(injections: list[Injection], found: dict, baseline: dict) -> dict:
    from accuracy.checks.base import RULES

    by_label = defaultdict(list)
    for injection in injections:
        by_label[injection.label].append(injection)
    rows = {rule: {"injected": 0, "found": 0, "missed": 0, "false_positives": 0} for rule in RULES}
    missed, false = [], []
    for injection in injections:
        row = rows[injection.rule]
        row["injected"] += 1
        if any(r == injection.rule and injection.expected <= e for r, e in found.get(injection.label, ())):
            row["found"] += 1
        else:
            row["missed"] += 1
            missed.append(_described(injection.rule, injection.label, injection.expected, injection.note))
    for label, findings in found.items():
        known = set(baseline.get(label, ()))
        for rule, entries in findings:
            if (rule, entries) in known:
                continue
            if any(i.rule == rule and i.expected <= entries for i in by_label[label]):
                continue
            rows[rule]["false_positives"] += 1
            false.append(_described(rule, label, entries, ""))
    for row in rows.values():
        row["recall"] = _ratio(row["found"], row["injected"])
        row["precision"] = _ratio(row["found"], row["found"] + row["false_positives"])
    total = {k: sum(r[k] for r in rows.values()) for k in ("injected", "found", "missed", "false_positives")}
    total["recall"] = _ratio(total["found"], total["injected"])
    total["precision"] = _ratio(total["found"], total["found"] + total["false_positives"])
    return {"rules": rows, "overall": total, "missed": missed, "false_positives": false}


def _described(rule: str, label: str, entries, note: str) -> dict:
    return {"rule": rule, "patient": label, "entries": sorted(map(list, entries)), "note": note}


def evaluate(paths, seed: int = SEED) -> dict:
    """The labelled set's clean baseline and injected run, checked and scored."""
    from accuracy.checks import load_rules

    load_rules()
    splits = make_splits(load_samples(paths), seed)
    clean = check_run(splits, "CL")
    avoid = {label: {e for _, entries in found for e in entries} for label, found in clean.items()}
    injected_splits = copy.deepcopy(splits)
    injections = [i for s in injected_splits for i in inject(s, seed, avoid[s.label])]
    found = check_run(injected_splits, "IN")
    baseline_counts = defaultdict(int)
    for findings in clean.values():
        for rule, _ in findings:
            baseline_counts[rule] += 1
    return {
        "splits": injected_splits,
        "injections": injections,
        "baseline": {
            "by_rule": dict(sorted(baseline_counts.items())),
            "findings": [_described(r, label, e, "") for label, fs in clean.items() for r, e in fs],
        },
        "score": score(injections, found, clean),
        "patients": {s.label: s.holders for s in splits},
    }


# --- The measurement, in a child process per database --------------------------------------


def measure(rounds: int, files: int, seed: int) -> dict:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    import accuracy.tasks
    from accuracy.models import PendingCheck
    from phr.signals import entries_changed

    logging.disable(logging.INFO)
    failures = []

    class Failed(logging.Handler):
        def emit(self, record):
            failures.append(record.getMessage())

    logging.getLogger("accuracy.checks.engine").addHandler(Failed(logging.ERROR))
    call_command("migrate", verbosity=0)
    # The receiver notes pending patients; the bench, not an eager after-commit task, runs them.
    accuracy.tasks.after_commit = lambda *args, **kwargs: None

    paths = sorted(SAMPLES.glob("*.json"))[:files]
    result = evaluate(paths, seed)
    PendingCheck.objects.all().delete()

    splits = result.pop("splits")
    resources = sum(len(r) for s in splits for r in s.resources.values())
    runs: dict[str, list[float]] = {"off": [], "on": []}
    for number in range(rounds):
        for mode in ("off", "on") if number % 2 == 0 else ("on", "off"):
            tag = f"K{number}{mode[:2]}"
            holders = make_holders(tag)
            documents = prepare(splits, tag)
            if mode == "off":
                entries_changed.disconnect(dispatch_uid="accuracy-checks")
            try:
                start = time.perf_counter()
                ingest_splits(splits, tag, holders, documents)
                if mode == "on":
                    done = accuracy.tasks.check_pending(limit=10**6)
                    if done["patients"] != len(splits):
                        raise SystemExit(f"checked {done['patients']} patients, not {len(splits)}")
                runs[mode].append(time.perf_counter() - start)
            finally:
                entries_changed.connect(accuracy.tasks.check_after_commit, dispatch_uid="accuracy-checks")
    ratios = [off / on for off, on in zip(runs["off"], runs["on"], strict=True)]
    result["injections"] = [
        {"rule": i.rule, "patient": i.label, "entries": sorted(map(list, i.expected)), "note": i.note}
        for i in result["injections"]
    ]
    result["cost"] = {
        "patients": len(splits),
        "resources": resources,
        "rounds": rounds,
        "seconds_off": [round(t, 3) for t in runs["off"]],
        "seconds_on": [round(t, 3) for t in runs["on"]],
        "median_off": round(statistics.median(runs["off"]), 3),
        "median_on": round(statistics.median(runs["on"]), 3),
        "ratio": round(statistics.median(ratios), 3),
    }
    result["rule_failures"] = failures
    return result


def child(backend: str, args, workdir: str) -> dict:
    from benchlib import child_env

    env = child_env(backend, workdir, PG_BENCH_DB)
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            *("--rounds", str(args.rounds), "--files", str(args.files), "--seed", str(args.seed)),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{backend} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pct(value) -> str:
    return "-" if value is None else f"{value:.0%}"


def show(backend: str, r: dict) -> None:
    s = r["score"]
    print(f"\n{backend}: accuracy over {len(r['patients'])} patients (injected errors only)")
    print(f"{'rule':<37} {'injected':>8} {'found':>5} {'missed':>6} {'FP':>3} {'recall':>7} {'precision':>9}")
    for rule, row in s["rules"].items():
        print(
            f"{rule:<37} {row['injected']:>8} {row['found']:>5} {row['missed']:>6} "
            f"{row['false_positives']:>3} {_pct(row['recall']):>7} {_pct(row['precision']):>9}"
        )
    o = s["overall"]
    print(
        f"{'overall':<37} {o['injected']:>8} {o['found']:>5} {o['missed']:>6} "
        f"{o['false_positives']:>3} {_pct(o['recall']):>7} {_pct(o['precision']):>9}"
    )
    low = [
        rule
        for rule, row in s["rules"].items()
        if (row["recall"] or 0) < GOAL_RECALL or (row["precision"] or 0) < GOAL_PRECISION
    ]
    met = (o["recall"] or 0) >= GOAL_RECALL and (o["precision"] or 0) >= GOAL_PRECISION and not low
    print(
        f"goal recall >= {GOAL_RECALL:.0%} and precision >= {GOAL_PRECISION:.0%} per rule: "
        f"{'met' if met else 'NOT met (' + ', '.join(low) + ')'}"
    )
    for item in s["missed"]:
        print(f"  missed  {item['rule']} {item['patient']} {item['note']}: {item['entries']}")
    for item in s["false_positives"]:
        print(f"  FP      {item['rule']} {item['patient']}: {item['entries']}")
    print("clean baseline (findings in the samples as split, no injection):")
    for rule, count in r["baseline"]["by_rule"].items():
        print(f"  {rule:<37} {count:>4}")
    if r["rule_failures"]:
        print(f"rules that raised: {r['rule_failures']}")
    c = r["cost"]
    print(
        f"cost: {c['patients']} patients, {c['resources']} resources; ingest {c['median_off']:.2f} s, "
        f"ingest + checks {c['median_on']:.2f} s; ratio {c['ratio']:.0%} "
        f"(goal >= {GOAL_RATIO:.0%}: {'met' if c['ratio'] >= GOAL_RATIO else 'NOT met'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=99)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.rounds, args.files, args.seed)))
        return
    if not SAMPLES.is_dir():
        raise SystemExit(f"{SAMPLES} not found: the benchmark needs ../shared/fhir-samples")
    from benchlib import fresh_postgres

    backends = [args.only] if args.only else ["sqlite", "postgresql"]
    report = {
        "benchmark": "accuracy checks: precision and recall on injected errors, and ingest cost",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": args.seed,
        "goals": {"recall": GOAL_RECALL, "precision": GOAL_PRECISION, "ratio": GOAL_RATIO},
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "results": {},
    }
    with tempfile.TemporaryDirectory() as workdir:
        for backend in backends:
            if backend == "postgresql" and not fresh_postgres(PG_BENCH_DB):
                print("postgresql: not reachable, skipped")
                continue
            print(f"running {backend} ({args.rounds} rounds)...", flush=True)
            report["results"][backend] = child(backend, args, workdir)
    for backend, r in report["results"].items():
        show(backend, r)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "checks.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
