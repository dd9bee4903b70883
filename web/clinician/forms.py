"""Forms of the clinician pages. They parse what was typed; the rules about who may see
what, and what makes an emergency access valid, stay in policy.py and services.py."""

from django import forms

from consent.models import BreakGlassReason
from phr.nhs_number import is_valid_nhs_number, normalise


class FindPatientForm(forms.Form):
    nhs_number = forms.CharField(
        label="NHS number",
        max_length=20,
        help_text="10 digits, for example 943 476 5919. Spaces are fine.",
        error_messages={"required": "Enter the patient's NHS number"},
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "spellcheck": "false"}),
    )

    def clean_nhs_number(self) -> str:
        value = normalise(self.cleaned_data["nhs_number"]).replace("-", "")
        if not value.isdigit():
            raise forms.ValidationError("Enter an NHS number using numbers only")
        if len(value) != 10:
            raise forms.ValidationError("Enter an NHS number that is 10 digits long")
        if not is_valid_nhs_number(value):
            raise forms.ValidationError(
                "Enter a valid NHS number: this one fails its check digit, so a digit may be mistyped"
            )
        return value


class ActingForForm(forms.Form):
    """Which of the clinician's own organisations they act for; nothing else is offered."""

    organisation = forms.TypedChoiceField(label="Acting for", coerce=int)

    def __init__(self, *args, organisations=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].choices = [(o.pk, o.name) for o in organisations]


class BreakGlassForm(forms.Form):
    """The clinician's justification for emergency access. Both fields are optional here
    so that the one rule about what is enough (services.declare_break_glass) decides and
    names the problem."""

    reason_code = forms.ChoiceField(
        label="Reason for emergency access",
        choices=BreakGlassReason.choices,
        required=False,
        widget=forms.RadioSelect,
    )
    reason_text = forms.CharField(
        label="Explain the emergency",
        help_text="Say what is happening and why the information is needed now. The patient will read this.",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 5}),
    )

    def add_service_error(self, message: str, field: str | None = None) -> None:
        """Attach a refusal from declare_break_glass to the field it names (or the form)."""
        self.add_error(field if field in self.fields else None, message)
