"""Corrections made with fields, not JSON: the parts of each kind of item a clinician can
change, read from the current version and written into a copy of it.

A part reads its value from the resource in plain terms (a dose text, a date, a number
and unit) and writes a new value back into the same place. ``amend`` changes only the
parts whose value differs from what the current version says and keeps every other
element as it was, so the amended resource is the current one with the chosen elements
changed. Each change is said in words for the clinician's preview. Storing the result is
phr.amend's work, as for an amendment written in JSON.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from . import contact_details
from .columns import concept_text
from .contact_details import has_direction_controls, uk_postcode
from .render.dates import fhir_moment
from .render.dosage import dosage_words

Path = tuple  # element names and list positions, e.g. ("dosage", 0, "text")


class Refused(ValueError):
    """A change the record cannot take as asked: ``key`` is the part it is said at,
    ``name`` the input of that part ("" for a part with one input, "day" of a date)."""

    def __init__(self, key: str, message: str, name: str = ""):
        super().__init__(message)
        self.key = key
        self.name = name


def _get(node, path: Path):
    for step in path:
        if isinstance(step, int):
            node = node[step] if isinstance(node, list) and len(node) > step else None
        else:
            node = node.get(step) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


def _set(resource: dict, path: Path, value) -> None:
    """Put ``value`` at ``path``, making the containers on the way; an empty value removes
    the element, and any container left empty by that (FHIR allows no empty elements)."""
    if value in (None, "", [], {}):
        _remove(resource, path)
        return
    node = resource
    for step, following in itertools.pairwise(path):
        blank = [] if isinstance(following, int) else {}
        if isinstance(step, int):
            while len(node) <= step:
                node.append({} if isinstance(blank, dict) else [])
            if not isinstance(node[step], type(blank)):
                node[step] = blank
            node = node[step]
        else:
            if not isinstance(node.get(step), type(blank)):
                node[step] = blank
            node = node[step]
    last = path[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
    node[last] = value


def _remove(resource: dict, path: Path) -> None:
    parent = _get(resource, path[:-1]) if len(path) > 1 else resource
    last = path[-1]
    if isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        del parent[last]
    if len(path) > 1 and _get(resource, path[:-1]) in ([], {}):
        _remove(resource, path[:-1])  # and so on up, while containers are left empty


def _clear(resource: dict, path: Path, names: tuple[str, ...]) -> None:
    container = _get(resource, path[:-1]) if len(path) > 1 else resource
    if isinstance(container, dict):
        for name in names:
            container.pop(name, None)


def as_decimal(value) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def number_words(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text and value == value.to_integral() else text


# --- Parts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One thing a clinician can change, where it lives and how it reads in words.

    ``kind`` says which inputs the form offers: text, lines, choice, date, number,
    quantity, frequency or concept. ``serves`` are the element paths a patient can flag
    (accuracy.elements) that this part answers; ``path`` is where FHIR validation
    problems about it are found."""

    key: str
    label: str
    kind: str
    path: Path
    serves: tuple[str, ...] = ()
    choices: tuple[tuple[str, str], ...] = ()
    required: bool = False
    read: Callable[[dict], object] | None = None
    write: Callable[[dict, object], None] | None = None
    words: Callable[[object], str] | None = None
    clears: tuple[str, ...] = ()  # choice-type siblings a written value replaces, e.g. onsetPeriod
    check: Callable[[object], str] | None = None  # what is wrong with a new value, or ""

    def value_in(self, resource: dict):
        if self.read is not None:
            return self.read(resource)
        return _READERS[self.kind](_get(resource, self.path))

    def put(self, resource: dict, value) -> None:
        if self.write is not None:
            self.write(resource, value)
            return
        if self.clears and value not in (None, ""):
            _clear(resource, self.path, self.clears)
        _set(resource, self.path, value)

    def say(self, value, resource: dict | None = None) -> str:
        if self.words is not None:
            return self.words(value)
        if self.kind == "number" and value is not None:
            # A result reads with the unit it keeps: "140 mmol/L".
            unit = _text_of(_get(resource or {}, (*self.path[:-1], "unit")))
            return f"{number_words(value)} {unit}".strip()
        if self.kind == "choice":
            return dict(self.choices).get(value, value or "").lower() if value else ""
        return _WORDS[self.kind](value)

    @property
    def element_path(self) -> str:
        """The part's place as a FHIR path ("dosage[0].text"), as validation names it."""
        text = ""
        for step in self.path:
            text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
        return text


def _text_of(value) -> str:
    return value if isinstance(value, str) else ""


def _date_of(value) -> str:
    # A dateTime is corrected as a date: the time of day is not offered.
    return value[:10] if isinstance(value, str) else ""


def _quantity_of(value) -> tuple:
    if not isinstance(value, dict):
        return (None, "")
    return (as_decimal(value.get("value")), _text_of(value.get("unit")) or _text_of(value.get("code")))


_READERS = {
    "text": _text_of,
    "choice": _text_of,
    "date": _date_of,
    "number": as_decimal,
    "quantity": _quantity_of,
}
_WORDS = {
    "text": lambda v: v or "",
    "date": fhir_moment,
    "number": number_words,
    "lines": lambda v: ", ".join(v or ()),
    "quantity": lambda v: f"{number_words(v[0])} {v[1]}".strip() if v and v[0] is not None else "",
    "concept": lambda v: (f"{v[0]} (code {v[1]})" if v[1] else v[0]) if v else "",
}


def status_concept(system: str) -> tuple[Callable, Callable]:
    """Read and write a status held as a CodeableConcept from ``system`` (clinicalStatus)."""

    def read(concept) -> str:
        for coding in (concept or {}).get("coding") or () if isinstance(concept, dict) else ():
            if isinstance(coding, dict) and coding.get("system") == system and coding.get("code"):
                return str(coding["code"])
        return ""

    def write(code):
        return {"coding": [{"system": system, "code": code}]} if code else None

    return read, write


def _status_part(key, label, path, system, choices, *, serves=(), required=False) -> Part:
    read, make = status_concept(system)
    return Part(
        key,
        label,
        "choice",
        path,
        serves=serves,
        choices=choices,
        required=required,
        read=lambda r: read(_get(r, path)),
        write=lambda r, v: _set(r, path, make(v)),
    )


def _concept_part(key, label, path, *, serves) -> Part:
    """A concept: its words, and a code from the item's own code system. Words without a
    code leave a text-only concept; a code kept as it was keeps its coding as sent."""

    def read(resource):
        concept = _get(resource, path)
        coding = _first_coding(concept)
        return (concept_text(concept), _text_of(coding.get("code")) if coding else "")

    def write(resource, value):
        text, code = value
        concept = _get(resource, path)
        coding = _first_coding(concept)
        if code and coding and code == coding.get("code"):
            new = {**copy.deepcopy(concept), "text": text}
        elif code and coding and coding.get("system"):
            new = {"coding": [{"system": coding["system"], "code": code, "display": text}], "text": text}
        else:
            new = {"text": text} if text else None
        _set(resource, path, new)

    return Part(key, label, "concept", path, serves=serves, required=True, read=read, write=write)


def _first_coding(concept) -> dict:
    if isinstance(concept, dict):
        for coding in concept.get("coding") or ():
            if isinstance(coding, dict):
                return coding
    return {}


def own_code_system(resource: dict, part: Part) -> str:
    """The code system of the concept as sent: a new code must come from it."""
    return _text_of(_first_coding(_get(resource, part.path)).get("system"))


def _text_concept_part(key, label, path, *, serves) -> Part:
    """A concept corrected by its words alone (a reaction's manifestation)."""

    def write(resource, text):
        _set(resource, path, {"text": text} if text else None)

    return Part(
        key,
        label,
        "text",
        path,
        serves=serves,
        read=lambda r: concept_text(_get(r, path)),
        write=write,
    )


FREQUENCY_UNITS = (("d", "a day"), ("wk", "a week"))


def frequency_words(value) -> str:
    times, unit = value or (None, "")
    if not times:
        return ""
    how_often = {1: "once", 2: "twice"}.get(times, f"{times} times")
    return f"{how_often} {dict(FREQUENCY_UNITS).get(unit, unit)}"


def _frequency_part(dosage: str) -> Part:
    path = (dosage, 0, "timing", "repeat")

    def read(resource):
        repeat = _get(resource, path)
        if not isinstance(repeat, dict) or not isinstance(repeat.get("frequency"), int):
            return (None, "")
        return (repeat["frequency"], _text_of(repeat.get("periodUnit")))

    def write(resource, value):
        times, unit = value
        repeat = copy.deepcopy(_get(resource, path)) or {}
        if times:
            repeat.update(frequency=times, period=1, periodUnit=unit)
        else:
            for name in ("frequency", "period", "periodUnit"):
                repeat.pop(name, None)
        _set(resource, path, repeat)

    return Part(
        "frequency",
        "The frequency",
        "frequency",
        path,
        serves=(f"{dosage}[0].text",),
        read=read,
        write=write,
        words=frequency_words,
    )


def _dose_quantity_part(dosage: str) -> Part:
    path = (dosage, 0, "doseAndRate", 0, "doseQuantity")

    def write(resource, value):
        amount, unit = value
        before = _get(resource, path)
        quantity = copy.deepcopy(before) if isinstance(before, dict) else {}
        if amount is None:
            _set(resource, path, None)
            return
        if unit != _quantity_of(before)[1]:
            # A coded unit no longer matches: the words are kept, the code dropped.
            quantity.pop("code", None)
            quantity.pop("system", None)
        quantity.update(value=amount, unit=unit)
        _set(resource, path, quantity)

    return Part(
        "dose_quantity",
        "The amount",
        "quantity",
        path,
        serves=(f"{dosage}[0].text",),
        write=write,
        check=lambda value: (
            "The amount must be more than 0" if value[0] is not None and value[0] == 0 else ""
        ),
    )


def _value_part() -> Part:
    """An Observation's number, in the unit it already has: a change of unit is a
    different result, not a correction of this one."""
    path = ("valueQuantity", "value")
    return Part("value", "The result", "number", path, serves=("valueQuantity",), required=True)


def _phone_part() -> Part:
    def where(resource) -> int | None:
        for position, point in enumerate(resource.get("telecom") or ()):
            if isinstance(point, dict) and point.get("system") == "phone":
                return position
        return None

    def read(resource):
        position = where(resource)
        return "" if position is None else _text_of(resource["telecom"][position].get("value"))

    def write(resource, number):
        position = where(resource)
        if position is None:
            resource.setdefault("telecom", []).append({"system": "phone", "value": number})
        elif number:
            resource["telecom"][position]["value"] = number
        else:
            _remove(resource, ("telecom", position))

    return Part(
        "phone",
        "The phone number",
        "text",
        ("telecom",),
        serves=("telecom",),
        read=read,
        write=write,
        check=_phone_problem,
    )


def _phone_problem(number) -> str:
    """A phone number in the record is one anyone can call (the one rule for phone
    numbers, phr.contact_details)."""
    if number and contact_details.phone_number(number) is None:
        return contact_details.PHONE_PROBLEM
    return ""


def _postcode_problem(postcode) -> str:
    return "Enter a real postcode, like LS1 4AP" if postcode and uk_postcode(postcode) is None else ""


def _name_part(key, label, element) -> Part:
    """A name's given names or family name; the name's ``text``, which would then
    disagree with it, is dropped."""
    path = ("name", 0, element)

    def read(resource):
        value = _get(resource, path)
        return " ".join(str(v) for v in value) if isinstance(value, list) else _text_of(value)

    def write(resource, value):
        _clear(resource, path, ("text",))
        _set(resource, path, value.split() if element == "given" else value)

    return Part(key, label, "text", path, serves=("name",), required=True, read=read, write=write)


def _lines_part() -> Part:
    path = ("address", 0, "line")

    def read(resource):
        lines = _get(resource, path)
        return tuple(str(line) for line in lines) if isinstance(lines, list) else ()

    def write(resource, lines):
        _clear(resource, path, ("text",))
        _set(resource, path, list(lines))

    return Part("address_lines", "The address", "lines", path, serves=("address",), read=read, write=write)


def _address_part(key, label, element, *, check=None, keep=lambda value: value) -> Part:
    """A part of the first address; ``keep`` is the form a new value is stored in (a
    postcode in capitals with one space)."""
    path = ("address", 0, element)

    def write(resource, value):
        _clear(resource, path, ("text",))
        _set(resource, path, keep(value))

    return Part(key, label, "text", path, serves=("address",), write=write, check=check)


CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"

MEDICATION_STATEMENT_STATUS = (
    ("active", "Active"),
    ("completed", "Completed"),
    ("stopped", "Stopped"),
    ("on-hold", "On hold"),
    ("not-taken", "Not taken"),
    ("intended", "Intended"),
    ("unknown", "Unknown"),
    ("entered-in-error", "Entered in error"),
)
MEDICATION_REQUEST_STATUS = (
    ("active", "Active"),
    ("completed", "Completed"),
    ("stopped", "Stopped"),
    ("on-hold", "On hold"),
    ("cancelled", "Cancelled"),
    ("draft", "Draft"),
    ("unknown", "Unknown"),
    ("entered-in-error", "Entered in error"),
)
CLINICAL_STATUS = (
    ("active", "Active"),
    ("recurrence", "Recurrence"),
    ("relapse", "Relapse"),
    ("inactive", "Inactive"),
    ("remission", "In remission"),
    ("resolved", "Resolved"),
)
VERIFICATION_STATUS = (
    ("unconfirmed", "Unconfirmed"),
    ("provisional", "Provisional"),
    ("differential", "Differential"),
    ("confirmed", "Confirmed"),
    ("refuted", "Refuted"),
    ("entered-in-error", "Entered in error"),
)
ALLERGY_STATUS = (("active", "Active"), ("inactive", "Inactive"), ("resolved", "Resolved"))
CRITICALITY = (("low", "Low risk"), ("high", "High risk"), ("unable-to-assess", "Unable to assess"))
OBSERVATION_STATUS = (
    ("final", "Final"),
    ("amended", "Amended"),
    ("corrected", "Corrected"),
    ("entered-in-error", "Entered in error"),
)
IMMUNIZATION_STATUS = (
    ("completed", "Given"),
    ("not-done", "Not given"),
    ("entered-in-error", "Entered in error"),
)


def _medication_parts(dosage: str, statuses) -> list[Part]:
    dose = f"{dosage}[0].text"
    return [
        Part("dose_text", "The dose", "text", (dosage, 0, "text"), serves=(dose,)),
        _dose_quantity_part(dosage),
        _frequency_part(dosage),
        Part("status", "The status", "choice", ("status",), choices=statuses, required=True),
    ]


PARTS: dict[str, list[Part]] = {
    "MedicationStatement": _medication_parts("dosage", MEDICATION_STATEMENT_STATUS),
    "MedicationRequest": _medication_parts("dosageInstruction", MEDICATION_REQUEST_STATUS),
    "Condition": [
        _concept_part("concept", "The condition", ("code",), serves=("code",)),
        _status_part(
            "clinical_status",
            "Whether it is current",
            ("clinicalStatus",),
            CONDITION_CLINICAL,
            CLINICAL_STATUS,
            serves=("clinicalStatus",),
        ),
        _status_part(
            "verification_status",
            "Whether it is confirmed",
            ("verificationStatus",),
            CONDITION_VERIFICATION,
            VERIFICATION_STATUS,
            serves=("clinicalStatus",),
        ),
        Part(
            "onset",
            "When it started",
            "date",
            ("onsetDateTime",),
            serves=("onsetDateTime",),
            clears=("onsetAge", "onsetPeriod", "onsetRange", "onsetString"),
        ),
        Part(
            "abatement",
            "When it ended",
            "date",
            ("abatementDateTime",),
            serves=("clinicalStatus",),
            clears=(
                "abatementAge",
                "abatementPeriod",
                "abatementRange",
                "abatementString",
                "abatementBoolean",
            ),
        ),
    ],
    "AllergyIntolerance": [
        _concept_part("substance", "The substance", ("code",), serves=("code",)),
        _text_concept_part(
            "reaction",
            "The reaction",
            ("reaction", 0, "manifestation", 0),
            serves=("reaction[0].manifestation",),
        ),
        Part(
            "criticality",
            "How serious it is",
            "choice",
            ("criticality",),
            choices=CRITICALITY,
            serves=("criticality",),
        ),
        _status_part(
            "clinical_status",
            "Whether it is current",
            ("clinicalStatus",),
            ALLERGY_CLINICAL,
            ALLERGY_STATUS,
            serves=("verificationStatus",),
        ),
    ],
    "Observation": [
        _value_part(),
        Part("status", "The status", "choice", ("status",), choices=OBSERVATION_STATUS, required=True),
    ],
    "Immunization": [
        Part(
            "occurrence",
            "When it was given",
            "date",
            ("occurrenceDateTime",),
            serves=("occurrenceDateTime",),
            required=True,
            clears=("occurrenceString",),
        ),
        Part("status", "The status", "choice", ("status",), choices=IMMUNIZATION_STATUS, required=True),
    ],
    "Patient": [
        _name_part("given", "The given names", "given"),
        _name_part("family", "The family name", "family"),
        Part("birth_date", "The date of birth", "date", ("birthDate",), serves=("birthDate",), required=True),
        _lines_part(),
        _address_part("city", "The town or city", "city"),
        _address_part(
            "postcode",
            "The postcode",
            "postalCode",
            check=_postcode_problem,
            keep=lambda value: uk_postcode(value) or value,
        ),
        _phone_part(),
    ],
}


@dataclass
class Offer:
    """The parts offered for one item: those answering the flagged element first."""

    flagged: list[Part] = field(default_factory=list)
    others: list[Part] = field(default_factory=list)

    @property
    def parts(self) -> list[Part]:
        return [*self.flagged, *self.others]


def parts_for(resource: dict, element: str = "") -> Offer:
    """The parts of this item a clinician can change: the part the patient flagged first
    (all of them when the whole item was flagged), and only parts the item can hold
    (an Observation's number only when it has a number with a unit)."""
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    offer = Offer()
    for part in PARTS.get(kind, []):
        if part.key == "value" and not isinstance(_get(resource, ("valueQuantity",)), dict):
            continue
        flagged = not element or element in part.serves
        (offer.flagged if flagged else offer.others).append(part)
    if not offer.flagged:
        offer.flagged, offer.others = offer.others, []
    return offer


def choices_of(part: Part, resource: dict) -> tuple[tuple[str, str], ...]:
    """The part's choices, with the value the item holds now even when it is none of
    them (a status of "preliminary" stays choosable, so leaving it alone is no change)."""
    now = part.value_in(resource)
    known = dict(part.choices)
    extra = () if not now or now in known else ((now, now.replace("-", " ").capitalize()),)
    blank = () if now or part.required else (("", "Not recorded"),)
    return (*blank, *part.choices, *extra)


# --- Amending -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    part: Part
    before: str
    after: str

    @property
    def sentence(self) -> str:
        """The change in words: "The dose changes from 50mg once daily to 5mg once daily"."""
        label = self.part.label
        if not self.before:
            return f"{label} is set to {self.after}"
        if not self.after:
            return f"{label} is removed (it was {self.before})"
        return f"{label} changes from {self.before} to {self.after}"


def amend(resource: dict, values: dict[str, object], parts: list[Part]) -> tuple[dict, list[Change]]:
    """A deep copy of ``resource`` with every part whose new value differs from its value
    now written in; every other element stays exactly as it was. The changes are read
    back from the result, so they say what will be stored, a FHIR rule's effect too.
    Raises Refused, naming the part, for a value its rule refuses or a change that would
    leave the item contradicting itself (dose words against a new amount, an end before
    the start)."""
    amended = copy.deepcopy(resource)
    written = set()
    for part in parts:
        if part.key in values and not _same(part.value_in(resource), values[part.key]):
            _check(part, values[part.key])
            part.put(amended, values[part.key])
            written.add(part.key)
    if "verification_status" in written:
        _entered_in_error_has_no_clinical_status(amended)
    by_key = {part.key: part for part in parts}
    if written & {"dose_quantity", "frequency"} and "dose_text" in by_key:
        _dose_text_agrees(resource, amended, by_key)
    if written & {"dose_text", "dose_quantity"} and {"dose_text", "dose_quantity"} <= by_key.keys():
        _a_dose_stays(resource, amended, by_key)
    if written & {"onset", "abatement"} and {"onset", "abatement"} <= by_key.keys():
        _ends_after_it_starts(amended, by_key["onset"], by_key["abatement"])
    changes = []
    for part in parts:
        before, after = part.value_in(resource), part.value_in(amended)
        if not _same(before, after):
            changes.append(Change(part, part.say(before, resource), part.say(after, resource)))
    return amended, changes


DIRECTION_MESSAGE = "Remove the hidden text-direction characters"
# Where a part's problem is said, for the kinds with several inputs.
FIRST_INPUT = {"quantity": "value", "concept": "text", "date": "day", "frequency": "times"}


def _check(part: Part, value) -> None:
    """A new value is refused when its part's rule says so, and whatever is typed in words
    may hold no hidden text-direction characters (they make stored text read otherwise)."""
    texts = value if isinstance(value, tuple) else (value,)
    if any(isinstance(text, str) and has_direction_controls(text) for text in texts):
        raise Refused(part.key, DIRECTION_MESSAGE, _text_input(part, value))
    problem = part.check(value) if part.check else ""
    if problem:
        raise Refused(part.key, problem, FIRST_INPUT.get(part.kind, ""))


def _text_input(part: Part, value) -> str:
    """The input of a part that holds the text in question: a concept's words or code, a
    quantity's unit."""
    if part.kind == "concept":
        return "text" if has_direction_controls(value[0]) else "code"
    return "unit" if part.kind == "quantity" else ""


def _dose_text_agrees(resource: dict, amended: dict, parts: dict[str, Part]) -> None:
    """The dose in words must not contradict a new amount or frequency: a patient reads the
    words ("How to take it"). Words left as they were are refused; none at all are written
    from the new amount and frequency."""
    text_part = parts["dose_text"]
    changed = [
        key
        for key in ("dose_quantity", "frequency")
        if key in parts and not _same(parts[key].value_in(resource), parts[key].value_in(amended))
    ]
    text_before, text_after = text_part.value_in(resource), text_part.value_in(amended)
    if not changed or text_before != text_after:
        return
    if text_before.strip():
        raise Refused(
            "dose_text",
            f'The instructions still say "{text_before}": change them to match the new amount and how often',
        )
    dosage = dict(_get(amended, text_part.path[:-1]) or {})
    dosage.pop("patientInstruction", None)
    text_part.put(amended, dosage_words({k: v for k, v in dosage.items() if k != "text"}))


def _a_dose_stays(resource: dict, amended: dict, parts: dict[str, Part]) -> None:
    """A medicine that said its dose, in words or as an amount, keeps one: emptying both
    would leave the patient with no instructions (remove the medicine, or end it, instead)."""
    text, amount = parts["dose_text"], parts["dose_quantity"]
    had = text.value_in(resource).strip() or amount.value_in(resource)[0] is not None
    has = text.value_in(amended).strip() or amount.value_in(amended)[0] is not None
    if had and not has:
        raise Refused("dose_text", "Enter the dose in words or as an amount: the medicine needs one")


def _ends_after_it_starts(condition: dict, onset: Part, abatement: Part) -> None:
    """A condition cannot end before it started; dates known only to the month or year are
    compared as far as both are known."""
    started, ended = onset.value_in(condition), abatement.value_in(condition)
    if started and ended:
        known = min(len(started), len(ended))
        if ended[:known] < started[:known]:
            name = {10: "day", 7: "month"}.get(len(ended), "year")
            raise Refused(
                "abatement",
                f"{abatement.label} must be the same as or after {onset.label[0].lower()}{onset.label[1:]}",
                name,
            )


def _entered_in_error_has_no_clinical_status(condition: dict) -> None:
    """FHIR R4's con-5: a Condition entered in error has no clinical status."""
    if status_concept(CONDITION_VERIFICATION)[0](condition.get("verificationStatus")) == "entered-in-error":
        condition.pop("clinicalStatus", None)


def _same(before, after) -> bool:
    if isinstance(before, tuple) and isinstance(after, tuple):
        return len(before) == len(after) and all(_same(b, a) for b, a in zip(before, after, strict=True))
    if isinstance(before, Decimal) or isinstance(after, Decimal):
        return as_decimal(before) == as_decimal(after)
    return (before or "") == (after or "")


def part_at(path: str, parts: list[Part]) -> Part | None:
    """The part a validation problem's element path lies in, if any."""
    for part in parts:
        place = part.element_path
        if path == place or path.startswith((f"{place}.", f"{place}[")):
            return part
    return None
