"""The record as a clinician reads it: in clinical sections, allergies first, each item
in words with its raw FHIR a click away.

The sections follow the kinds of record (accuracy.record_display.KINDS) in the order a
clinician needs them in an emergency: allergies and adverse reactions, current
medicines, problems (active, then past), recent results, encounters, vaccinations,
documents, then everything else. Nothing here reads the database: the view hands in
the entries the policy released.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber

from accuracy.record_display import KINDS_BY_SLUG, ItemRow, Kind, item_details, item_rows, kind_of
from web.common import pretty_json

# The kinds' slugs in the order of the clinical view; each section's heading is the
# kind's clinical name in the one vocabulary (phr.vocabulary).
CLINICAL_ORDER: tuple[str, ...] = (
    "allergies",
    "medications",
    "problems",
    "test-results",
    "encounters",
    "immunisations",
    "documents",
    "other",
)
# Statuses that mean an item is no longer current, by kind; an item in error never is.
ENDED = {
    "allergies": frozenset({"inactive", "resolved"}),
    "medications": frozenset({"completed", "stopped", "cancelled", "not-taken"}),
    "problems": frozenset({"inactive", "remission", "resolved"}),
}
PART_NAMES = {
    "allergies": ("Active", "No longer active"),
    "medications": ("Current", "Past medicines"),
    "problems": ("Active problems", "Past problems"),
}


@dataclass(frozen=True)
class ClinicalItem:
    """One item in words: its row (status, disputed), the details worth reading at a
    glance, and the stored FHIR behind a disclosure."""

    row: ItemRow
    details: list[tuple[str, str]]
    fhir: str

    @property
    def entry(self):
        return self.row.entry


@dataclass
class Section:
    kind: Kind
    heading: str
    parts: list[tuple[str, list[ClinicalItem]]] = field(default_factory=list)
    shown: int = 0
    total: int = 0

    @property
    def anchor(self) -> str:
        return f"section-{self.kind.slug}"

    @property
    def more(self) -> bool:
        return self.total > self.shown


def latest_of_each_type(entries: QuerySet, limit: int) -> QuerySet:
    """The newest ``limit`` entries of each resource type, newest first, in one query:
    a long record's sections show its recent items, and "Show all" pages through the rest."""
    newest = [F("clinical_date").desc(nulls_last=True), F("pk")]
    ranked = entries.annotate(nth=Window(RowNumber(), partition_by=[F("resource_type")], order_by=newest))
    return ranked.filter(nth__lte=limit).order_by(*newest)


def newest_first(entries: QuerySet) -> QuerySet:
    return entries.order_by(F("clinical_date").desc(nulls_last=True), "pk")


def is_current(slug: str, entry) -> bool:
    return not entry.entered_in_error and (entry.clinical_status or "") not in ENDED.get(slug, ())


def _described(row: ItemRow) -> ClinicalItem:
    # The item's name heads its row: a detail that only repeats it is left out.
    name = (row.entry.display or "").strip().casefold()
    details = [(label, value) for label, value in item_details(row.entry) if value.strip().casefold() != name]
    return ClinicalItem(row, details, pretty_json(row.entry.json))


def _parts(slug: str, items: list[ClinicalItem]) -> list[tuple[str, list[ClinicalItem]]]:
    if not items:
        return []
    if slug not in PART_NAMES:
        return [("", items)]
    current = [i for i in items if is_current(slug, i.entry)]
    ended = [i for i in items if not is_current(slug, i.entry)]
    names = PART_NAMES[slug]
    return [(name, group) for name, group in zip(names, (current, ended), strict=True) if group]


def build_sections(entries: Iterable, totals: dict[str, int], *, only: Kind | None = None) -> list[Section]:
    """The sections, in clinical order, holding these entries (newest first within each).

    ``totals`` is how many items of each kind the record holds for this view, so a section
    can say that it shows only the most recent; ``only`` gives a single kind's section
    (the filter), shown even when empty.
    """
    by_kind: dict[str, list[ClinicalItem]] = {slug: [] for slug in CLINICAL_ORDER}
    for row in item_rows(entries):
        by_kind[kind_of(row.entry.resource_type).slug].append(_described(row))
    sections = []
    for slug in CLINICAL_ORDER:
        items = by_kind[slug]
        if only is not None and only.slug != slug:
            continue
        if not items and only is None:
            continue
        sections.append(
            Section(
                KINDS_BY_SLUG[slug],
                KINDS_BY_SLUG[slug].clinical,
                _parts(slug, items),
                len(items),
                totals.get(slug, len(items)),
            )
        )
    return sections


def totals_by_kind(type_counts: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Items per kind from items per resource type."""
    totals: dict[str, int] = {}
    for resource_type, count in type_counts:
        slug = kind_of(resource_type).slug
        totals[slug] = totals.get(slug, 0) + count
    return totals
