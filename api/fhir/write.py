"""``POST /fhir/``: an organisation system's transaction or batch Bundle, ingested as
phr.ingest does for files, answered entry by entry (docs/fhir.md, writes 1)."""

from __future__ import annotations

import json
import re

from consent.policy import Actor, ActorRole, may_write
from phr import fhir as fhir_models
from phr.ingest import UnusableInput, ingest_documents
from phr.models import EntryVersion, RecordEntry

from .bundle import bundle, instant, response
from .common import Problem, fhir_view, operation_outcome, read_json, writer

ENTRY_WHERE = re.compile(r"^Bundle\.entry\[(\d+)\]")


# --- 1. POST /fhir/: transaction and batch Bundles -------------------------------------


@fhir_view(methods=("POST",))
def transaction_or_batch(request):
    """An organisation system sends its records in (docs/fhir.md, writes 1)."""
    actor = writer(request, {ActorRole.SYSTEM: "system/Bundle.write"})
    if actor.organisation is None or not may_write(actor, actor.organisation):
        raise Problem(403, "This client may not write records", code="forbidden")
    document = read_json(request, "Bundle")
    if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
        raise Problem(400, "POST a Bundle of type transaction or batch", expression="resourceType")
    kind = document.get("type")
    if kind not in ("transaction", "batch"):
        raise Problem(400, "The Bundle's type must be transaction or batch", expression="Bundle.type")
    entries = document.get("entry") or []
    if not isinstance(entries, list):
        raise Problem(400, "Bundle.entry must be a list", expression="Bundle.entry")
    try:
        result = ingest_documents(
            [("Bundle", document)],
            organisation=actor.organisation,
            atomic=kind == "transaction",
            source="api",
        )
    except UnusableInput as unusable:
        raise Problem(
            400, str(unusable), code="too-costly" if "larger" in str(unusable) else "structure"
        ) from None
    by_entry: dict[int, list[dict]] = {}
    for issue in result.issues:
        found = ENTRY_WHERE.match((issue.get("expression") or [""])[0])
        if found:
            by_entry.setdefault(int(found.group(1)), []).append(issue)
    if kind == "transaction" and result.rejected:
        return operation_outcome(400, result.issues)
    parts = [
        json.dumps({"response": item}, ensure_ascii=False)
        for item in entry_responses(actor, entries, by_entry, result.batch_id)
    ]
    return response(bundle(f"{kind}-response", parts))


def entry_responses(
    actor: Actor, entries: list, by_entry: dict[int, list[dict]], batch_id: str
) -> list[dict]:
    """Bundle.entry.response for each received entry, in order."""
    stored: dict[tuple[str, str], list[int]] = {}
    for resource_type, fhir_id, number in (
        EntryVersion.objects.filter(batch_id=batch_id)
        .order_by("number")
        .values_list("entry__resource_type", "entry__fhir_id", "number")
    ):
        stored.setdefault((resource_type, fhir_id), []).append(number)
    keys = [
        (entry["resource"].get("resourceType"), entry["resource"].get("id"))
        for index, entry in enumerate(entries)
        if index not in by_entry and isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
    ]
    current = {
        (t, i): v
        for t, i, v in RecordEntry.objects.filter(
            owner=actor.organisation,
            resource_type__in={t for t, _ in keys},
            fhir_id__in={i for _, i in keys},
        ).values_list("resource_type", "fhir_id", "version")
    }
    replies = []
    for index, entry in enumerate(entries):
        if index in by_entry or not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            issues = by_entry.get(index) or [
                fhir_models.issue(f"Bundle.entry[{index}]", "this entry carries no resource to store")
            ]
            replies.append(
                {
                    "status": "400 Bad Request",
                    "outcome": {"resourceType": "OperationOutcome", "issue": issues},
                }
            )
            continue
        key = (entry["resource"].get("resourceType"), entry["resource"].get("id"))
        numbers = stored.get(key)
        if numbers:
            number = numbers.pop(0)
            status = "201 Created" if number == 1 else "200 OK"
        else:
            number, status = current.get(key, 1), "200 OK"  # the same as the current version
        replies.append(
            {
                "status": status,
                "location": f"{key[0]}/{key[1]}/_history/{number}",
                "etag": f'W/"{number}"',
                "lastModified": instant(),
            }
        )
    return replies
