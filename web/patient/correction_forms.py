"""The patient's correction forms: what is wrong with an item, a reply on the thread, a
withdrawal and a statement of disagreement.

The forms only parse input. accuracy.services decides whether it can be used and says
what to fix (InvalidStep names the field), so no rule is written twice. None of them has
a field for the item or its organisation: the item comes from the URL and its owner from
storage, whatever else a request carries.
"""

from __future__ import annotations

from django import forms

from accuracy import elements, services
from accuracy.models import ContactPreference

# The whole item is the empty FHIR path, which a required choice would read as no answer.
WHOLE_ITEM = "whole-item"


class WorkflowForm(forms.Form):
    def apply_error(self, error) -> None:
        """Show an InvalidStep from the workflow against the field it names."""
        field = error.field if error.field in self.fields else None
        self.add_error(field, str(error))


class StepForm(WorkflowForm):
    """A form acting on a request: it carries the revision the patient was looking at, so
    that a change made meanwhile is noticed instead of overwritten."""

    revision = forms.IntegerField(
        widget=forms.HiddenInput,
        min_value=1,
        error_messages={
            "required": "This page is out of date: open your request again",
            "invalid": "This page is out of date: open your request again",
            "min_value": "This page is out of date: open your request again",
        },
    )


def current_values(resource_type: str, resource: dict, display: str) -> dict[str, str]:
    """What each part of an item says now, in words, keyed by FHIR path ("" = whole item):
    the whole item by the patient's name for it, and as recorded where that differs."""
    found = {"": elements.as_recorded(elements.says(resource, ""), display)}
    for path, _label in elements.choices_for(resource_type):
        if path:
            found[path] = elements.says(resource, path)
    return {path: text for path, text in found.items() if text}


def element_initial(element: str) -> dict[str, str]:
    """The form's starting values from a link's ?element= (at most 100 characters); the
    form offers only the item's own parts, so an unknown one simply preselects nothing."""
    return {"element": element[:100]} if element else {}


class CorrectionForm(WorkflowForm):
    element = forms.ChoiceField(
        label="Which part of the item is wrong?",
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose which part of the item is wrong",
            "invalid_choice": "Choose which part of the item is wrong from the list",
        },
    )
    proposed = forms.CharField(
        label="What should it say?",
        help_text="For example, the right dose or the right date. If the item should not be on your "
        "record at all, say so.",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        error_messages={"required": "Say what it should say"},
    )
    reason = forms.CharField(
        label="Why is it wrong?",
        help_text="Tell us how you know. For example, your GP changed the dose at your review in March.",
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=4000,
        error_messages={"required": "Say why it is wrong"},
    )
    contact_preference = forms.ChoiceField(
        label="How should the organisation contact you about this?",
        choices=ContactPreference.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose how we should contact you",
            "invalid_choice": "Choose how we should contact you from the list",
        },
    )
    contact_phone = forms.CharField(
        label="Phone number",
        help_text="For example, 07700 900 982 or +44 7700 900 982.",
        required=False,
        max_length=30,
        error_messages={"max_length": "Enter a phone number of 30 characters or fewer"},
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )
    contact_address = forms.CharField(
        label="Address",
        help_text="The house number and street, and the town.",
        required=False,
        max_length=500,
        error_messages={"max_length": "Enter an address of 500 characters or fewer"},
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "street-address"}),
    )
    contact_postcode = forms.CharField(
        label="Postcode",
        required=False,
        max_length=10,
        error_messages={"max_length": "Enter a postcode of 10 characters or fewer, like LS1 4AP"},
        widget=forms.TextInput(attrs={"autocomplete": "postal-code"}),
    )

    def __init__(self, *args, resource_type: str, current: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.current = current
        self.fields["element"].choices = [
            (path or WHOLE_ITEM, label) for path, label in elements.choices_for(resource_type)
        ]

    def element_options(self) -> list[dict]:
        """Each part of the item with what it says now, for radios with a hint each."""
        chosen = self["element"].value()
        return [
            {
                "id": f"{self['element'].auto_id}_{index}",
                "value": value,
                "label": label,
                "now": self.current.get("" if value == WHOLE_ITEM else value, ""),
                "checked": chosen == value,
            }
            for index, (value, label) in enumerate(self.fields["element"].choices)
        ]

    def clean(self):
        """The number to call when the patient chose a phone call, the address to write to
        when they chose a letter: asked for only then, and required then (the domain's
        rule, services.contact_problems, which every channel asks)."""
        data = super().clean()
        if "contact_preference" in data:
            details = {name.removeprefix("contact_"): value for name, value in self.contact_details().items()}
            for field, message in services.contact_problems(data["contact_preference"], **details):
                if field not in self.errors:
                    self.add_error(field, message)
        return data

    def contact_details(self) -> dict[str, str]:
        return {
            name: self.cleaned_data.get(name, "")
            for name in ("contact_phone", "contact_address", "contact_postcode")
        }

    @property
    def element_path(self) -> str:
        chosen = self.cleaned_data["element"]
        return "" if chosen == WHOLE_ITEM else chosen


class ReplyForm(StepForm):
    body = forms.CharField(
        label="Your message",
        help_text="The organisation reads this with your request.",
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=4000,
        error_messages={"required": "Write your reply"},
    )


class WithdrawForm(StepForm):
    pass


class DisagreementForm(StepForm):
    text = forms.CharField(
        label="Your statement of disagreement",
        help_text="Say what you believe is wrong and why. It will be kept beside the item, and everyone "
        "who looks at your record will see it.",
        widget=forms.Textarea(attrs={"rows": 6}),
        max_length=4000,
        error_messages={"required": "Write your statement of disagreement"},
    )
