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
from dataclasses import dataclass, replace
from decimal import Decimal

from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet

from phr.columns import concept_text
from phr.fhir import bundle_entry
from phr.ingest import canonical_json, parse_json
from phr.models import EntryVersion, RecordEntry
from phr.render.dates import fhir_moment

from . import elements, services
from .models import CorrectionRequest, Statement

# --- Kinds of item --------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    slug: str
    title: str  # a page heading: "Medicines"
    description: str  # one line for the summary page
    resource_types: tuple[str, ...] = ()  # empty: everything no other kind takes

    def select(self, entries: QuerySet) -> QuerySet:
        """The entries of this kind among the given (already permitted) entries."""
        if self.resource_types:
            return entries.filter(resource_type__in=self.resource_types)
        return entries.exclude(resource_type__in=(*NAMED_TYPES, *NOT_ITEMS))


KINDS: tuple[Kind, ...] = (
    Kind("problems", "Health problems", "Illnesses and conditions recorded about you", ("Condition",)),
    Kind(
        "medications",
        "Medicines",
        "Medicines you take or have been prescribed",
        ("MedicationStatement", "MedicationRequest"),
    ),
    Kind("allergies", "Allergies and reactions", "Things you react badly to", ("AllergyIntolerance",)),
    Kind(
        "test-results",
        "Test results",
        "Blood tests, measurements and reports",
        ("Observation", "DiagnosticReport"),
    ),
    Kind("encounters", "Appointments and stays", "Visits, appointments and hospital stays", ("Encounter",)),
    Kind("immunisations", "Vaccinations", "Vaccines you have had", ("Immunization",)),
    Kind(
        "documents",
        "Letters and documents",
        "Letters, discharge summaries and other documents",
        ("DocumentReference",),
    ),
    Kind("other", "Other items", "Everything else on your record, such as care plans and procedures"),
)
KINDS_BY_SLUG = {kind.slug: kind for kind in KINDS}
NAMED_TYPES = frozenset(t for kind in KINDS for t in kind.resource_types)
# Each organisation's copy of the patient's own details is not an item of the record.
NOT_ITEMS = frozenset({"Patient"})


def record_items(entries: QuerySet) -> QuerySet:
    """The items of a record: every permitted entry but the patient's own details."""
    return entries.exclude(resource_type__in=NOT_ITEMS)


def kind_of(resource_type: str) -> Kind:
    for kind in KINDS:
        if resource_type in kind.resource_types:
            return kind
    return KINDS_BY_SLUG["other"]


TYPE_NAMES = {
    "Condition": "Health problem",
    "MedicationStatement": "Medicine",
    "MedicationRequest": "Prescription",
    "AllergyIntolerance": "Allergy or reaction",
    "Observation": "Test result or measurement",
    "DiagnosticReport": "Test report",
    "Encounter": "Appointment or stay",
    "Immunization": "Vaccination",
    "DocumentReference": "Letter or document",
    "Procedure": "Procedure or operation",
    "CarePlan": "Care plan",
    "Goal": "Goal",
    "ImagingStudy": "Scan or X-ray",
}


def type_name(resource_type: str) -> str:
    """What a kind of FHIR resource is called in plain words."""
    return TYPE_NAMES.get(resource_type, resource_type)


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


def decode(text: str):
    """Stored JSON with every decimal exactly as written (4.10 stays 4.10)."""
    return json.loads(text, parse_float=Decimal)


def _concepts(values) -> str:
    if isinstance(values, dict):
        values = [values]
    return ", ".join(t for t in (concept_text(v) for v in values or ()) if t)


def _quantity(value) -> str:
    if not isinstance(value, dict) or value.get("value") is None:
        return ""
    unit = value.get("unit") or value.get("code") or ""
    return f"{value.get('comparator', '')}{value['value']} {unit}".strip()


def _reference(value) -> str:
    return str(value.get("display") or "") if isinstance(value, dict) else ""


def _dosage(resource: dict) -> str:
    dosages = resource.get("dosage") or resource.get("dosageInstruction") or ()
    return "; ".join(str(d["text"]) for d in dosages if isinstance(d, dict) and d.get("text"))


def _range(resource: dict) -> str:
    parts = []
    for item in resource.get("referenceRange") or ():
        if not isinstance(item, dict):
            continue
        if item.get("text"):
            parts.append(str(item["text"]))
        elif item.get("low") or item.get("high"):
            low, high = _quantity(item.get("low")), _quantity(item.get("high"))
            parts.append(f"{low or '…'} to {high or '…'}")
    return "; ".join(parts)


def _result(resource: dict) -> str:
    if "valueQuantity" in resource:
        return _quantity(resource["valueQuantity"])
    if "valueCodeableConcept" in resource:
        return concept_text(resource["valueCodeableConcept"])
    for key in ("valueString", "valueBoolean", "valueInteger", "valueDateTime"):
        if key in resource:
            value = resource[key]
            return ("Yes" if value else "No") if isinstance(value, bool) else str(value)
    parts = []
    for component in resource.get("component") or ():
        if isinstance(component, dict):
            value = _result(component)
            if value:
                parts.append(f"{concept_text(component.get('code')) or 'Part'}: {value}")
    return "; ".join(parts)


def _reactions(resource: dict) -> tuple[str, str]:
    found, severities = [], []
    for reaction in resource.get("reaction") or ():
        if not isinstance(reaction, dict):
            continue
        found.append(_concepts(reaction.get("manifestation")) or str(reaction.get("description") or ""))
        if reaction.get("severity"):
            severities.append(str(reaction["severity"]))
    return ", ".join(f for f in found if f), ", ".join(severities)


_when = fhir_moment


def _period(value) -> str:
    if not isinstance(value, dict):
        return ""
    start, end = _when(value.get("start")), _when(value.get("end"))
    day, at, end_time = end.partition(" at ")
    if at and start.startswith(f"{day} at "):  # the same day: name it once
        return f"{start} to {end_time}"
    if start and end:
        return f"{start} to {end}"
    return f"from {start}" if start else (f"until {end}" if end else "")


def item_details(entry: RecordEntry) -> list[tuple[str, str]]:
    """The parts of an item a patient would want to read, in plain words, where they are
    easy to find in its FHIR JSON; anything else stays in the download."""
    try:
        resource = decode(entry.json)
    except ValueError:
        return []
    if not isinstance(resource, dict):
        return []
    rtype = resource.get("resourceType")
    rows: list[tuple[str, str]] = []

    def add(label: str, value) -> None:
        if value:
            rows.append((label, str(value)))

    if rtype == "AllergyIntolerance":
        add("Substance", concept_text(resource.get("code")))
        reaction, severity = _reactions(resource)
        add("Reaction", reaction)
        add("How severe", severity)
        add("Risk of a serious reaction", resource.get("criticality"))
    elif rtype in ("MedicationStatement", "MedicationRequest"):
        add(
            "Medicine",
            concept_text(resource.get("medicationCodeableConcept"))
            or _reference(resource.get("medicationReference")),
        )
        add("How to take it", _dosage(resource))
        add("Why", _concepts(resource.get("reasonCode")))
    elif rtype == "Observation":
        add("Test or measurement", concept_text(resource.get("code")))
        add("Result", _result(resource))
        add("Normal range", _range(resource))
        add("What the result means", _concepts(resource.get("interpretation")))
    elif rtype == "DiagnosticReport":
        add("Report", concept_text(resource.get("code")))
        add("Conclusion", resource.get("conclusion"))
    elif rtype == "Condition":
        add("Condition", concept_text(resource.get("code")))
        add("How severe", concept_text(resource.get("severity")))
        add("Where in the body", _concepts(resource.get("bodySite")))
        add("Started", _when(resource.get("onsetDateTime")) or _period(resource.get("onsetPeriod")))
        add("Ended", _when(resource.get("abatementDateTime")))
    elif rtype == "Immunization":
        add("Vaccine", concept_text(resource.get("vaccineCode")))
        add("Dose", _quantity(resource.get("doseQuantity")))
        add("Batch number", resource.get("lotNumber"))
    elif rtype == "Encounter":
        types = resource.get("type") or ()
        add(
            "Type",
            _concepts(types)
            or concept_text(resource.get("class"))
            or (resource.get("class") or {}).get("display"),
        )
        add("When", _period(resource.get("period")))
        add("Why", _concepts(resource.get("reasonCode")))
        add("Where", _reference(resource.get("serviceProvider")))
    elif rtype == "DocumentReference":
        add("Type of document", concept_text(resource.get("type")))
        add("Description", resource.get("description"))
    notes = [str(n["text"]) for n in resource.get("note") or () if isinstance(n, dict) and n.get("text")]
    add("Notes", " / ".join(notes))
    return rows


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


@dataclass(frozen=True)
class VersionView:
    version: EntryVersion
    origin: str
    changes: list[Change]
    first: bool


def version_origin(version: EntryVersion, entry: RecordEntry) -> str:
    """What produced a version, and who: the data owner sending it, or an amendment."""
    if version.source == EntryVersion.Source.CORRECTION:
        return f"Amended by {entry.owner.name} after a correction request"
    # Only the data owner sends its items, so the sender is the entry's owner.
    batch = f" (delivery {version.batch_id.hex[:8]})" if version.batch_id else ""
    return f"Received from {entry.owner.name}{batch}"


def version_history(entry: RecordEntry, versions: list[EntryVersion]) -> list[VersionView]:
    """Every version, newest first, each with what changed since the one before it."""
    views, previous = [], None
    for version in versions:
        current = decode(version.json)
        changes = [] if previous is None else json_diff(previous, current)
        changes = [replace(c, label=elements.label_within(entry.resource_type, c.path)) for c in changes]
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
