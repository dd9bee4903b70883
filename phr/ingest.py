"""Ingest: FHIR data from a member organisation into the shared care record.

One call is one batch. It runs in three steps:
1. read: every path (or parsed document) becomes a list of received resources; input
   that cannot be used at all (unreadable, not JSON, too large, too deep) stops the
   batch before anything is stored (UnusableInput, exit 2);
2. check: each resource is given its identity, its urn:uuid references are resolved
   across the whole batch, and it is validated on its own against FHIR R4;
3. store: in one transaction, patients are matched, and each valid resource becomes a
   new entry, a new version of an existing entry, or nothing when its content is the
   same as the current version. Nothing is overwritten: versions are append-only.

The data owner is always the sending organisation, never something read from the data.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import re
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import simplejson
from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

import audit

from . import columns, fhir
from .models import (
    EntryVersion,
    IngestBatch,
    Organisation,
    Patient,
    PatientIdentifier,
    RecordEntry,
    Refiling,
)
from .nhs_number import NHS_NUMBER_SYSTEM, is_valid_nhs_number, normalise
from .signals import entries_changed

log = logging.getLogger(__name__)

BUNDLE_TYPES_WITH_ENTRIES = {
    "transaction",
    "batch",
    "collection",
    "searchset",
    "document",
    "message",
    "history",
}
JSON_SUFFIXES = {".json"}
NDJSON_SUFFIXES = {".ndjson", ".jsonl"}
# Top-level elements that point at the patient whose record an item belongs to.
PATIENT_REFERENCE_FIELDS = ("subject", "patient", "beneficiary", "for", "individual")
# The portal's own resources: consent choices, correction tasks and their conversation,
# amendments' provenance and the audit trail. Taken from an organisation they would show
# in a patient's record as the portal's own word, so none is ever stored from one.
# (An organisation's Organization and Practitioner are kept, as its own reference data:
# in no patient's record, and never served as the portal's, which come from its tables.)
PORTAL_OWNED_TYPES = frozenset(
    {"Consent", "Task", "Communication", "Provenance", "AuditEvent", "DetectedIssue"}
)
# The sources that are the portal recording its own acts through the ingest (an
# amendment's Provenance): never a sender, whatever channel it uses.
PORTAL_SOURCES = frozenset({"correction"})

Progress = Callable[[int, int], None]


class NdjsonLines(list):
    """The parsed lines of an NDJSON file: (line number, value) pairs."""


class UnusableInput(Exception):
    """The input cannot be used at all; the message is one line a person can act on."""


@dataclass
class Received:
    """One resource as received, with where it sat, for messages and reference resolution."""

    resource: dict
    where: str  # FHIRPath of the resource in its document, e.g. "Bundle.entry[3].resource"
    label: str  # the file or document it came from
    full_url: str = ""
    request_url: str = ""
    method: str = ""


@dataclass
class Checked:
    received: Received
    resource_type: str
    fhir_id: str
    text: str
    content_hash: str


@dataclass
class IngestResult:
    accepted: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    issues: list[dict] = field(default_factory=list)
    batch_id: str = ""
    # resource type -> {"created": n, "updated": n, "unchanged": n, "rejected": n}
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)
    # The patients whose records this batch changed (phr.signals.entries_changed).
    changed_patients: set = field(default_factory=set)

    def count(self, resource_type: str, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        row = self.by_type.setdefault(resource_type or "(none)", {})
        row[outcome] = row.get(outcome, 0) + 1

    @property
    def exit_code(self) -> int:
        return 1 if self.rejected else 0

    def as_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "issues": self.issues,
            "batch": self.batch_id,
        }


# --- 1. Read ------------------------------------------------------------------------


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files named, and the JSON and NDJSON files inside folders named, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and p.suffix.lower() in JSON_SUFFIXES | NDJSON_SUFFIXES
                )
            )
        elif path.is_file():
            found.append(path)
        else:
            raise UnusableInput(f"{path}: no such file or folder")
    if not found:
        raise UnusableInput("no JSON or NDJSON files found in the paths given")
    return found


# A JSON number whose text a float would not keep: a trailing zero in the fraction
# ("1.10": FHIR decimals keep their precision), an exponent, or an integer too large
# for 64 bits. Documents holding one are parsed with Decimal numbers instead of floats.
_PRECISE_NUMBER = re.compile(rb"[:,\[]\s*-?\d+(?:\.\d*0|(?:\.\d+)?[eE][+-]?\d+|\d{18,})\s*[,}\]]")


def parse_json(data: bytes, label: str):
    try:
        if _PRECISE_NUMBER.search(data):
            return simplejson.loads(data, use_decimal=True)
        return orjson.loads(data)
    except (orjson.JSONDecodeError, simplejson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnusableInput(f"{label}: not valid JSON ({exc})") from None
    except RecursionError:
        raise UnusableInput(f"{label}: nested too deeply") from None
    except ValueError:  # an integer longer than Python converts (sys.get_int_max_str_digits)
        raise UnusableInput(f"{label}: a number has more digits than are allowed") from None


def canonical_json(resource: dict) -> bytes:
    """The stored text: keys sorted, no spaces, UTF-8; decimals exactly as received."""
    try:
        return orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # a Decimal (or an integer beyond 64 bits) from a precise parse
        text = simplejson.dumps(
            resource, use_decimal=True, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return text.encode()


def read_documents(paths: Iterable[str | os.PathLike]) -> list[tuple[str, object]]:
    """Parse each file into (label, JSON value); an NDJSON file gives a list of resources."""
    documents: list[tuple[str, object]] = []
    for path in expand_paths(paths):
        label = path.name
        try:
            size = path.stat().st_size
            if size > settings.INGEST_MAX_FILE_BYTES:
                raise UnusableInput(
                    f"{label}: {size:,} bytes is larger than the {settings.INGEST_MAX_FILE_BYTES:,} allowed"
                )
            data = path.read_bytes()
        except OSError as exc:
            raise UnusableInput(f"{label}: cannot be read ({exc.strerror or exc})") from None
        if path.suffix.lower() in NDJSON_SUFFIXES:
            lines = []
            for number, line in enumerate(data.splitlines(), start=1):
                if line.strip():
                    lines.append((number, parse_json(line, f"{label} line {number}")))
            documents.append((label, NdjsonLines(lines)))
        else:
            documents.append((label, parse_json(data, label)))
    return documents


def _received_from(label: str, document) -> list[Received]:
    if isinstance(document, NdjsonLines):
        items = []
        for number, value in document:
            if not isinstance(value, dict):
                raise UnusableInput(f"{label} line {number}: a line must hold one JSON object")
            items.append(Received(value, _type_name(value), f"{label} line {number}"))
        return items
    if not isinstance(document, dict):
        raise UnusableInput(f"{label}: expected a FHIR resource or Bundle (a JSON object)")
    if document.get("resourceType") == "Bundle" and str(document.get("type")) in BUNDLE_TYPES_WITH_ENTRIES:
        entries = document.get("entry") or []
        if not isinstance(entries, list):
            raise UnusableInput(f"{label}: Bundle.entry must be a list")
        items = []
        for index, entry in enumerate(entries):
            where = f"Bundle.entry[{index}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
                # An entry with nothing to store (a DELETE, a search link): reported, not stored.
                items.append(Received({}, f"{where}.resource", label))
                continue
            request = entry.get("request") if isinstance(entry.get("request"), dict) else {}
            items.append(
                Received(
                    entry["resource"],
                    f"{where}.resource",
                    label,
                    full_url=str(entry.get("fullUrl") or ""),
                    request_url=str(request.get("url") or ""),
                    method=str(request.get("method") or "").upper(),
                )
            )
        return items
    return [Received(document, _type_name(document), label)]


def _type_name(resource: dict) -> str:
    rtype = resource.get("resourceType")
    return rtype if isinstance(rtype, str) and rtype.isalnum() else "Resource"


# --- 2. Check -----------------------------------------------------------------------


def _depth_and_references(value, max_depth: int, local: dict[str, str]) -> None:
    """Walk a resource once: refuse nesting deeper than max_depth and rewrite references
    to other resources of the same batch (urn:uuid: or absolute fullUrls) as Type/id."""

    def walk(node, depth: int) -> None:
        if depth > max_depth:
            raise UnusableInput(f"nested more than {max_depth} levels deep")
        if type(node) is dict:
            if local:
                ref = node.get("reference")
                if type(ref) is str and ref in local:
                    node["reference"] = local[ref]
            children = node.values()
        else:
            children = node
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                walk(child, depth + 1)

    walk(value, 1)


def _identity(item: Received) -> str:
    """The resource's id: its own, else from its entry's fullUrl or request URL, else
    derived from its content so that sending the same thing again changes nothing."""
    for url in (item.full_url, item.request_url):
        if url.startswith("urn:uuid:"):
            return url.removeprefix("urn:uuid:")
        tail = url.rstrip("/").rsplit("/", 2)
        if len(tail) >= 2 and tail[-2] == item.resource.get("resourceType") and tail[-1]:
            return tail[-1].split("?")[0]
    return "c" + hashlib.sha256(canonical_json(item.resource)).hexdigest()[:40]


def content_hash_of(resource: dict, text: bytes) -> str:
    # The sender's own version stamps are not content: resending the same item with a new
    # lastUpdated is no change.
    meta = resource.get("meta")
    if isinstance(meta, dict) and ("lastUpdated" in meta or "versionId" in meta):
        trimmed = {k: v for k, v in meta.items() if k not in ("lastUpdated", "versionId")}
        copy = (
            {**resource, "meta": trimmed} if trimmed else {k: v for k, v in resource.items() if k != "meta"}
        )
        text = canonical_json(copy)
    return hashlib.sha256(text).hexdigest()


def check(
    items: list[Received],
    result: IngestResult,
    progress: Progress | None = None,
    *,
    source: str = "",
    workers: int = 1,
) -> list[Checked]:
    """Give each resource its identity, resolve references inside the batch, validate it,
    and refuse the portal's own resource types from anyone but the portal. With
    ``workers`` above 1, validation (most of the work) runs in that many processes.

    Raises UnusableInput for a resource too large or too deep to handle at all.
    """
    local: dict[str, str] = {}
    for item in items:
        rtype = item.resource.get("resourceType")
        if isinstance(rtype, str) and rtype:
            if item.resource.get("id") is None:
                item.resource["id"] = _identity(item)
            if not isinstance(item.resource["id"], str):
                continue  # validation will reject it by name
            target = f"{rtype}/{item.resource['id']}"
            if item.full_url:
                local[item.full_url] = target
    # Pass 1, in order: what can be refused without validating, and each other
    # resource's stored text (with its references inside the batch resolved).
    max_depth = settings.INGEST_MAX_DEPTH
    max_bytes = settings.INGEST_MAX_RESOURCE_BYTES
    steps: list[tuple[Received, bytes | None, tuple[str, str, str] | None]] = []
    for item in items:
        resource = item.resource
        if not resource:
            empty = ("(empty entry)", item.where, "this entry carries no resource to store")
            steps.append((item, None, empty))
            continue
        try:
            _depth_and_references(resource, max_depth, local)
        except UnusableInput as exc:
            raise UnusableInput(f"{item.label}: {item.where} is {exc}") from None
        text = canonical_json(resource)
        if len(text) > max_bytes:
            raise UnusableInput(
                f"{item.label}: {item.where} is {len(text):,} bytes, larger than the {max_bytes:,} allowed"
            )
        rtype = resource.get("resourceType")
        if isinstance(rtype, str) and rtype in PORTAL_OWNED_TYPES and source not in PORTAL_SOURCES:
            steps.append(
                (
                    item,
                    None,
                    (
                        rtype,
                        item.where,
                        f"{item.where} is a {rtype}: the portal keeps its own {rtype} "
                        "resources and stores none from an organisation",
                    ),
                )
            )
            continue
        steps.append((item, text, None))
    # Pass 2, in the same order: validate (in parallel when asked) and keep the valid.
    checked: list[Checked] = []
    with validation(workers, sum(1 for _, text, _ in steps if text is not None)) as validate_all:
        verdicts = validate_all((item.resource, text) for item, text, _ in steps if text is not None)
        for number, (item, text, refused) in enumerate(steps, start=1):
            if progress and number % 200 == 0:
                progress(number, len(items))
            if refused is not None:
                kind, where, message = refused
                result.count(kind, "rejected")
                result.issues.append(fhir.issue(where, f"{item.label}: {message}", code="not-supported"))
                continue
            resource = item.resource
            problems = next(verdicts)
            if not problems and len(resource["id"]) > 64:
                problems = [("id", "must be at most 64 characters (FHIR R4 id)")]
            if item.method == "DELETE":
                problems = [
                    (
                        "",
                        "a DELETE cannot be applied: the record keeps everything; send the item "
                        "with status entered-in-error instead",
                    )
                ]
            if problems:
                result.count(str(resource.get("resourceType") or "(none)")[:64], "rejected")
                for path, message in problems:
                    expression = f"{item.where}.{path}" if path else item.where
                    result.issues.append(fhir.issue(expression, f"{item.label}: {expression} {message}"))
                continue
            checked.append(
                Checked(
                    item,
                    resource["resourceType"],
                    resource["id"],
                    text.decode(),
                    content_hash_of(resource, text),
                )
            )
    if progress:
        progress(len(items), len(items))
    return checked


# Below this many resources a batch is validated in the calling process: starting the
# validating processes (each imports the FHIR models) costs more than it saves.
PARALLEL_FROM = 400


@contextmanager
def validation(workers: int, count: int):
    """A function from (resource, stored text) pairs to each one's problems, in order:
    in this process, or in ``workers`` processes started fresh (spawn: a fork would
    share this process's database connection), which are given the text."""
    if workers <= 1 or count < PARALLEL_FROM:
        yield lambda pairs: (fhir.validate(resource) for resource, _ in pairs)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        chunk = max(16, count // (workers * 8))
        yield lambda pairs: pool.map(fhir.validate_text, (text for _, text in pairs), chunksize=chunk)


# --- 3. Store -----------------------------------------------------------------------


def _reference_target(resource: dict) -> tuple[str, str]:
    """(reference, NHS number) of the patient this item is about, either may be empty."""
    for name in PATIENT_REFERENCE_FIELDS:
        value = resource.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if not isinstance(value, dict):
            continue
        ref = value.get("reference")
        if isinstance(ref, str) and ref.startswith("Patient/"):
            return ref, ""
        ident = value.get("identifier")
        if isinstance(ident, dict) and ident.get("system") == NHS_NUMBER_SYSTEM:
            return "", normalise(str(ident.get("value") or ""))
    return "", ""


def _demographics(resource: dict) -> dict:
    names = resource.get("name") or []
    official = next((n for n in names if isinstance(n, dict) and n.get("use") == "official"), None)
    name = official or (names[0] if names and isinstance(names[0], dict) else {})
    addresses = resource.get("address") or []
    birth = columns.parse_fhir_datetime(resource.get("birthDate"))
    return {
        "family_name": str(name.get("family") or "")[:200],
        "given_names": " ".join(str(g) for g in name.get("given") or ())[:200],
        "birth_date": birth.date() if birth else None,
        "gender": str(resource.get("gender") or "")[:20],
        "deceased": bool(resource.get("deceasedBoolean") or resource.get("deceasedDateTime")),
        "postcode": str((addresses[0] or {}).get("postalCode") or "")[:12] if addresses else "",
    }


def _match_patient(organisation: Organisation, resource: dict) -> Patient:
    """The network's patient for a Patient resource: by NHS number, else by a configured
    identifier system, else by the same organisation's earlier copy; else a new patient."""
    identifiers = [
        (str(i.get("system") or ""), normalise(str(i.get("value") or "")))
        for i in resource.get("identifier") or ()
        if isinstance(i, dict) and i.get("value")
    ]
    nhs_number = next((v for s, v in identifiers if s == NHS_NUMBER_SYSTEM and is_valid_nhs_number(v)), None)
    patient = None
    if nhs_number:
        patient = Patient.objects.filter(nhs_number=nhs_number).first()
    if patient is None:
        for system in settings.PATIENT_IDENTIFIER_SYSTEMS:
            values = [v for s, v in identifiers if s == system]
            if values:
                link = PatientIdentifier.objects.filter(system=system, value__in=values).first()
                if link:
                    patient = link.patient
                    break
    if patient is None:
        earlier = (
            RecordEntry.objects.filter(owner=organisation, resource_type="Patient", fhir_id=resource["id"])
            .values_list("patient", flat=True)
            .first()
        )
        patient = Patient.objects.filter(pk=earlier).first() if earlier else None
    demographics = _demographics(resource)
    if patient is None:
        patient = Patient.objects.create(nhs_number=nhs_number, **demographics)
    else:
        # Fill what is missing; a member organisation never overwrites another's details.
        missing = {k: v for k, v in demographics.items() if v and not getattr(patient, k)}
        if nhs_number and not patient.nhs_number:
            missing["nhs_number"] = nhs_number
        if missing:
            for key, value in missing.items():
                setattr(patient, key, value)
            patient.save(update_fields=list(missing))
    known = set(PatientIdentifier.objects.filter(patient=patient).values_list("system", "value"))
    new = [
        PatientIdentifier(patient=patient, system=s[:255], value=v[:255])
        for s, v in dict.fromkeys(identifiers)
        if s and s != NHS_NUMBER_SYSTEM and (s, v) not in known
    ]
    taken = set(
        PatientIdentifier.objects.filter(value__in=[p.value for p in new]).values_list("system", "value")
    )
    PatientIdentifier.objects.bulk_create([p for p in new if (p.system, p.value) not in taken])
    return patient


def _existing(organisation: Organisation, keys: set[tuple[str, str]]) -> dict[tuple[str, str], RecordEntry]:
    by_type: dict[str, list[str]] = {}
    for rtype, fid in keys:
        by_type.setdefault(rtype, []).append(fid)
    found: dict[tuple[str, str], RecordEntry] = {}
    for rtype, ids in by_type.items():
        for start in range(0, len(ids), 500):
            # Only the columns a new version replaces are loaded: the stored content is
            # compared by its hash and never read here (a write reads no clinical text).
            for entry in RecordEntry.objects.filter(
                owner=organisation, resource_type=rtype, fhir_id__in=ids[start : start + 500]
            ).defer("json", "display"):
                found[(rtype, entry.fhir_id)] = entry
    return found


class NewEntry:
    """A record entry about to be inserted: the columns only, none of a model's weight."""

    __slots__ = (
        "category",
        "clinical_date",
        "clinical_status",
        "content_hash",
        "display",
        "entered_in_error",
        "fhir_id",
        "first_received_at",
        "id",
        "json",
        "last_updated_at",
        "owner_id",
        "patient_id",
        "resource_type",
        "subject_ref",
        "third_party",
        "version",
    )

    def __init__(self, **values):
        for name, value in values.items():
            setattr(self, name, value)


def _values(entry, names: list[str]) -> list:
    return [getattr(entry, ATTNAMES.get(name, name)) for name in names]


def _adapter(field, connection):
    target = field.target_field if field.is_relation else field
    if isinstance(target, models.UUIDField) and not connection.features.has_native_uuid_field:
        return lambda value: value.hex if value is not None else None
    if isinstance(target, models.DateTimeField):
        return connection.ops.adapt_datetimefield_value
    return None


def _adapted(model, names: list[str], rows: Iterable[list]) -> tuple[list, list[list]]:
    fields = [model._meta.get_field(name) for name in names]
    adapters = [(i, a) for i, a in enumerate(_adapter(f, connection) for f in fields) if a is not None]
    out = []
    for row in rows:
        for i, adapt in adapters:
            row[i] = adapt(row[i])
        out.append(row)
    return fields, out


# The ORM's bulk_create spends more time compiling SQL and building model instances
# than the database spends storing the rows (measured: 0.7 s of 1.0 s for the Synthea
# samples); these write the same rows with COPY or one prepared executemany.
def _insert(model, names: list[str], rows: Iterable[list]) -> None:
    fields, rows = _adapted(model, names, rows)
    if not rows:
        return
    quote = connection.ops.quote_name
    table, columns = quote(model._meta.db_table), ", ".join(quote(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            # Names come from model metadata, values are parameters.
            placeholders = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)  # noqa: S608


def _update(model, names: list[str], rows: Iterable[list]) -> None:
    fields, rows = _adapted(model, [*names, "id"], rows)
    if not rows:
        return
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields[:-1])
    table, key = quote(model._meta.db_table), quote(fields[-1].column)
    sql = f"UPDATE {table} SET {assignments} WHERE {key} = %s"  # noqa: S608 - names from model metadata
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


ATTNAMES = {"owner": "owner_id", "patient": "patient_id", "entry": "entry_id", "batch": "batch_id"}
ENTRY_COLUMNS = [
    "id",
    "owner",
    "resource_type",
    "fhir_id",
    "patient",
    "subject_ref",
    "category",
    "third_party",
    "clinical_status",
    "entered_in_error",
    "display",
    "clinical_date",
    "json",
    "content_hash",
    "version",
    "first_received_at",
    "last_updated_at",
]
VERSION_COLUMNS = [
    "entry",
    "number",
    "json",
    "content_hash",
    "source",
    "batch",
    "recorded_at",
    "patient",
    "subject_ref",
]

UPDATED_FIELDS = [
    "patient",
    "subject_ref",
    "category",
    "third_party",
    "clinical_status",
    "entered_in_error",
    "display",
    "clinical_date",
    "json",
    "content_hash",
    "version",
    "last_updated_at",
]


def apply_columns(entry: RecordEntry | NewEntry, item: Checked, resource: dict, owner_kind: str) -> None:
    entry.category = columns.category(resource, owner_kind)
    entry.third_party = columns.third_party(resource)
    entry.clinical_status = columns.clinical_status(resource)
    entry.entered_in_error = columns.is_entered_in_error(resource)
    entry.display = columns.display_text(resource)
    entry.clinical_date = columns.clinical_date(resource)
    entry.json = item.text
    entry.content_hash = item.content_hash


def store(
    checked: list[Checked], *, organisation: Organisation, batch: IngestBatch, result: IngestResult
) -> None:
    """Write checked resources as entries and versions; the caller holds the transaction."""
    now = timezone.now()
    # Patients first, so that every item of the batch can find its patient whatever the
    # order of files (Bulk Data NDJSON comes one file per type, Patient not first).
    patients_by_ref: dict[str, Patient] = {}
    for item in checked:
        if item.resource_type == "Patient":
            patients_by_ref[f"Patient/{item.fhir_id}"] = _match_patient(organisation, item.received.resource)

    existing = _existing(organisation, {(c.resource_type, c.fhir_id) for c in checked})
    unresolved_refs = {
        ref
        for item in checked
        for ref in [_reference_target(item.received.resource)[0]]
        if ref and ref not in patients_by_ref
    }
    if unresolved_refs:
        ids = [r.removeprefix("Patient/") for r in unresolved_refs]
        for entry in (
            RecordEntry.objects.filter(
                owner=organisation, resource_type="Patient", fhir_id__in=ids, patient__isnull=False
            )
            .select_related("patient")
            .defer("json", "display")
        ):
            patients_by_ref[f"Patient/{entry.fhir_id}"] = entry.patient

    to_create: dict[tuple[str, str], NewEntry] = {}
    to_update: dict[tuple[str, str], RecordEntry] = {}
    versions: list[list] = []
    moves: list[Refiling] = []
    kind = organisation.kind
    for item in checked:
        resource = item.received.resource
        key = (item.resource_type, item.fhir_id)
        if item.resource_type == "Patient":
            patient, subject_ref = patients_by_ref[f"Patient/{item.fhir_id}"], ""
        else:
            subject_ref, nhs_number = _reference_target(resource)
            patient = patients_by_ref.get(subject_ref) if subject_ref else None
            if nhs_number and patient is None:
                patient = Patient.objects.filter(nhs_number=nhs_number).first()
        entry = to_create.get(key) or existing.get(key)
        if entry is None:
            entry = NewEntry(
                id=uuid.uuid4(),
                owner_id=organisation.pk,
                resource_type=item.resource_type,
                fhir_id=item.fhir_id,
                version=1,
                first_received_at=now,
            )
            to_create[key] = entry
            result.count(item.resource_type, "created")
        elif entry.content_hash == item.content_hash:
            result.count(item.resource_type, "unchanged")
            continue
        else:
            entry.version += 1
            if key not in to_create:
                to_update[key] = entry
            result.count(item.resource_type, "updated")
        # An item is in the record of the patient its latest version names, or in none
        # when that patient is not known yet: re-sent under another patient, it moves.
        before = getattr(entry, "patient_id", None)
        entry.patient_id = patient.pk if patient else None
        if key not in to_create and entry.patient_id != before:
            moves.append(
                Refiling(
                    entry_id=entry.id,
                    from_patient_id=before,
                    to_patient_id=entry.patient_id,
                    version=entry.version,
                    batch=batch,
                    moved_at=now,
                )
            )
        entry.subject_ref = subject_ref[:140]
        entry.last_updated_at = now
        apply_columns(entry, item, resource, kind)
        versions.append(
            [
                entry.id,
                entry.version,
                item.text,
                item.content_hash,
                EntryVersion.Source.INGEST,
                batch.pk,
                now,
                entry.patient_id,
                entry.subject_ref,
            ]
        )
    result.changed_patients |= {e.patient_id for e in (*to_create.values(), *to_update.values())}
    _insert(RecordEntry, ENTRY_COLUMNS, (_values(e, ENTRY_COLUMNS) for e in to_create.values()))
    _update(RecordEntry, UPDATED_FIELDS, (_values(e, [*UPDATED_FIELDS, "id"]) for e in to_update.values()))
    _insert(EntryVersion, VERSION_COLUMNS, versions)
    # Items that arrived before their patient, in an earlier batch, join the record now.
    refs = list(patients_by_ref)
    for start in range(0, len(refs), 500):
        orphans = RecordEntry.objects.filter(
            owner=organisation, patient__isnull=True, subject_ref__in=refs[start : start + 500]
        ).values_list("pk", "subject_ref", "version")
        for pk, ref, version in list(orphans):
            RecordEntry.objects.filter(pk=pk).update(patient=patients_by_ref[ref])
            moves.append(
                Refiling(
                    entry_id=pk,
                    to_patient_id=patients_by_ref[ref].pk,
                    version=version,
                    batch=batch,
                    moved_at=now,
                )
            )
    Refiling.objects.bulk_create(moves)
    _audit_moves(moves, organisation=organisation, batch=batch)
    result.changed_patients |= {m.from_patient_id for m in moves} | {m.to_patient_id for m in moves}
    result.changed_patients.discard(None)
    entries_changed.send(sender=store, patient_ids=set(result.changed_patients))
    result.accepted = result.created + result.updated + result.unchanged


def _audit_moves(moves: list[Refiling], *, organisation: Organisation, batch: IngestBatch) -> None:
    """Each move of an item out of a patient's record is written in that patient's trail,
    and in the trail of the patient it moved to, as the data owner's act: the version
    that left, and the version that arrived, never the other patient."""
    for move in moves:
        if move.from_patient_id is None:
            continue  # an item joining its patient's record on arrival: not a move
        common = {
            "organisation": organisation,
            "actor_label": f"ingest:{batch.source}"[:200],
            "outcome": "permit",
            "reason": f"{organisation.name} re-filed an item"[:200],
        }
        hexed = move.entry_id.hex
        audit.record(
            "record.move",
            entries=[f"{hexed}:{move.version - 1}"],
            patient_id=move.from_patient_id,
            detail={"moved": "away", "batch": str(batch.pk)},
            **common,
        )
        if move.to_patient_id is not None:
            audit.record(
                "record.move",
                entries=[f"{hexed}:{move.version}"],
                patient_id=move.to_patient_id,
                detail={"moved": "in", "batch": str(batch.pk)},
                **common,
            )


# --- The whole batch ----------------------------------------------------------------


def get_or_register_organisation(ods_code: str, name: str = "") -> Organisation:
    """The organisation with this ODS code; a name registers one that is new and is
    ignored for one that exists (a sender cannot rename a member)."""
    code = ods_code.strip().upper()
    if not code or len(code) > 12 or not code.isalnum():
        raise UnusableInput(f"{ods_code!r} is not an ODS code (up to 12 letters and digits)")
    found = Organisation.objects.filter(ods_code=code).first()
    if found:
        return found
    if not name.strip():
        raise UnusableInput(f"organisation {code} is not a member; give --org-name to register it")
    return Organisation.objects.create(ods_code=code, name=name.strip()[:200])


def ingest_documents(
    documents: list[tuple[str, object]],
    *,
    organisation: Organisation,
    atomic: bool = False,
    source: str = "api",
    progress: Progress | None = None,
    batch: IngestBatch | None = None,
    workers: int = 1,
) -> IngestResult:
    """Store every valid resource of the documents as owned by the sending organisation.

    Invalid resources are rejected with an issue naming their element and the rest are
    stored; with atomic=True nothing is stored when anything is rejected.
    """
    if batch is None:
        batch = IngestBatch.objects.create(organisation=organisation, source=source, atomic=atomic)
    try:
        items = [item for label, document in documents for item in _received_from(label, document)]
        batch.status, batch.total = IngestBatch.Status.RUNNING, len(items)
        batch.save(update_fields=["status", "total"])
        result = IngestResult(batch_id=str(batch.id))
        checked = check(items, result, progress, source=source, workers=workers)
    except UnusableInput as exc:
        fail_batch(batch, str(exc))
        raise
    if atomic and result.rejected:
        result.issues.append(
            fhir.issue(
                "",
                f"nothing was stored: {result.rejected} resource(s) rejected and --atomic was given",
                severity="information",
                code="informational",
            )
        )
        rejected_outright = result.rejected + len(checked)
        result.rejected = rejected_outright
    else:
        for attempt in range(3):
            attempt_result = IngestResult(
                rejected=result.rejected,
                issues=list(result.issues),
                batch_id=result.batch_id,
                by_type={t: dict(row) for t, row in result.by_type.items()},
            )
            try:
                with transaction.atomic():
                    store(checked, organisation=organisation, batch=batch, result=attempt_result)
                result = attempt_result
                break
            except IntegrityError:
                # Another batch from the same owner created one of these entries at the
                # same moment: read again and store as an update.
                if attempt == 2:
                    raise
    _finish(batch, result)
    return result


def fail_batch(batch: IngestBatch, message: str) -> None:
    """Close a batch whose input could not be used; nothing of it was stored."""
    batch.status, batch.finished_at = IngestBatch.Status.FAILED, timezone.now()
    batch.outcome = {"error": message}
    batch.save(update_fields=["status", "finished_at", "outcome"])
    audit.record(
        "ingest.batch",
        organisation=batch.organisation,
        actor_label=f"ingest:{batch.source}",
        outcome="deny",
        detail={"batch": str(batch.id), "error": "input unusable"},
    )


def _finish(batch: IngestBatch, result: IngestResult) -> None:
    batch.processed = batch.total
    for name in ("accepted", "created", "updated", "unchanged", "rejected"):
        setattr(batch, name, getattr(result, name))
    batch.status = IngestBatch.Status.DONE
    batch.outcome = result.as_dict()
    batch.finished_at = timezone.now()
    batch.save()
    audit.record(
        "ingest.batch",
        organisation=batch.organisation,
        actor_label=f"ingest:{batch.source}",
        outcome="permit",
        detail={k: v for k, v in result.as_dict().items() if k != "issues"} | {"issues": len(result.issues)},
    )
    log.info(
        "ingest batch %s for %s: %s accepted, %s rejected",
        batch.id,
        batch.organisation.ods_code,
        result.accepted,
        result.rejected,
    )


def ingest_paths(
    paths: Iterable[str | os.PathLike],
    *,
    organisation: Organisation,
    atomic: bool = False,
    source: str = "command",
    progress: Progress | None = None,
    batch: IngestBatch | None = None,
    workers: int = 1,
) -> IngestResult:
    """Ingest files and folders of Bundles, single resources and NDJSON as one batch;
    ``workers`` processes validate it (see check)."""
    if batch is None:
        batch = IngestBatch.objects.create(organisation=organisation, source=source, atomic=atomic)
    try:
        documents = read_documents(paths)
    except UnusableInput as exc:
        fail_batch(batch, str(exc))
        raise
    return ingest_documents(
        documents,
        organisation=organisation,
        atomic=atomic,
        source=source,
        progress=progress,
        batch=batch,
        workers=workers,
    )
