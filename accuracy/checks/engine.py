"""Running the checks over one patient's record, and keeping the findings in step.

``run_checks(patient_id)`` reads the record every holder keeps (through the policy's
``record_for_checks``: the checks disclose nothing), runs every rule, and then:
- a hit not found before becomes a Finding, keyed by its rule and the entry versions it
  is about (so running again, or re-ingesting the same data, finds it and adds nothing);
- an open finding that no rule finds any more is resolved: a later version fixed it.
It runs after ingest and after an amendment, as a Celery task once the transaction has
committed (accuracy.tasks.check_records), a batch of patients at a time.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import orjson
from django.db import transaction
from django.utils import timezone

from consent.policy import record_for_checks
from phr.models import Patient

from ..models import Finding, FindingEntry
from .base import RULES, Hit, Item, Record, Rule

log = logging.getLogger(__name__)


def finding_key(rule: Rule, hit: Hit) -> str:
    versions = sorted(f"{item.entry.pk.hex}:{item.entry.version}" for item in hit.items)
    return hashlib.sha256("|".join([rule.id, hit.topic, *versions]).encode()).hexdigest()


# Billing and bookkeeping, not the clinical record: a Synthea claim repeats every code of
# its encounter, and checking it again would only say the same thing twice, slower.
NOT_CHECKED = ("Claim", "ExplanationOfBenefit", "Provenance", "AuditEvent", "Bundle")


def load_record(patient: Patient) -> Record:
    items = []
    for entry, text in record_for_checks(patient.pk, leave_out=NOT_CHECKED):
        try:
            resource = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        if isinstance(resource, dict):
            items.append(Item(entry, resource))
    return Record(patient, tuple(items))


@dataclass
class Outcome:
    found: int = 0
    new: int = 0
    resolved: int = 0

    def __iadd__(self, other: Outcome) -> Outcome:
        self.found += other.found
        self.new += other.new
        self.resolved += other.resolved
        return self


def hits_of(record: Record, rules=None) -> list[tuple[Rule, Hit]]:
    """Every rule's hits on the record; a rule that fails is logged (without health
    data) and skipped, never stopping the others."""
    found = []
    for rule in rules or RULES.values():
        try:
            found += [(rule, hit) for hit in rule.find(record) if hit.items]
        except Exception:
            log.exception("accuracy check %s failed", rule.id)
    return found


@transaction.atomic
def run_checks(patient_id, *, now=None) -> Outcome:
    """Check one patient's record and bring their findings up to date."""
    now = now or timezone.now()
    patient = Patient.objects.select_for_update().filter(pk=patient_id).first()
    if patient is None:
        return Outcome()
    record = load_record(patient)
    hits = {finding_key(rule, hit): (rule, hit) for rule, hit in hits_of(record)}
    known = set(Finding.objects.filter(key__in=list(hits)).values_list("key", flat=True))
    outcome = Outcome(found=len(hits))
    made = {
        key: Finding(
            key=key,
            rule=rule.id,
            kind=rule.kind,
            severity=rule.severity,
            audience=rule.audience,
            patient=patient,
            explanation=rule.explain(hit)[:2000],
            says={str(k): str(v)[:500] for k, v in hit.says.items()},
            found_at=now,
        )
        for key, (rule, hit) in hits.items()
        if key not in known
    }
    # Two statements however many are new: a first check of a long record finds dozens.
    Finding.objects.bulk_create(made.values())
    FindingEntry.objects.bulk_create(
        FindingEntry(
            finding=finding,
            entry=i.entry,
            version=i.entry.version,
            owner=i.holder,
            category=i.entry.category,
        )
        for key, finding in made.items()
        for i in {i.entry.pk: i for i in hits[key][1].items}.values()
    )
    outcome.new = len(made)
    outcome.resolved = (
        Finding.objects.filter(patient=patient, status=Finding.Status.OPEN)
        .exclude(key__in=list(hits))
        .update(status=Finding.Status.RESOLVED, resolved_at=now)
    )
    return outcome


def run_for(patient_ids) -> Outcome:
    total = Outcome()
    for patient_id in patient_ids:
        total += run_checks(patient_id)
    return total
