"""The patient's personal details as each organisation holds them, side by side: name,
date of birth, sex, address, phone and registered practice, with the details on which
the organisations disagree marked, so that the patient can ask the one that is wrong to
correct it (through the same correction workflow as any item).

Works on the Patient entries a view has already read through consent.policy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from phr.columns import human_name
from phr.models import RecordEntry
from phr.render.dates import fhir_moment
from phr.render.person import address_words

from .record_display import decode

SEX_WORDS = {"male": "Male", "female": "Female", "other": "Other", "unknown": "Not known"}


def _name(resource: dict) -> str:
    return human_name(resource.get("name"))


def _address(resource: dict) -> str:
    return address_words(resource.get("address"))


def _phone(resource: dict) -> str:
    for point in resource.get("telecom") or ():
        if isinstance(point, dict) and point.get("system") == "phone" and point.get("value"):
            return str(point["value"])
    return ""


def _practice(resource: dict) -> str:
    for reference in resource.get("generalPractitioner") or ():
        if isinstance(reference, dict) and reference.get("display"):
            return str(reference["display"])
    return ""


# (label, how to read it, the correction form's element for it: accuracy.elements)
FIELDS = (
    ("Name", _name, "name"),
    ("Date of birth", lambda r: fhir_moment(r.get("birthDate")), "birthDate"),
    ("Sex", lambda r: SEX_WORDS.get(str(r.get("gender") or ""), ""), ""),
    ("Address", _address, "address"),
    ("Phone", _phone, "telecom"),
    ("Registered practice", _practice, ""),
)


@dataclass(frozen=True)
class Holding:
    entry: RecordEntry
    values: list[str]


@dataclass(frozen=True)
class Row:
    label: str
    element: str
    values: list[str]  # one per holding, in the holdings' order
    differ: bool


def _same(value: str) -> str:
    return " ".join(value.lower().replace(",", " ").split())


def side_by_side(entries: Iterable[RecordEntry]) -> tuple[list[Holding], list[Row]]:
    """Each organisation's copy (a column) and each detail (a row), a row marked where the
    copies that hold the detail disagree."""
    holdings = []
    for entry in sorted(entries, key=lambda e: e.owner.name):
        try:
            resource = decode(entry.json)
        except ValueError:
            continue
        if isinstance(resource, dict):
            holdings.append(Holding(entry, [read(resource) for _, read, _ in FIELDS]))
    rows = []
    for position, (label, _, element) in enumerate(FIELDS):
        values = [h.values[position] for h in holdings]
        known = {_same(v) for v in values if v}
        if known:
            rows.append(Row(label, element, values, differ=len(known) > 1))
    return holdings, rows
