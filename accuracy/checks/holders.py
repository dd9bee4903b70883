"""Accuracy checks: agreement across holders other than medicine doses (those are
accuracy.checks.agreement's). Each rule compares what one holder's copy says with what
another's says about the same thing: an allergy one holder knows and another prescribes
against, a problem current at one and ended at another, the patient's personal details,
and an item one holder withdrew as entered in error that another still records."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator

from phr.columns import chosen_name, human_name
from phr.render.concepts import concept_words, tidy
from phr.render.dates import fhir_moment
from phr.render.person import address_words

from .base import Audience, Hit, Item, Kind, Record, Severity, rule

SNOMED = "http://snomed.info/sct"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"

# ----------------------------------------------------------------------------------------
# Reading items: what an item is (its codes and its name in words) and whether it is live.

_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalised(text) -> str:
    """A name compared without case, punctuation, SNOMED's semantic tag or extra spaces."""
    return " ".join(_NON_WORD.sub(" ", tidy(str(text or "")).lower()).split())


def _concept(resource: dict, element: str) -> dict | None:
    concept = resource.get(element)
    if isinstance(concept, list):
        concept = concept[0] if concept else None
    return concept if isinstance(concept, dict) else None


CONCEPT_ELEMENT = {
    "MedicationRequest": "medicationCodeableConcept",
    "MedicationStatement": "medicationCodeableConcept",
    "MedicationAdministration": "medicationCodeableConcept",
    "MedicationDispense": "medicationCodeableConcept",
    "Immunization": "vaccineCode",
    "Encounter": "type",
}


def concept_of(item: Item) -> dict | None:
    """The CodeableConcept saying what the item is (its code, medicine, vaccine, type)."""
    return _concept(item.resource, CONCEPT_ELEMENT.get(item.type, "code"))


def codes_of(item: Item) -> frozenset[tuple[str, str]]:
    """Every (system, code) naming what the item is."""
    return item.remember("codes", _codes_of)


def _codes_of(item: Item) -> frozenset[tuple[str, str]]:
    concept = concept_of(item) or {}
    return frozenset(
        (str(c.get("system") or ""), str(c["code"]).strip())
        for c in concept.get("coding") or ()
        if isinstance(c, dict) and str(c.get("code") or "").strip()
    )


def texts_of(item: Item) -> frozenset[str]:
    """Every name the item is given (its text and each coding's display), normalised."""
    return item.remember("texts", _texts_of)


def _texts_of(item: Item) -> frozenset[str]:
    concept = concept_of(item) or {}
    names = [
        concept.get("text"),
        *(c.get("display") for c in concept.get("coding") or () if isinstance(c, dict)),
    ]
    if item.type in CONCEPT_ELEMENT and not concept:
        reference = item.resource.get("medicationReference")
        if isinstance(reference, dict):
            names.append(reference.get("display"))
    return frozenset(n for n in map(normalised, names) if n)


def same_thing(a: Item, b: Item) -> bool:
    """The same kind of thing: one type, and a shared SNOMED CT code, else (when either
    has none) a shared name."""
    if a.type != b.type:
        return False
    snomed_a = {c for c in codes_of(a) if c[0] == SNOMED}
    snomed_b = {c for c in codes_of(b) if c[0] == SNOMED}
    if snomed_a and snomed_b:
        return bool(snomed_a & snomed_b)
    if codes_of(a) & codes_of(b):
        return True
    return bool(texts_of(a) & texts_of(b))


def words_of(item: Item) -> str:
    """What the item is, in a patient's words."""
    concept = concept_of(item)
    words = concept_words(concept) if concept else ""
    if not words and item.type in CONCEPT_ELEMENT:
        reference = item.resource.get("medicationReference")
        if isinstance(reference, dict) and reference.get("display"):
            words = str(reference["display"])
    return words or item.name


def lower_first(words: str) -> str:
    """ "Asthma" -> "asthma" inside a sentence, leaving "COPD" or "HbA1c" as written."""
    if len(words) > 1 and words[0].isupper() and words[1].islower():
        return words[0].lower() + words[1:]
    return words


def _status_code(resource: dict, element: str) -> str:
    concept = resource.get(element)
    if isinstance(concept, dict):
        for coding in concept.get("coding") or ():
            if isinstance(coding, dict) and coding.get("code"):
                return str(coding["code"])
    return ""


def allergy_active(item: Item) -> bool:
    """An allergy the holder still records: not entered in error, not refuted, and active
    (or with no clinical status sent)."""
    if item.type != "AllergyIntolerance" or item.entry.entered_in_error:
        return False
    if _status_code(item.resource, "verificationStatus") in ("refuted", "entered-in-error"):
        return False
    return _status_code(item.resource, "clinicalStatus") in ("", "active")


def medicine_active(item: Item) -> bool:
    """A medicine the holder prescribes or records the patient taking now."""
    return (
        item.type in ("MedicationRequest", "MedicationStatement")
        and not item.entry.entered_in_error
        and item.resource.get("status") == "active"
    )


def holder_name(item: Item) -> str:
    return item.holder.name


def _ordered(items: Iterable[Item]) -> list[Item]:
    """Items in one order whatever order they came in: by holder, then entry."""
    return sorted(items, key=lambda i: (i.holder.name, str(i.entry.pk)))


def listed(names: Iterable[str]) -> str:
    """ "A", "A and B", "A, B and C", each once."""
    names = list(dict.fromkeys(n for n in names if n))
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


# ----------------------------------------------------------------------------------------
# Allergy at one holder, a medicine of that class prescribed at another.


class DrugClass:
    def __init__(
        self, key: str, words: str, plural: str, codes: Iterable[str], names: Iterable[str], suffixes=()
    ):
        self.key = key
        self.words = words  # "a penicillin": what a medicine of the class is
        self.plural = plural  # "penicillins"
        self.codes = frozenset(codes)  # SNOMED CT allergy findings and substances
        self.names = tuple(tuple(n.split()) for n in names)  # normalised word sequences
        self.suffixes = tuple(suffixes)

    def named_in(self, text: str) -> bool:
        words = text.split()
        if self.suffixes and any(w.endswith(self.suffixes) for w in words):
            return True
        for name in self.names:
            size = len(name)
            if any(tuple(words[i : i + size]) == name for i in range(len(words) - size + 1)):
                return True
        return False


DRUG_CLASSES = (
    DrugClass(
        "penicillins",
        "a penicillin",
        "penicillins",
        codes=(
            "91936005",  # allergy to penicillin (finding)
            "764146007",  # penicillin (substance)
            "373270004",  # penicillin class of antibiotic (substance)
            "372687004",  # amoxicillin (substance)
        ),
        names=(
            "co amoxiclav",
            "amoxiclav",
            "augmentin",
            "tazocin",
            "magnapen",
            "co fluampicil",
            "fluampicil",
            "pivmecillinam",
            "mecillinam",
            "penicillin v",
            "penicillin g",
        ),
        # penicillin, amoxicillin, flucloxacillin, phenoxymethylpenicillin,
        # benzylpenicillin, piperacillin, ampicillin, temocillin... (and their plurals)
        suffixes=("cillin", "cillins"),
    ),
    DrugClass(
        "nsaids",
        "an anti-inflammatory painkiller (NSAID)",
        "anti-inflammatory painkillers (NSAIDs)",
        codes=(
            "372665008",  # non-steroidal anti-inflammatory agent (substance)
            "387207008",  # ibuprofen (substance)
            "387458008",  # aspirin (substance)
            "10099000",  # ketoprofen (substance)
        ),
        names=(
            "nsaid",
            "nsaids",
            "non steroidal anti inflammatory",
            "nonsteroidal anti inflammatory",
            "ibuprofen",
            "naproxen",
            "diclofenac",
            "aceclofenac",
            "aspirin",
            "acetylsalicylic acid",
            "celecoxib",
            "etoricoxib",
            "parecoxib",
            "mefenamic acid",
            "indometacin",
            "indomethacin",
            "ketoprofen",
            "dexketoprofen",
            "flurbiprofen",
            "fenoprofen",
            "tiaprofenic acid",
            "meloxicam",
            "piroxicam",
            "tenoxicam",
            "etodolac",
            "nabumetone",
            "ketorolac",
            "sulindac",
            "nurofen",
            "brufen",
            "voltarol",
            "arthrotec",
        ),
    ),
    DrugClass(
        "sulphonamides",
        "a sulphonamide",
        "sulphonamides",
        codes=("91939003",),  # allergy to sulfonamides (finding)
        names=(
            "sulphonamide",
            "sulphonamides",
            "sulfonamide",
            "sulfonamides",
            "sulfa",
            "sulpha",
            "co trimoxazole",
            "cotrimoxazole",
            "septrin",
            "sulfamethoxazole",
            "sulphamethoxazole",
            "sulfasalazine",
            "sulphasalazine",
            "sulfadiazine",
            "sulphadiazine",
            "sulfapyridine",
            "sulfadoxine",
        ),
    ),
)


def classes_of(item: Item) -> list[DrugClass]:
    """The drug classes the item names, by SNOMED CT code or by a name in its words."""
    snomed = {code for system, code in codes_of(item) if system == SNOMED}
    texts = texts_of(item)
    return [c for c in DRUG_CLASSES if snomed & c.codes or any(c.named_in(text) for text in texts)]


_ALLERGY_WORDS = re.compile(
    r"^(allergy|allergic|hypersensitivity|intolerance) to |( allergy| intolerance)$", re.I
)


def substance_words(item: Item) -> str:
    """What the patient is allergic to: "penicillin", not "Allergy to penicillin"."""
    return lower_first(_ALLERGY_WORDS.sub("", words_of(item)).strip()) or "a medicine"


@rule(
    "allergy-vs-prescription",
    kind=Kind.AGREEMENT,
    severity=Severity.HIGH,
    audience=Audience.BOTH,
    title="A medicine is prescribed that another record says you are allergic to",
    sentence=(
        "{allergy_holder}'s record says you are allergic to {substance}; {prescriber}'s "
        "record prescribes {medicine}, {drug_class}, and does not record the allergy."
    ),
)
def allergy_vs_prescription(record: Record) -> Iterator[Hit]:
    allergies = [
        (i, classes_of(i)) for i in _ordered(record.of_type("AllergyIntolerance")) if allergy_active(i)
    ]
    allergies = [(i, found) for i, found in allergies if found]
    if not allergies:
        return
    known = defaultdict(set)  # holder -> classes of allergy it records itself
    for item, found in allergies:
        known[item.holder.pk] |= {c.key for c in found}
    for medicine in _ordered(i for i in record.items if medicine_active(i)):
        for drug_class in classes_of(medicine):
            if drug_class.key in known[medicine.holder.pk]:
                continue
            by_holder = defaultdict(list)
            for allergy, found in allergies:
                if allergy.holder.pk != medicine.holder.pk and drug_class in found:
                    by_holder[allergy.holder.pk].append(allergy)
            for held in by_holder.values():
                first = held[0]
                medicine_words = words_of(medicine)
                takes = "you are prescribed" if medicine.type == "MedicationRequest" else "you take"
                says = {a.entry.pk: f"you are allergic to {substance_words(a)}" for a in held} | {
                    medicine.entry.pk: f"{takes} {medicine_words}, and it records no allergy to "
                    f"{drug_class.plural}"
                }
                yield Hit(
                    items=(*held, medicine),
                    says=says,
                    words={
                        "allergy_holder": holder_name(first),
                        "substance": substance_words(first),
                        "prescriber": holder_name(medicine),
                        "medicine": medicine_words,
                        "drug_class": drug_class.words,
                    },
                )


# ----------------------------------------------------------------------------------------
# A problem current at one holder and ended at another.

CURRENT = {"active": "a current problem", "recurrence": "a current problem", "relapse": "a current problem"}
ENDED = {"resolved": "resolved", "inactive": "no longer current", "remission": "in remission"}


@rule(
    "problem-status-disagrees",
    kind=Kind.AGREEMENT,
    severity=Severity.MEDIUM,
    audience=Audience.BOTH,
    title="A problem is current in one record and over in another",
    sentence=(
        "{current_holder}'s record has {problem} as a current problem; "
        "{ended_holder}'s record says it is {ended}."
    ),
)
def problem_status_disagrees(record: Record) -> Iterator[Hit]:
    conditions = [i for i in _ordered(record.of_type("Condition")) if not i.entry.entered_in_error]
    current = [i for i in conditions if _status_code(i.resource, "clinicalStatus") in CURRENT]
    ended = [i for i in conditions if _status_code(i.resource, "clinicalStatus") in ENDED]
    for now in current:
        for over in ended:
            if now.holder.pk == over.holder.pk or not same_thing(now, over):
                continue
            problem = words_of(now)
            status = ENDED[_status_code(over.resource, "clinicalStatus")]
            yield Hit(
                items=(now, over),
                says={
                    now.entry.pk: f"{problem} is a current problem",
                    over.entry.pk: f"{problem} is {status}",
                },
                words={
                    "current_holder": holder_name(now),
                    "problem": lower_first(problem),
                    "ended_holder": holder_name(over),
                    "ended": status,
                },
            )


# ----------------------------------------------------------------------------------------
# Personal details: the holders' Patient copies.


def _name_value(resource: dict):
    name = chosen_name(resource.get("name"))
    given = " ".join(str(g) for g in name.get("given") or ())
    key = " ".join(f"{given} {name.get('family') or ''}".lower().split())
    return (key, human_name(resource.get("name"))) if key else None


def _birth_value(resource: dict):
    value = resource.get("birthDate")
    return (str(value), fhir_moment(value)) if isinstance(value, str) and value else None


SEX_WORDS = {"male": "male", "female": "female", "other": "other", "unknown": "not known"}


def _sex_value(resource: dict):
    value = str(resource.get("gender") or "")
    return (value, SEX_WORDS.get(value, value)) if value else None


def _postcode(resource: dict) -> tuple[str, str] | None:
    for address in resource.get("address") or ():
        if isinstance(address, dict) and address.get("use") != "old" and address.get("postalCode"):
            code = "".join(str(address["postalCode"]).upper().split())
            return code, address_words([address])
    return None


def _practice_value(resource: dict):
    for reference in resource.get("generalPractitioner") or ():
        if not isinstance(reference, dict):
            continue
        identifier = reference.get("identifier")
        code = ""
        if isinstance(identifier, dict) and identifier.get("value"):
            code = str(identifier["value"]).strip().upper()
        display = str(reference.get("display") or "").strip()
        if code or display:
            return (code, normalised(display)), display or code
    return None


def _practice_differs(a, b) -> bool:
    (code_a, name_a), (code_b, name_b) = a, b
    if code_a and code_b:
        return code_a != code_b
    return bool(name_a and name_b and name_a != name_b)


def _death_value(resource: dict):
    when = resource.get("deceasedDateTime")
    if isinstance(when, str) and when:
        return when[:10], f"you died on {fhir_moment(when[:10])}"
    said = resource.get("deceasedBoolean")
    if said is True:
        return "died", "you have died (no date given)"
    if said is False:
        return "alive", "you are alive"
    return None


def _death_differs(a, b) -> bool:
    """Two dates, or alive and dead, differ; "died" with no date agrees with any date."""
    if a == b:
        return False
    return not ("died" in (a, b) and "alive" not in (a, b))


def _differs(a, b) -> bool:
    return a != b


# (what the patient calls it, how to read (comparable value, words) from a copy, when two differ)
DETAILS = (
    ("name", _name_value, _differs),
    ("date of birth", _birth_value, _differs),
    ("sex", _sex_value, _differs),
    ("address", _postcode, _differs),
    ("registered GP practice", _practice_value, _practice_differs),
    ("date of death", _death_value, _death_differs),
)


@rule(
    "personal-details-disagree",
    kind=Kind.AGREEMENT,
    severity=Severity.MEDIUM,
    audience=Audience.BOTH,
    title="Your personal details are not the same in every record",
    sentence="{holders} do not have the same {detail} for you.",
)
def personal_details_disagree(record: Record) -> Iterator[Hit]:
    copies = _ordered(record.details)
    if len({c.holder.pk for c in copies}) < 2:
        return
    for detail, read, differs in DETAILS:
        held = [(c, v) for c in copies for v in [read(c.resource)] if v]
        if not any(a.holder.pk != b.holder.pk and differs(va[0], vb[0]) for a, va in held for b, vb in held):
            continue
        yield Hit(
            items=tuple(c for c, _ in held),
            says={
                c.entry.pk: f"your {detail} is {v[1]}" if detail != "date of death" else v[1] for c, v in held
            },
            words={"holders": listed(holder_name(c) for c, _ in held), "detail": detail},
            topic=detail,
        )


# ----------------------------------------------------------------------------------------
# Withdrawn at one holder, still recorded at another.

# Types of event (a test, a visit, a jab): the same thing is the same code on the same day.
EVENTS = frozenset(
    {"Observation", "Immunization", "Procedure", "Encounter", "DiagnosticReport", "MedicationAdministration"}
)
CONDITION_CURRENT = frozenset(CURRENT)


def _same_event_day(a: Item, b: Item) -> bool:
    if a.type not in EVENTS:
        return True
    day_a, day_b = a.entry.clinical_date, b.entry.clinical_date
    return (day_a.date() if day_a else None) == (day_b.date() if day_b else None)


def _still_recorded(item: Item) -> bool:
    if item.entry.entered_in_error:
        return False
    if item.type == "Condition":
        return _status_code(item.resource, "clinicalStatus") in CONDITION_CURRENT
    return True


@rule(
    "entered-in-error-elsewhere",
    kind=Kind.AGREEMENT,
    severity=Severity.MEDIUM,
    audience=Audience.HOLDER,
    title="An item withdrawn as entered in error is still recorded elsewhere",
    sentence="{error_holder} marked {item} as entered in error, but {others} still {records} it.",
)
def entered_in_error_elsewhere(record: Record) -> Iterator[Hit]:
    items = _ordered(record.items)
    for wrong in (i for i in items if i.entry.entered_in_error and i.type != "Patient"):
        still = [
            i
            for i in items
            if i.holder.pk != wrong.holder.pk
            and _still_recorded(i)
            and same_thing(wrong, i)
            and _same_event_day(wrong, i)
        ]
        if not still:
            continue
        name = words_of(wrong)
        yield Hit(
            items=(wrong, *still),
            says={wrong.entry.pk: f"{name} was entered in error"}
            | {i.entry.pk: f"{words_of(i)}" for i in still},
            words={
                "error_holder": holder_name(wrong),
                "item": lower_first(name),
                "others": listed(holder_name(i) for i in still),
                "records": "records" if len({i.holder.pk for i in still}) == 1 else "record",
            },
        )
