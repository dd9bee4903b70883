"""How a patient's own record is put into plain words: the kinds of item, statuses,
details read from an item's FHIR JSON, where each version came from, and what changed
between versions, and which items the patient disputes.

Nothing here reads clinical content from the database: every function works on entries
and versions that the views have already obtained through consent.policy, which decided
and audited the read. The only queries are counts and the patient's own correction
requests and statements, which say that an item is disputed, never what it says.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet

from phr import vocabulary
from phr.columns import parse_fhir_datetime
from phr.fhir import bundle_entry
from phr.ingest import canonical_json, parse_json
from phr.models import EntryVersion, RecordEntry
from phr.render import concepts as render_concepts
from phr.render import dosage as render_dosage
from phr.render import item as render_item
from phr.render import values as render_values
from phr.render.concepts import concept_words, recorded_name
from phr.render.dates import fhir_moment, period_words
from phr.render.item import item_title
from phr.render.units import unit_words, with_unit

from . import elements, services
from .models import CorrectionRequest, Statement

# --- Kinds of item --------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    slug: str
    title: str  # a page heading: "Medicines"
    description: str  # one line for the summary page
    clinical: str  # the heading of the clinician's section
    resource_types: tuple[str, ...] = ()  # empty: everything no other kind takes

    def select(self, entries: QuerySet) -> QuerySet:
        """The entries of this kind among the given (already permitted) entries."""
        if self.resource_types:
            return entries.filter(resource_type__in=self.resource_types)
        return entries.exclude(resource_type__in=(*NAMED_TYPES, *NOT_ITEMS))


# The kinds and their names come from the one vocabulary (phr.vocabulary); a kind here
# adds how a page selects its entries.
KINDS: tuple[Kind, ...] = tuple(
    Kind(words.slug, words.title, words.description, words.clinical, words.resource_types)
    for words in vocabulary.KIND_WORDS
)
KINDS_BY_SLUG = {kind.slug: kind for kind in KINDS}
NAMED_TYPES = vocabulary.NAMED_TYPES
NOT_ITEMS = vocabulary.NOT_ITEMS


def record_items(entries: QuerySet) -> QuerySet:
    """The items of a record: every permitted entry but the patient's own details."""
    return entries.exclude(resource_type__in=NOT_ITEMS)


def kind_of(resource_type: str) -> Kind:
    return KINDS_BY_SLUG[vocabulary.kind_words_of(resource_type).slug]


type_name = vocabulary.type_name


def item_count(entries: QuerySet) -> int:
    """How many items these (already permitted) entries hold: the one count every page
    shows (the summary's kinds add up to it; the sharing preview says it)."""
    return record_items(entries).count()


def kind_counts(entries: QuerySet) -> list[tuple[Kind, int]]:
    """How many items of each kind there are (counts only: no clinical content is read)."""
    by_type = dict(record_items(entries).values_list("resource_type").annotate(n=Count("pk")).order_by())
    counts = []
    for kind in KINDS:
        if kind.resource_types:
            counts.append((kind, sum(by_type.get(t, 0) for t in kind.resource_types)))
        else:
            counts.append((kind, sum(n for t, n in by_type.items() if t not in NAMED_TYPES)))
    return counts


def owner_counts(entries: QuerySet) -> list[dict]:
    """The organisations that hold items among these entries, with how many each holds."""
    return list(
        record_items(entries)
        .values("owner_id", "owner__name", "owner__ods_code")
        .annotate(items=Count("pk"))
        .order_by("owner__name")
    )


# --- Status ---------------------------------------------------------------------------

STATUS_WORDS = {
    "active": "Active",
    "recurrence": "Active (it has come back)",
    "relapse": "Active (it has come back)",
    "inactive": "No longer active",
    "remission": "In remission",
    "resolved": "Resolved",
    "registered": "Waiting for a result",
    "preliminary": "Early result, may change",
    "final": "Final result",
    "amended": "Result changed after it was first given",
    "corrected": "Result corrected",
    "partial": "Part of the result",
    "cancelled": "Cancelled",
    "completed": "Completed",
    "stopped": "Stopped",
    "on-hold": "Paused",
    "intended": "Planned",
    "not-taken": "Not taken",
    "planned": "Planned",
    "arrived": "Arrived",
    "triaged": "Assessed on arrival",
    "in-progress": "In progress",
    "onleave": "On leave",
    "finished": "Finished",
    "not-done": "Not given",
    "current": "Current",
    "superseded": "Replaced by a newer version",
    "draft": "Draft",
    "unknown": "Not known",
}


def status_words(entry: RecordEntry) -> str:
    """The item's status as a patient would say it; never "current" for an item in error."""
    if entry.entered_in_error:
        return "Entered in error"
    code = (entry.clinical_status or "").strip()
    if not code:
        return "Not given"
    return STATUS_WORDS.get(code, code.replace("-", " ").capitalize())


# --- Disputes and disagreements ---------------------------------------------------------
# Correction requests are the patient's own requests, not clinical content: reading them
# here discloses nothing the policy has not already let the page show.

DISPUTED_TAG = {
    "system": "https://patient-record-portal.example/CodeSystem/record-flags",
    "code": "disputed",
    "display": "Accuracy disputed by the patient",
}


def with_dispute_flags(entries: QuerySet, patient_id) -> QuerySet:
    """The entries of one patient's record, each flagged ``under_dispute`` in the same
    query (disputed_entry_ids then asks nothing more): the patient's disputes are one
    small uncorrelated subquery, hashed once."""
    disputing = CorrectionRequest.objects.disputing().filter(patient_id=patient_id).values("entry_id")
    return entries.annotate(under_dispute=ExpressionWrapper(Q(pk__in=disputing), output_field=BooleanField()))


def disputed_entry_ids(entries: Iterable[RecordEntry]) -> set:
    """The ids of these entries whose accuracy the patient disputes (UK GDPR Art. 18):
    a correction request is open, or a statement of disagreement stands beside them.
    Templates show an "Under dispute" badge for every id returned here."""
    entries = list(entries)
    if not entries:
        return set()
    if hasattr(entries[0], "under_dispute"):  # flagged in the query (with_dispute_flags)
        return {entry.pk for entry in entries if entry.under_dispute}
    # A page's worth: a whole record is flagged in its own query instead.
    return services.disputed_entry_ids([entry.pk for entry in entries])


def count_disputed(entries: QuerySet) -> int:
    """How many of these (already permitted) entries are under dispute."""
    return (
        CorrectionRequest.objects.disputing()
        .filter(entry_id__in=entries.values("pk"))
        .values("entry_id")
        .distinct()
        .count()
    )


@dataclass(frozen=True)
class StatementView:
    """A statement of disagreement or the owner's response, as it stands beside an item."""

    heading: str
    text: str
    made_at: object
    from_patient: bool
    organisation: str


def _statements_by_entry(entry_ids) -> dict:
    found: dict = {}
    statements = (
        Statement.objects.filter(request__entry_id__in=list(entry_ids))
        .select_related("request__owner")
        .only("kind", "text", "made_at", "request__entry_id", "request__owner__name")
        .order_by("made_at", "id")
    )
    for statement in statements:
        mine = statement.kind == Statement.Kind.DISAGREEMENT
        owner = statement.request.owner.name
        found.setdefault(statement.request.entry_id, []).append(
            StatementView(
                heading="Your statement of disagreement" if mine else f"Response from {owner}",
                text=statement.text,
                made_at=statement.made_at,
                from_patient=mine,
                organisation=owner,
            )
        )
    return found


def open_request_for(entry: RecordEntry) -> CorrectionRequest | None:
    """The patient's open correction request on this item, if there is one."""
    return CorrectionRequest.objects.open().filter(entry=entry).only("pk", "received_on", "owner_id").first()


def correction_counts(patient_id) -> dict[str, int]:
    """How many correction requests the patient has made, and how many are open."""
    requests = CorrectionRequest.objects.filter(patient_id=patient_id)
    return {"all": requests.count(), "open": requests.open().count()}


def disagreement_statements(entry: RecordEntry) -> list[StatementView]:
    """The statements of disagreement the patient attached to this entry after a refusal,
    each followed by the organisation's response where it gave one, oldest first."""
    return _statements_by_entry([entry.pk]).get(entry.pk, [])


# --- Details read from the JSON ----------------------------------------------------------
# The words themselves come from phr.render, the one rendering layer; the names below
# stay so that callers of this module keep working.


def decode(text: str):
    """Stored JSON with every decimal exactly as written (4.10 stays 4.10)."""
    return json.loads(text, parse_float=Decimal)


_concepts = render_concepts.concepts_words
_quantity = render_values.quantity_words
_reference = render_item.name_of
_when = fhir_moment
_period = period_words
_dosage = render_dosage.dosages_words


def _range(resource: dict) -> str:
    return render_values.range_words(resource.get("referenceRange"))


def _result(resource: dict) -> str:
    found = render_values.measurement(resource)
    return found.text if found else ""


def item_details(entry: RecordEntry) -> list[tuple[str, str]]:
    """The parts of an item a patient would want to read, in plain words (phr.render.item);
    anything else stays in the download."""
    try:
        resource = decode(entry.json)
    except ValueError:
        return []
    return render_item.item_details(resource)


# --- Versions and what changed between them -----------------------------------------------

IGNORED_PATHS = frozenset({"meta.lastUpdated", "meta.versionId"})


@dataclass(frozen=True)
class Change:
    path: str
    kind: str  # added, removed, changed
    old: str = ""
    new: str = ""
    label: str = ""  # the part in a patient's words, where the path lies in one

    def __str__(self) -> str:
        if self.kind == "added":
            return f"{self.path}: added {self.new}"
        if self.kind == "removed":
            return f"{self.path}: removed (was {self.old})"
        return f"{self.path}: {self.old} → {self.new}"


def _shown(value) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
    return str(value)


def _same_scalar(old, new) -> bool:
    # 4.1 and 4.10 are different texts of a measurement: the precision changed.
    return type(old) is type(new) and str(old) == str(new)


def json_diff(old, new, path: str = "") -> list[Change]:
    """The element paths that differ between two FHIR resources, with old and new values,
    in document order (lists compared position by position)."""
    if path in IGNORED_PATHS:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key in sorted(old.keys() | new.keys()):
            child = f"{path}.{key}" if path else key
            if child in IGNORED_PATHS:
                continue
            if key not in new:
                changes.append(Change(child, "removed", old=_shown(old[key])))
            elif key not in old:
                changes.append(Change(child, "added", new=_shown(new[key])))
            else:
                changes.extend(json_diff(old[key], new[key], child))
        return changes
    if isinstance(old, list) and isinstance(new, list):
        changes = []
        for index in range(max(len(old), len(new))):
            child = f"{path}[{index}]"
            if index >= len(new):
                changes.append(Change(child, "removed", old=_shown(old[index])))
            elif index >= len(old):
                changes.append(Change(child, "added", new=_shown(new[index])))
            else:
                changes.extend(json_diff(old[index], new[index], child))
        return changes
    if isinstance(old, dict | list) or isinstance(new, dict | list) or not _same_scalar(old, new):
        return [Change(path or "(whole item)", "changed", old=_shown(old), new=_shown(new))]
    return []


# What a part of an item is called when a version changes it, by its element (the first
# step of its path); choice elements ("value[x]", "onset[x]") by their stem.
PART_WORDS = {
    "dosage": "The dose",
    "dosageInstruction": "The dose",
    "doseQuantity": "The dose",
    "status": "The status",
    "clinicalStatus": "Whether it is current",
    "verificationStatus": "Whether it is confirmed",
    "code": "The name",
    "medicationCodeableConcept": "The medicine",
    "medicationReference": "The medicine",
    "vaccineCode": "The vaccine",
    "recordedDate": "When it was recorded",
    "authoredOn": "When it was prescribed",
    "dateAsserted": "When it was recorded",
    "issued": "When the result was given",
    "date": "The date",
    "period": "When it happened",
    "note": "The notes",
    "reaction": "The reaction",
    "criticality": "How serious it is",
    "severity": "How severe it is",
    "bodySite": "Where in the body",
    "category": "The category",
    "interpretation": "What the result means",
    "referenceRange": "The normal range",
    "component": "The result",
    "conclusion": "The conclusion",
    "description": "The description",
    "type": "The type",
    "class": "The type",
    "reasonCode": "Why",
    "lotNumber": "The batch number",
    "name": "The name",
    "birthDate": "The date of birth",
    "gender": "Sex",
    "address": "The address",
    "telecom": "The phone number or email",
    "serviceProvider": "Where",
}
CHOICE_WORDS = {
    "value": "The result",
    "onset": "When it started",
    "abatement": "When it ended",
    "effective": "When it was taken",
    "occurrence": "When it was given",
    "performed": "When it was done",
}
STATUS_PARTS = frozenset({"status", "clinicalStatus", "verificationStatus"})
DOSE_ELEMENTS = frozenset({"dosage", "dosageInstruction"})
NOT_CONTENT = frozenset({"meta"})  # the server's bookkeeping, not what the item says


@dataclass(frozen=True)
class ChangeInWords:
    """One part of an item a version changed, as a patient reads it."""

    label: str  # "The dose", or "" for a part without a name
    old: str = ""
    new: str = ""

    @property
    def sentence(self) -> str:
        if not self.label:
            return "Another detail changed"
        if self.old and self.new and self.old != self.new:
            return f"{self.label} changed from {self.old} to {self.new}"
        part = self.label[0].lower() + self.label[1:]
        if self.new and not self.old:
            return f"Added {part}: {self.new}"
        if self.old and not self.new:
            return f"Removed {part} (it was {self.old})"
        return f"{self.label} changed"

    def __str__(self) -> str:
        return self.sentence


def _element(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def _part(resource_type: str, path: str) -> tuple[str, str]:
    """The part a changed path lies in, and its name: as a correction request names it
    where it can ("The dose" for dosage[0].text), else by its element; ("", "") for a
    part without a name in words. A medicine's dose is one part, however many of its
    elements (text, amount, timing) a version changed."""
    if _element(path) in DOSE_ELEMENTS:
        return _element(path), PART_WORDS[_element(path)]
    for element, label in elements.ELEMENTS.get(resource_type, []):
        if path == element or path.startswith((f"{element}.", f"{element}[")):
            return element, label
    element = _element(path)
    if element in PART_WORDS:
        return element, PART_WORDS[element]
    for stem, label in CHOICE_WORDS.items():
        if element.startswith(stem) and element[len(stem) : len(stem) + 1].isupper():
            return element, label
    return "", ""


def _status_word(value) -> str:
    code = value if isinstance(value, str) else None
    if isinstance(value, dict):
        codes = [c.get("code") for c in value.get("coding") or () if isinstance(c, dict)]
        code = next((c for c in codes if c in STATUS_WORDS), None)
    return STATUS_WORDS[code].lower() if code in STATUS_WORDS else ""


def _quantity_words(value: dict) -> str:
    number = f"{value.get('comparator', '')}{value['value']}"
    return with_unit(number, unit_words(value))


def _value_words(value) -> str:
    """A FHIR value in a patient's words: a date as a date, a concept by its name, a
    quantity with its unit, a dose by its text; "" where there are no words for it."""
    if value is None or value == [] or value == {}:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | Decimal | float):
        return str(value)
    if isinstance(value, str):
        return fhir_moment(value) if value[:4].isdigit() and parse_fhir_datetime(value) else value
    if isinstance(value, list):
        return "; ".join(w for w in (_value_words(v) for v in value) if w)
    if not isinstance(value, dict):
        return ""
    if value.get("text") and not value.get("coding"):
        return str(value["text"])
    if "coding" in value:
        return concept_words(value)
    if value.get("value") is not None:
        return _quantity_words(value)
    if "start" in value or "end" in value:
        return period_words(value)
    if value.get("display"):
        return str(value["display"])
    return ""


def _dose_words(dosages) -> str:
    """A medicine's doses as a version has them: the instructions as written and, where
    the amount and timing say something else in words, those too, so that a change to
    either is seen ("50mg once daily (1000 mg 3 times a day)")."""
    said = []
    for dosage in dosages if isinstance(dosages, list) else [dosages]:
        if not isinstance(dosage, dict):
            continue
        written = render_dosage.dosage_words(dosage)
        structured = render_dosage.dosage_words(
            {k: v for k, v in dosage.items() if k not in ("text", "patientInstruction")}
        )
        if structured and written and structured.casefold() != written.casefold():
            said.append(f"{written} ({structured[:1].lower()}{structured[1:]})")
        else:
            said.append(written or structured)
    return "; ".join(w for w in said if w)


def _part_words(part: str, value) -> str:
    if part in DOSE_ELEMENTS:
        return _dose_words(value)
    return (_status_word(value) if part in STATUS_PARTS else "") or _value_words(value)


def _as_written(value) -> str:
    """A concept as its sender wrote it (its text, else the coding's display), for a change
    the patient's short name for it would hide."""
    if isinstance(value, dict) and ("coding" in value or "text" in value):
        return str(value.get("text") or "") or recorded_name(value)
    return _value_words(value)


def _said(part: str, value) -> str:
    """A part in the patient's words; a concept whose recorded wording differs says that
    too ("High blood pressure (recorded as “Essential hypertension”)"), so that a change
    of wording is never hidden behind a short name."""
    words = _part_words(part, value)
    if isinstance(value, dict) and ("coding" in value or "text" in value):
        written = _as_written(value)
        if written and written != words:
            return f"{words} (recorded as “{written}”)" if words else written
    return words


def changes_in_words(resource_type: str, old: dict, new: dict) -> list[ChangeInWords]:
    """What changed between two versions of an item, one sentence for each part that
    changed, in document order; parts without a name in words are said once as
    "Another detail changed". Never a FHIR path or an internal id."""
    found: list[ChangeInWords] = []
    seen: set[str] = set()
    other = False
    for change in json_diff(old, new):
        if _element(change.path) in NOT_CONTENT:
            continue
        part, label = _part(resource_type, change.path)
        if not label:
            other = True
            continue
        if part in seen:
            continue
        seen.add(part)
        before, after = elements.value_at(old, part), elements.value_at(new, part)
        was, now = _said(part, before), _said(part, after)
        found.append(ChangeInWords(label, "" if was == now else was, "" if was == now else now))
    if other:
        found.append(ChangeInWords(""))
    return found


@dataclass(frozen=True)
class VersionView:
    version: EntryVersion
    origin: str
    changes: list[ChangeInWords]
    first: bool


def version_origin(version: EntryVersion, entry: RecordEntry) -> str:
    """What produced a version, and who: the data owner sending it, or an amendment."""
    if version.source == EntryVersion.Source.CORRECTION:
        return f"Amended by {entry.owner.name} after a correction request"
    # Only the data owner sends its items, so the sender is the entry's owner.
    return f"Received from {entry.owner.name}"


def says_now(entry: RecordEntry, element: str) -> str:
    """What one part of an item says in its current version, in words (the whole item's
    name for the empty path): never the copy a request kept of an older version."""
    if not element:
        return entry.display
    return elements.says(decode(entry.json), element)


def version_history(entry: RecordEntry, versions: list[EntryVersion]) -> list[VersionView]:
    """Every version, newest first, each with what changed since the one before it."""
    views, previous = [], None
    for version in versions:
        current = decode(version.json)
        changes = [] if previous is None else changes_in_words(entry.resource_type, previous, current)
        views.append(VersionView(version, version_origin(version, entry), changes, previous is None))
        previous = current
    return list(reversed(views))


def group_by_kind(entries: Iterable[RecordEntry]) -> list[tuple[Kind, list[ItemRow]]]:
    """Entries grouped under their kinds, in the kinds' order, leaving out empty kinds."""
    groups: dict[str, list[ItemRow]] = {kind.slug: [] for kind in KINDS}
    for row in item_rows(entries):
        groups[kind_of(row.entry.resource_type).slug].append(row)
    return [(KINDS_BY_SLUG[slug], items) for slug, items in groups.items() if items]


def _subject(resource: dict) -> dict:
    """The patient reference an item carries, for the resources that speak about it."""
    for key in ("subject", "patient"):
        if isinstance(resource.get(key), dict) and resource[key]:
            return resource[key]
    return {"display": "The patient"}


def _tagged(entry: RecordEntry) -> tuple[str, dict]:
    """A disputed entry's stored text with the disputed tag in meta.tag, re-encoded the
    way it was stored (decimals exactly as written), and the decoded resource."""
    resource = parse_json(entry.json.encode(), str(entry.pk))
    tags = resource.setdefault("meta", {}).setdefault("tag", [])
    if not any(t.get("system") == DISPUTED_TAG["system"] and t.get("code") == "disputed" for t in tags):
        tags.append(dict(DISPUTED_TAG))
    return canonical_json(resource).decode(), resource


def _flag(entry: RecordEntry, resource: dict) -> dict:
    return {
        "resourceType": "Flag",
        "id": f"disputed-{entry.pk.hex}",
        "meta": {"tag": [dict(DISPUTED_TAG)]},
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/flag-detail",
                "valueReference": {"reference": f"urn:uuid:{entry.pk}"},
            }
        ],
        "status": "active",
        "code": {"coding": [dict(DISPUTED_TAG)], "text": DISPUTED_TAG["display"]},
        "subject": _subject(resource),
    }


KIND_WORDS = {True: Statement.Kind.DISAGREEMENT.label, False: Statement.Kind.REBUTTAL.label}


def _communication(entry: RecordEntry, resource: dict, number: int, statement: StatementView) -> dict:
    owner = {"display": statement.organisation}
    return {
        "resourceType": "Communication",
        "id": f"statement-{entry.pk.hex}-{number}",
        "status": "completed",
        "category": [
            {"text": statement.heading if statement.from_patient else "Response from the organisation"}
        ],
        "subject": _subject(resource),
        "about": [{"reference": f"urn:uuid:{entry.pk}"}],
        "sent": statement.made_at.isoformat(),
        "sender": _subject(resource) if statement.from_patient else owner,
        "payload": [{"contentString": statement.text}],
    }


def fhir_bundle(entries: Iterable[RecordEntry], at) -> str:
    """A FHIR R4 collection Bundle of the entries, each resource the stored canonical JSON
    text as it is: concatenated, never decoded and re-encoded, so nothing is lost. The
    exception is a disputed item: it carries the disputed tag in meta.tag and is followed
    by a Flag saying so and a Communication for each statement of disagreement or response."""
    entries = list(entries)
    disputed = disputed_entry_ids(entries)
    statements = _statements_by_entry(disputed) if disputed else {}
    head = f'{{"resourceType":"Bundle","type":"collection","timestamp":"{at.isoformat(timespec="seconds")}"'
    parts, flags = [], []
    for entry in entries:
        if entry.pk not in disputed:
            parts.append(bundle_entry(f"urn:uuid:{entry.pk}", entry.json, None))
            continue
        text, resource = _tagged(entry)
        parts.append(bundle_entry(f"urn:uuid:{entry.pk}", text, None))
        extra = [_flag(entry, resource)] + [
            _communication(entry, resource, number, statement)
            for number, statement in enumerate(statements.get(entry.pk, []), start=1)
        ]
        flags += [
            bundle_entry(f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, r['id'])}", json.dumps(r), None)
            for r in extra
        ]
    parts += flags
    # FHIR allows no empty arrays: a record with nothing in it has no "entry" at all.
    return head + (f',"entry":[{",".join(parts)}]}}' if parts else "}")


@dataclass(frozen=True)
class ItemRow:
    """An entry as a list shows it: with its status in words and whether it is disputed."""

    entry: RecordEntry
    status: str
    type_name: str
    disputed: bool
    statements: tuple[StatementView, ...] = ()

    @property
    def sensitive(self) -> bool:
        return self.entry.category != "general"


def item_rows(entries: Iterable[RecordEntry]) -> list[ItemRow]:
    entries = list(entries)
    disputed = disputed_entry_ids(entries)
    statements = _statements_by_entry(disputed) if disputed else {}
    return [
        ItemRow(
            entry,
            status_words(entry),
            type_name(entry.resource_type),
            entry.pk in disputed,
            tuple(statements.get(entry.pk, ())),
        )
        for entry in entries
    ]


def patient_title(entry: RecordEntry) -> str:
    """The item's name for its patient (phr.render.item.item_title), else its recorded
    name, else what kind of item it is."""
    try:
        resource = decode(entry.json)
    except ValueError:
        resource = None
    return item_title(resource) or entry.display or type_name(entry.resource_type)
