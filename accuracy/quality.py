"""Data-quality figures from the accuracy checks: per organisation, what the checks find
in its items, by rule and by month, and how long findings take to be put right. Counts
only: no patient, no item, and never a person (feedback to departments, not blame)."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Count
from django.utils import timezone

from consent.policy import own_entries_for_figures
from phr.columns import concept_text
from phr.models import Organisation
from phr.replica import lag_tolerant

from .checks.base import RULES, Kind
from .models import Finding, FindingEntry

MONTHS = 12


@dataclass(frozen=True)
class RuleCount:
    rule: str
    title: str
    kind: str
    open: int
    resolved: int


@dataclass
class Quality:
    organisation: Organisation
    by_rule: list[RuleCount] = field(default_factory=list)
    by_month: list[tuple[str, int]] = field(default_factory=list)  # (month in words, found)
    by_kind: list[tuple[str, int]] = field(default_factory=list)
    by_service: list[tuple[str, int]] = field(default_factory=list)  # (team or service, found)
    open_total: int = 0
    resolved_total: int = 0
    median_days_to_resolution: float | None = None

    @property
    def found(self) -> int:
        return self.open_total + self.resolved_total


def _months(today: date, months: int) -> list[date]:
    first = today.replace(day=1)
    found = []
    for _ in range(months):
        found.append(first)
        first = (first - timedelta(days=1)).replace(day=1)
    return list(reversed(found))


@lag_tolerant
def quality_for(organisation: Organisation, *, today: date | None = None, months: int = MONTHS) -> Quality:
    """What the checks found in the organisation's items."""
    today = today or timezone.localdate()
    ids = FindingEntry.objects.filter(owner=organisation).values("finding_id")
    findings = Finding.objects.filter(pk__in=ids)
    counts: dict[str, dict[str, int]] = {}
    for row in findings.values("rule", "status").annotate(n=Count("pk")):
        counts.setdefault(row["rule"], {})[row["status"]] = row["n"]
    figures = Quality(organisation)
    for rule_id, by_status in sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
        rule = RULES.get(rule_id)
        figures.by_rule.append(
            RuleCount(
                rule_id,
                rule.title if rule else rule_id,
                Kind(rule.kind).label if rule else "",
                by_status.get(Finding.Status.OPEN, 0),
                by_status.get(Finding.Status.RESOLVED, 0),
            )
        )
    figures.open_total = sum(r.open for r in figures.by_rule)
    figures.resolved_total = sum(r.resolved for r in figures.by_rule)
    kinds: dict[str, int] = {}
    for count in figures.by_rule:
        kinds[count.kind] = kinds.get(count.kind, 0) + count.open + count.resolved
    figures.by_kind = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    starts = _months(today, months)
    found_at = list(findings.filter(found_at__date__gte=starts[0]).values_list("found_at", flat=True))
    for start in starts:
        label = start.strftime("%B %Y")
        figures.by_month.append(
            (label, sum(1 for at in found_at if timezone.localtime(at).date().replace(day=1) == start))
        )
    days = [
        (resolved - found).total_seconds() / 86400
        for found, resolved in findings.filter(resolved_at__isnull=False).values_list(
            "found_at", "resolved_at"
        )
    ]
    figures.median_days_to_resolution = round(statistics.median(days), 1) if days else None
    figures.by_service = by_service(organisation)
    return figures


NOT_RECORDED = "Not recorded in the data"
# Who recorded or asked for an item, where the reference names a role (never a person).
ROLE_REFERENCES = ("recorder", "asserter", "requester", "performer", "author")


def _words(concepts) -> str:
    """The words of the first of a list of CodeableConcepts (or of one) that has any."""
    return next(filter(None, map(concept_text, concepts if isinstance(concepts, list) else [concepts])), "")


def _target(reference) -> str:
    """The id a reference points at: 'Encounter/x', 'urn:uuid:x' and 'x' all give 'x'."""
    text = reference.get("reference", "") if isinstance(reference, dict) else ""
    return text.rsplit("/", 1)[-1].removeprefix("urn:uuid:")


def _references(resource: dict, key: str) -> list[dict]:
    value = resource.get(key)
    found = value if isinstance(value, list) else [value]
    # performer may be a list of references or of {actor: reference}
    return [(r.get("actor") if isinstance(r, dict) and "actor" in r else r) for r in found if r]


def _service_of(resource: dict, context: dict[str, dict]) -> str:
    """The team or service an item belongs to, where its data says so: the service type or
    place of its encounter, else the role of whoever recorded it; never a person's name."""
    encounter = resource if resource.get("resourceType") == "Encounter" else None
    for ref in _references(resource, "encounter") + _references(resource, "context"):
        encounter = encounter or context.get(_target(ref))
    if encounter:
        service = _words(encounter.get("serviceType"))
        if service:
            return service
        for place in encounter.get("location") or []:
            display = (place.get("location") or {}).get("display") if isinstance(place, dict) else None
            if display:
                return str(display)
    for key in ROLE_REFERENCES:
        for ref in _references(resource, key):
            role = context.get(_target(ref))
            if role and role.get("resourceType") == "PractitionerRole":
                words = _words(role.get("specialty")) or _words(role.get("code"))
                if words:
                    return words
    return NOT_RECORDED


def by_service(organisation: Organisation) -> list[tuple[str, int]]:
    """Findings about the organisation's items per team or service (most first): the
    service of each implicated item at this organisation, a finding counted once per
    service it touches."""
    rows = list(FindingEntry.objects.filter(owner=organisation).values_list("finding_id", "entry_id"))
    texts = {
        pk: text for pk, _, text in own_entries_for_figures(organisation, pks={entry for _, entry in rows})
    }
    items = [(finding, json.loads(texts[entry])) for finding, entry in rows if entry in texts]
    wanted = {
        _target(ref)
        for _, resource in items
        for key in ("encounter", "context", *ROLE_REFERENCES)
        for ref in _references(resource, key)
    } - {""}
    context = {
        fhir_id: json.loads(text)
        for _, fhir_id, text in own_entries_for_figures(
            organisation, resource_types=("Encounter", "PractitionerRole"), fhir_ids=wanted
        )
    }
    pairs = {(finding, _service_of(resource, context)) for finding, resource in items}
    counts = Counter(service for _, service in pairs)
    return sorted(counts.items(), key=lambda kv: (kv[0] == NOT_RECORDED, -kv[1], kv[0]))


@lag_tolerant
def network_quality() -> list[Quality]:
    """Every organisation whose items the checks have found something in, side by side."""
    owners = Organisation.objects.filter(pk__in=FindingEntry.objects.values("owner_id").distinct()).order_by(
        "name"
    )
    return [quality_for(org) for org in owners]
