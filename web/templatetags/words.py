"""The rendering layer (phr.render) as template filters, built into every template
(settings TEMPLATES builtins): {{ when|day }}, {{ when|day_and_time }}."""

from django import template

from phr.render import dates

register = template.Library()


@register.filter
def day(value) -> str:
    return dates.day(value or None)


@register.filter
def day_and_time(value) -> str:
    return dates.day_and_time(value or None)


@register.filter
def day_and_time_seconds(value) -> str:
    return dates.day_and_time(value or None, seconds=True)


@register.filter
def item_name(entry) -> str:
    """What a patient calls an item ("High blood pressure"), from the rendering layer;
    the name as recorded where the layer knows no better."""
    from accuracy.record_display import patient_title

    return patient_title(entry)


@register.filter
def staff_part(correction) -> str:
    """What staff call the part a correction request is about ("Address"), never its
    FHIR path: accuracy.elements.staff_label."""
    from accuracy.elements import staff_label

    return staff_label(correction.entry.resource_type, correction.element, correction.element_label)


@register.simple_tag
def proxy_hidden_words() -> str:
    """What no one acting for a patient ever sees, in words: "mental health, sexual
    health, ..." (consent.policy.hidden_from_proxies, from settings)."""
    from consent.policy import hidden_from_proxies
    from consent.sharing_text import categories_words

    return categories_words(hidden_from_proxies())
