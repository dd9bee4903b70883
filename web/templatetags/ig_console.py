"""Words for the audit trail's codes on the IG console's pages."""

from django import template

from consent.ig_queries import ACTION_LABELS

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
