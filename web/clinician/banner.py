"""Who the patient is, as the NHS patient banner shows it on every clinician page about
them: name (FAMILY, Given), date of birth with age, gender and NHS number, 3-3-4.

The name, date of birth and gender come from the Patient resources this clinician may
read: the copies of the patient's details the policy releases (and audits), never the
network's own index, which holds whatever the first organisation sent. A clinician who
may read no copy sees the NHS number only; it is how they found the patient.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from django.utils import timezone

from consent.policy import RecordAccess
from phr.columns import chosen_name
from phr.models import Patient
from phr.render.dates import fhir_moment


def spaced_nhs_number(number: str | None) -> str:
    """An NHS number as people read it: 3-3-4 digits."""
    return f"{number[:3]} {number[3:6]} {number[6:]}" if number else ""


@dataclass(frozen=True)
class Banner:
    name: str
    birth_date: date | None
    birth_text: str  # a partial date ("1971") as recorded, when there is no whole one
    age: str
    gender: str
    nhs_number: str

    @classmethod
    def number_only(cls, nhs_number: str | None) -> Banner:
        """The banner of a patient whose details this clinician may not read."""
        return cls("", None, "", "", "", spaced_nhs_number(nhs_number))


def patient_banner(access: RecordAccess, *, today: date | None = None) -> Banner:
    """The banner for a record the clinician has opened, from the copies they may read."""
    copies = access.read(
        lambda entries: entries.filter(resource_type="Patient").order_by("-last_updated_at", "pk"),
        detail={"purpose": "patient banner"},
    )
    own = getattr(access.actor.organisation, "pk", None)
    copies.sort(key=lambda copy: copy.owner_id != own)  # their own organisation's first
    details = [resource for resource in map(_decoded, copies) if resource]
    birth = _first(_birth_date, details, None)
    birth_text = _first(lambda r: fhir_moment(r.get("birthDate")), details)
    return Banner(
        name=_first(banner_name, details),
        birth_date=birth,
        birth_text="" if birth else birth_text,
        age=age_in_words(birth, today or timezone.localdate()) if birth else "",
        gender=_first(lambda r: str(r.get("gender") or "").replace("-", " ").capitalize(), details),
        nhs_number=spaced_nhs_number(access.patient.nhs_number),
    )


def _decoded(entry) -> dict:
    try:
        resource = json.loads(entry.json)
    except ValueError:
        return {}
    return resource if isinstance(resource, dict) else {}


def _first(read, resources, empty=""):
    """The first copy's value that is there: one organisation may lack what another has."""
    return next((value for value in map(read, resources) if value), empty)


def banner_name(resource: dict) -> str:
    """FAMILY, Given Other, from the official name if there is one."""
    name = chosen_name(resource.get("name"))
    family = str(name.get("family") or "").strip()
    given = " ".join(str(g) for g in name.get("given") or () if g).strip()
    if family and given:
        return f"{family.upper()}, {given}"
    return family.upper() or given or str(name.get("text") or "").strip()


def _birth_date(resource: dict) -> date | None:
    try:
        return date.fromisoformat(str(resource.get("birthDate") or ""))
    except ValueError:
        return None


def age_in_words(born: date, today: date) -> str:
    """Age as a banner gives it: years from two, months below, days under a month."""
    months = (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)
    if months >= 24:
        years = months // 12
        return f"{years} years"
    if months >= 1:
        return f"{months} month{'s' if months != 1 else ''}"
    days = max((today - born).days, 0)
    return f"{days} day{'s' if days != 1 else ''}"


def index_banner(patient: Patient) -> Banner:
    """The patient banner for an IG page: who the patient is from the network's index
    (IG reads no copy of the patient's details; the index is how the patient was found)."""
    born = patient.birth_date
    return Banner(
        name=banner_name({"name": [{"family": patient.family_name, "given": patient.given_names.split()}]}),
        birth_date=born,
        birth_text="",
        age=age_in_words(born, timezone.localdate()) if born else "",
        gender=patient.gender.replace("-", " ").capitalize(),
        nhs_number=spaced_nhs_number(patient.nhs_number),
    )
