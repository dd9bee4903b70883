"""FHIR responses built from stored text: Bundles are the stored canonical JSON of each
entry joined into a string, never decoded and re-encoded (the design's rule: serve the
stored JSON as it is). The exceptions are small: a disputed entry is decoded to carry the
"disputed" tag in meta.tag (accuracy.record_display does that), and the network Patient
resource is one owner's Patient entry with its id replaced by the network patient's UUID.
Each holder names the patient by its own Patient id; every reference to it (an item's
``subject``, ``patient``, ``beneficiary`` ...) is served as ``Patient/<network id>``, the
one that resolves here, by replacing the quoted literal in the text: the stored JSON is
canonical (no spaces), so the literal is exact. Every item's ``meta.source`` names its
holder (``<portal>/fhir/Organization/<ODS code>``, which resolves here too).
A search with ``_elements`` decodes each entry it returns to keep only those elements.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone

from accuracy import record_display
from phr.fhir import (
    bundle_entry,  # noqa: F401 - the API's views take it from here
    mandatory_elements,
)
from phr.ingest import canonical_json, parse_json
from phr.models import Organisation, Patient, RecordEntry

CONTENT_TYPE = "application/fhir+json; charset=utf-8"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
ALWAYS_KEPT = frozenset({"resourceType", "id", "meta"})


def response(body: str | bytes | dict, status: int = 200) -> HttpResponse:
    if isinstance(body, dict):
        body = json.dumps(body, ensure_ascii=False)
    return HttpResponse(body, status=status, content_type=CONTENT_TYPE)


def outcome(
    status: int, diagnostics: str, *, code: str = "invalid", expression: str | None = None
) -> HttpResponse:
    """An error as an OperationOutcome; ``expression`` names the parameter or element at fault."""
    issue = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    reply = response({"resourceType": "OperationOutcome", "issue": [issue]}, status)
    if status == 401:
        reply["WWW-Authenticate"] = 'Bearer realm="fhir"'
    return reply


def not_found() -> HttpResponse:
    """One body for whatever is missing or not permitted, so that the two look the same."""
    return outcome(404, "Not found", code="not-found")


def instant() -> str:
    return timezone.now().isoformat(timespec="seconds")


def entry_texts(entries: Iterable[RecordEntry]) -> list[tuple[RecordEntry, str]]:
    """Each entry with the text to serve: as stored, or tagged "disputed" when it is; its
    references to the patient as the network patient."""
    entries = list(entries)
    disputed = record_display.disputed_entry_ids(entries)
    names = holders_names_for({entry.patient_id for entry in entries})
    codes = ods_codes({entry.owner_id for entry in entries})
    # _tagged is record_display's one way of tagging a disputed entry; reused, not copied.
    return [
        (
            entry,
            with_source(
                as_network_patient(
                    record_display._tagged(entry)[0] if entry.pk in disputed else entry.json,
                    names.get((entry.patient_id, entry.owner_id), ()),
                    entry.patient_id,
                ),
                codes.get(entry.owner_id, ""),
            ),
        )
        for entry in entries
    ]


def ods_codes(owner_ids) -> dict[int, str]:
    """The holders' ODS codes, in one query."""
    if not owner_ids:
        return {}
    return dict(Organisation.objects.filter(pk__in=owner_ids).values_list("pk", "ods_code"))


def holder_source(ods_code: str) -> str:
    """The holder as meta.source: its Organization here, by ODS code."""
    return f"{settings.PORTAL_URL}/fhir/Organization/{ods_code}"


def with_source(text: str, ods_code: str) -> str:
    """The resource's text with meta.source naming its holder. The stored text is
    canonical (keys sorted, no spaces; a quote inside a string is escaped), so a text
    holding one resource alone (one "resourceType") has at most one "meta", its own, and
    the element is written into the text. A resource holding others (contained ones, or
    whole resources as a Bundle does), or with a source of the sender's own, is decoded
    (decimals kept as written) and encoded again."""
    source = holder_source(ods_code)
    if text.count('"resourceType":') == 1 and '"source":' not in text:
        if '"meta":{}' in text:
            return text.replace('"meta":{}', f'"meta":{{"source":{json.dumps(source)}}}', 1)
        if '"meta":{' in text:
            return text.replace('"meta":{', f'"meta":{{"source":{json.dumps(source)},', 1)
        return f'{{"meta":{{"source":{json.dumps(source)}}},{text[1:]}' if text != "{}" else text
    resource = parse_json(text.encode(), "resource")
    resource.setdefault("meta", {})["source"] = source
    return canonical_json(resource).decode()


def holders_names_for(patient_ids) -> dict[tuple, list[str]]:
    """Each holder's own ids for each of these patients (the ids of its Patient entries
    in their records), by (patient, holder). Ids only: nothing here is disclosed."""
    names: dict[tuple, list[str]] = {}
    patient_ids = [pk for pk in patient_ids if pk is not None]
    if not patient_ids:
        return names
    rows = RecordEntry.objects.filter(patient_id__in=patient_ids, resource_type="Patient")
    for patient_id, owner_id, fhir_id in rows.values_list("patient_id", "owner_id", "fhir_id"):
        names.setdefault((patient_id, owner_id), []).append(fhir_id)
    return names


def as_network_patient(text: str, holder_ids, patient_id) -> str:
    """The text with its holder's references to the patient naming the network patient."""
    for fhir_id in holder_ids:
        literal = f'"Patient/{fhir_id}"'
        if literal in text:
            text = text.replace(literal, f'"Patient/{patient_id}"')
    return text


def patient_text(patient: Patient, source: RecordEntry | None) -> str:
    """The network patient: an owner's Patient entry, re-identified by the patient's UUID
    (this one small resource is decoded), or the portal's own demographics without one."""
    if source is not None:
        resource = parse_json(source.json.encode(), str(source.pk))
        resource["id"] = str(patient.pk)
        return canonical_json(resource).decode()
    resource: dict = {"resourceType": "Patient", "id": str(patient.pk)}
    if patient.nhs_number:
        resource["identifier"] = [{"system": NHS_NUMBER, "value": patient.nhs_number}]
    if patient.family_name or patient.given_names:
        name: dict = {}
        if patient.family_name:
            name["family"] = patient.family_name
        if patient.given_names:
            name["given"] = patient.given_names.split()
        resource["name"] = [name]
    if patient.gender:
        resource["gender"] = patient.gender
    if patient.birth_date:
        resource["birthDate"] = patient.birth_date.isoformat()
    return canonical_json(resource).decode()


def subsetted(text: str, elements: frozenset[str]) -> str:
    """One resource's text with only the elements asked for (and those always kept), tagged
    SUBSETTED; decimals stay exactly as stored."""
    resource = parse_json(text.encode(), "resource")
    kept = elements | ALWAYS_KEPT | mandatory_elements(resource.get("resourceType", ""))
    # A primitive's extensions sit beside it as "_<name>": they go where it goes.
    resource = {k: v for k, v in resource.items() if k in kept or k.removeprefix("_") in kept}
    meta = resource.setdefault("meta", {})
    tags = meta.setdefault("tag", [])
    if not any(t.get("code") == SUBSETTED["code"] and t.get("system") == SUBSETTED["system"] for t in tags):
        tags.append(dict(SUBSETTED))
    return canonical_json(resource).decode()


def bundle(
    kind: str,
    parts: list[str],
    *,
    total: int | None = None,
    links: list[tuple[str, str]] = (),
    extra: dict | None = None,
) -> str:
    """A Bundle from already-serialised entries (see bundle_entry)."""
    head = {"resourceType": "Bundle", "id": str(uuid.uuid4()), **(extra or {}), "type": kind}
    head["timestamp"] = instant()
    if total is not None:
        head["total"] = total
    if links:
        head["link"] = [{"relation": relation, "url": url} for relation, url in links]
    text = json.dumps(head, ensure_ascii=False)[:-1]
    # FHIR allows no empty arrays: a Bundle with nothing in it has no "entry" at all.
    return text + (f',"entry":[{",".join(parts)}]}}' if parts else "}")
