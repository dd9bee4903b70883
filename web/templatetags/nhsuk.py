"""Template helpers that dress Django form fields in NHS.UK design system markup, so
allauth's forms (and ours) need no per-form templates."""

from django import forms, template

register = template.Library()

# Widget class -> the design system's class for the control itself.
_CONTROL_CLASSES = {
    forms.CheckboxInput: "nhsuk-checkboxes__input",
    forms.RadioSelect: "nhsuk-radios__input",
    forms.Textarea: "nhsuk-textarea",
    forms.Select: "nhsuk-select",
}


def _control_class(widget: forms.Widget) -> str:
    for widget_type, css_class in _CONTROL_CLASSES.items():
        if isinstance(widget, widget_type):
            return css_class
    return "nhsuk-input"


@register.filter
def nhsuk_kind(bound_field: forms.BoundField) -> str:
    """Which of the design system's field patterns fits this field."""
    widget = bound_field.field.widget
    if isinstance(widget, forms.CheckboxInput):
        return "checkbox"
    if isinstance(widget, forms.RadioSelect):
        return "radios"
    return "input"


@register.filter
def nhsuk_widget(bound_field: forms.BoundField):
    """Render the field's control with the NHS.UK class and the hint and error linked by
    aria-describedby; placeholders are dropped because the label says it all."""
    widget = bound_field.field.widget
    css = [_control_class(widget)]
    if bound_field.errors and css[0] in ("nhsuk-input", "nhsuk-textarea", "nhsuk-select"):
        css.append(f"{css[0]}--error")
    described_by = []
    if bound_field.help_text:
        described_by.append(f"{bound_field.auto_id}-hint")
    if bound_field.errors:
        described_by.append(f"{bound_field.auto_id}-error")
    attrs = {"class": " ".join(css), "placeholder": False}
    if described_by:
        attrs["aria-describedby"] = " ".join(described_by)
    return bound_field.as_widget(attrs=attrs)
