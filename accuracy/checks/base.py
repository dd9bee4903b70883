"""What a check is: a small declared rule over one patient's record as all its holders
keep it, and what it found.

A rule has an id (stable: findings are keyed by it, and FHIR DetectedIssue codes are
these ids), a kind (Kahn's framework as OHDSI's Data Quality Dashboard uses it, plus
agreement across holders and duplicates), a severity, who should see what it finds (the
patient, the holder, or both), and a sentence in plain words. Its function takes the
record (``Record``: every current entry of every holder, parsed once) and yields ``Hit``s:
the entries concerned and what each holder's copy says, in words.

Rules never read the database: the engine (accuracy.checks.engine) hands them the record
the policy gave it, and turns their hits into findings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from django.db import models

from phr.models import Organisation, Patient, RecordEntry


class Kind(models.TextChoices):
    CONFORMANCE = "conformance", "Conformance"
    COMPLETENESS = "completeness", "Completeness"
    PLAUSIBILITY = "plausibility", "Plausibility"
    AGREEMENT = "agreement", "Agreement across holders"
    DUPLICATE = "duplicate", "Duplicate"


class Severity(models.TextChoices):
    HIGH = "high", "High"  # could harm the patient if acted on (a dose, an allergy)
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class Audience(models.TextChoices):
    PATIENT = "patient", "The patient"
    HOLDER = "holder", "The holder"
    BOTH = "both", "The patient and the holder"


def codings_in(resource) -> tuple[dict, ...]:
    """Every Coding anywhere in a resource (a dict with a system and a code), in document
    order (an explicit stack: resources nest deeply)."""
    found = []
    stack = [resource]
    nested = (dict, list)
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if "code" in value and isinstance(value.get("system"), str):
                found.append(value)
            stack.extend(v for v in reversed(value.values()) if isinstance(v, nested))
        else:
            stack.extend(v for v in reversed(value) if isinstance(v, nested))
    return tuple(found)


@dataclass(frozen=True)
class Item:
    """One current entry of the record, with its resource parsed."""

    entry: RecordEntry
    resource: dict

    def remember(self, key: str, make):
        """What make(item) gives, worked out once per item (rules ask the same questions of
        the same items many times: its codes, its names)."""
        memo = self.__dict__.setdefault("_memo", {})
        if key not in memo:
            memo[key] = make(self)
        return memo[key]

    @cached_property
    def codings_anywhere(self) -> tuple[dict, ...]:
        """Every Coding anywhere in the resource, found once per item however many rules look."""
        return codings_in(self.resource)

    @property
    def holder(self) -> Organisation:
        return self.entry.owner

    @property
    def type(self) -> str:
        return self.entry.resource_type

    def codings(self, element: str = "code") -> list[dict]:
        """The codings of a CodeableConcept element (``code``, ``medicationCodeableConcept``...)."""
        concept = self.resource.get(element)
        if not isinstance(concept, dict):
            return []
        return [c for c in concept.get("coding") or () if isinstance(c, dict)]

    def concept_text(self, element: str = "code") -> str:
        concept = self.resource.get(element)
        if not isinstance(concept, dict):
            return ""
        if concept.get("text"):
            return str(concept["text"])
        for coding in self.codings(element):
            if coding.get("display"):
                return str(coding["display"])
        return ""

    @property
    def name(self) -> str:
        """What the item is called, as the record shows it."""
        return self.entry.display or self.concept_text() or self.type


@dataclass(frozen=True)
class Record:
    """A patient's record as every holder keeps it: current versions, parsed once."""

    patient: Patient
    items: tuple[Item, ...]

    def of_type(self, *types: str) -> list[Item]:
        return [i for i in self.items if i.type in types]

    @cached_property
    def details(self) -> list[Item]:
        """Each holder's copy of who the patient is (their Patient resources)."""
        return [i for i in self.of_type("Patient") if not i.entry.entered_in_error]

    @cached_property
    def birth_date(self) -> date | None:
        return self.patient.birth_date

    @cached_property
    def death_date(self) -> date | None:
        """The earliest date of death any holder records (None when none does)."""
        found = []
        for item in self.details:
            value = item.resource.get("deceasedDateTime")
            if isinstance(value, str) and len(value) >= 10:
                try:
                    found.append(date.fromisoformat(value[:10]))
                except ValueError:
                    continue
        return min(found) if found else None

    @cached_property
    def sex(self) -> str:
        """The administrative gender the holders agree on ("" when they do not, or none says)."""
        said = {str(i.resource.get("gender")) for i in self.details if i.resource.get("gender")}
        return said.pop() if len(said) == 1 else ""


@dataclass(frozen=True)
class Hit:
    """What a rule found: the items concerned, what each says in words (the patient reads
    "<holder>'s record says <words>"), and values for the rule's sentence."""

    items: tuple[Item, ...]
    says: dict = field(default_factory=dict)  # entry id -> words
    words: dict = field(default_factory=dict)  # the sentence's {names}
    # What tells two hits of one rule about the same items apart (a rule that finds
    # several things in one item: the name and the date of birth of the same copies).
    topic: str = ""


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    severity: str
    audience: str
    title: str  # a heading in plain words
    sentence: str  # the explanation, a template over the hit's words
    find: Callable[[Record], Iterable[Hit]]

    def explain(self, hit: Hit) -> str:
        try:
            return self.sentence.format(**hit.words)
        except (KeyError, IndexError, ValueError):
            return self.title


RULES: dict[str, Rule] = {}


def rule(id: str, *, kind: str, severity: str, audience: str, title: str, sentence: str):
    """Declare a rule: the decorated function takes a Record and yields Hits."""

    def register(find: Callable[[Record], Iterator[Hit]]):
        if id in RULES:
            raise ValueError(f"two rules have the id {id!r}")
        RULES[id] = Rule(id, kind, severity, audience, title, sentence, find)
        return find

    return register
