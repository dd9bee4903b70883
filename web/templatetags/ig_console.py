"""Words for the audit trail's codes on the IG console's pages, and patients as the
console names them: by name and NHS number, as the patient banner does, never by id."""

from django import template

from consent.ig_queries import ACTION_LABELS
from phr.models import Patient
from web.clinician.banner import banner_name, spaced_nhs_number

register = template.Library()

PURPOSE_LABELS = {
    "direct-care": "Direct care",
    "emergency": "Emergency care (break-glass)",
    "patient-access": "The patient's own access",
    "patient-choice": "The patient's choice",
    "governance": "Information governance",
}


@register.filter
def action_label(code: str) -> str:
    return ACTION_LABELS.get(code, code)


@register.filter
def purpose_label(code: str) -> str:
    return PURPOSE_LABELS.get(code, code or "Not stated")


@register.filter
def short_id(value) -> str:
    """The first eight hex digits of a UUID: enough to tell patients apart on a page."""
    return "" if value is None else str(value).replace("-", "")[:8]


@register.filter
def break_glass_id(detail):
    return detail.get("break_glass") if isinstance(detail, dict) else None


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


def patient_name(patient: Patient | None) -> str:
    """FAMILY, Given, read from the network's index the way the banner reads a name."""
    if patient is None:
        return ""
    return banner_name({"name": [{"family": patient.family_name, "given": patient.given_names.split()}]})


@register.filter(name="patient_name")
def patient_name_filter(patient) -> str:
    return patient_name(patient) or "Name not recorded"


@register.filter
def nhs_number(patient) -> str:
    """The patient's NHS number as people read it (485 777 3456)."""
    return spaced_nhs_number(getattr(patient, "nhs_number", None)) or "not recorded"


@register.filter
def role_at(person, organisation_id) -> str:
    """A person's job title at the organisation they acted for, else their role."""
    return person.role_at(organisation_id) if person else ""
