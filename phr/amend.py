"""Amending an entry: the data owner's corrected resource becomes the entry's next
version, validated as FHIR R4, and only if nobody changed the entry in the meantime."""

from django.db import transaction
from django.utils import timezone

from . import fhir
from .ingest import apply_columns, canonical_json, content_hash_of
from .models import EntryVersion, RecordEntry
from .signals import entries_changed


class StaleVersion(Exception):
    """The entry changed since the version the amendment was based on."""

    def __init__(self, current: int):
        super().__init__(f"the item has changed since (it is now at version {current})")
        self.current = current


class InvalidAmendment(ValueError):
    """The amended resource is not valid FHIR R4, or not the same item; issues name elements."""

    def __init__(self, issues: list[dict]):
        super().__init__("; ".join(i["diagnostics"] for i in issues))
        self.issues = issues


def amend_entry(
    *, entry_id, based_on_version: int, resource: dict, produced_by: str, changed_by: str
) -> tuple[RecordEntry, EntryVersion]:
    """Store ``resource`` as the next version of the entry; refuse a stale base, an
    invalid resource, another item's identity, or no change at all."""
    problems = fhir.validate(resource)
    if problems:
        kind = resource.get("resourceType") or "Resource"
        raise InvalidAmendment(
            [
                fhir.issue(f"{kind}.{p}" if p else kind, f"{kind}.{p} {m}" if p else f"{kind} {m}")
                for p, m in problems
            ]
        )
    text = canonical_json(resource)
    with transaction.atomic():
        entry = RecordEntry.objects.select_for_update().select_related("owner").get(pk=entry_id)
        if resource.get("resourceType") != entry.resource_type or resource.get("id") != entry.fhir_id:
            raise InvalidAmendment(
                [fhir.issue(f"{entry.resource_type}.id", "an amendment must keep the item's type and id")]
            )
        if entry.version != based_on_version:
            raise StaleVersion(entry.version)
        content_hash = content_hash_of(resource, text)
        if content_hash == entry.content_hash:
            raise InvalidAmendment(
                [fhir.issue(entry.resource_type, "the amended item is the same as the current one")]
            )
        now = timezone.now()
        entry.version += 1
        entry.last_updated_at = now
        apply_columns(entry, _Text(text.decode(), content_hash), resource, entry.owner.kind)
        entry.save()
        version = EntryVersion.objects.create(
            entry=entry,
            number=entry.version,
            json=entry.json,
            content_hash=content_hash,
            source=EntryVersion.Source.CORRECTION,
            produced_by=produced_by[:80],
            changed_by=changed_by[:200],
            recorded_at=now,
            # An amendment belongs to the record the item is in.
            patient_id=entry.patient_id,
            subject_ref=entry.subject_ref,
        )
        entries_changed.send(sender=amend_entry, patient_ids={entry.patient_id} - {None})
    return entry, version


class _Text:
    """The two attributes of a checked item that _apply reads."""

    def __init__(self, text: str, content_hash: str):
        self.text, self.content_hash = text, content_hash
