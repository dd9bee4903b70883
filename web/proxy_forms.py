"""The form for giving someone proxy access, shared by the patient's page and the
practice's: it parses what was typed; every rule (who, for how long, why) stays in
consent.proxies, whose refusals come back here attached to the field they are about."""

from __future__ import annotations

from datetime import datetime

from django import forms

from accounts.models import ProxyAccess
from consent.proxies import ProxyProblem, Rights
from web.common import typed_end_date

RIGHT_WORDS = [
    ("see", "See the record"),
    ("correct", "Ask for corrections to the record"),
    ("share", "Manage sharing choices"),
]
# Where the error summary sends the reader for each field.
ANCHORS = {
    "email": "id_email",
    "relationship": "id_relationship_0",
    "rights": "rights-see",
    "until": "until-day",
    "reason": "id_reason",
}
# What a practice may give: a patient's own choice of proxy is theirs alone.
PRACTICE_RELATIONSHIPS = [
    (value, label)
    for value, label in ProxyAccess.Relationship.choices
    if value != ProxyAccess.Relationship.CHOSEN
]


def rights_in_words(grant: ProxyAccess) -> list[str]:
    """What the grant lets the proxy do, as the form offered it."""
    return [words for right, words in RIGHT_WORDS if right in grant.rights]


class GrantForm(forms.Form):
    """Who, what they may do, until when and why."""

    email = forms.EmailField(
        label="Their email address",
        help_text="They need their own account in this portal, made with this email address.",
        max_length=254,
        error_messages={"required": "Enter their email address", "invalid": "Enter a real email address"},
    )
    rights = forms.MultipleChoiceField(
        choices=RIGHT_WORDS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Choose from the list"},
    )
    until_day = forms.CharField(required=False, max_length=2)
    until_month = forms.CharField(required=False, max_length=2)
    until_year = forms.CharField(required=False, max_length=4)
    reason = forms.CharField(
        label="Why do they need access?",
        help_text="Say who they are and what they will help with.",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Say why they need access"},
    )
    field_order = ("email", "rights", "until_day", "until_month", "until_year", "reason")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.until_error = ""

    def clean(self):
        data = super().clean()
        data["until"] = self._until(data)
        return data

    def _until(self, data) -> datetime | None:
        # Whether the date is allowed (in the future, not too far) is the domain's rule.
        until, self.until_error = typed_end_date(data)
        if until is None and not self.until_error:
            self.until_error = "Enter the date their access ends"
        return until

    def is_valid(self) -> bool:
        return super().is_valid() and not self.until_error

    def chosen_rights(self) -> Rights:
        given = set(self.cleaned_data.get("rights") or ())
        return Rights(see="see" in given, correct="correct" in given, share="share" in given)

    def until_values(self) -> dict[str, str]:
        return {p: self.data.get(f"until_{p}", "") if self.is_bound else "" for p in ("day", "month", "year")}

    def add_problem(self, problem: ProxyProblem) -> None:
        """A refusal from consent.proxies, on the field it names."""
        if problem.field == "until":
            self.until_error = str(problem)
        elif problem.field in self.fields:
            self.add_error(problem.field, str(problem))
        else:
            self.add_error(None, str(problem))

    def error_list(self) -> list[tuple[str, str]]:
        """(anchor, message) for the error summary, in the order of the page."""
        if not self.is_bound:
            return []
        found = [("grant-form", str(m)) for m in self.non_field_errors()]
        for name in ("email", "relationship", "rights"):
            found += [(ANCHORS[name], str(m)) for m in self.errors.get(name, [])]
        if self.until_error:
            found.append((ANCHORS["until"], self.until_error))
        found += [(ANCHORS["reason"], str(m)) for m in self.errors.get("reason", [])]
        return found


class PracticeGrantForm(GrantForm):
    """The practice's form also names the relationship, which it has checked."""

    relationship = forms.ChoiceField(
        label="Their relationship to the patient",
        choices=PRACTICE_RELATIONSHIPS,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose their relationship to the patient",
            "invalid_choice": "Choose one of the relationships",
        },
    )
    field_order = ("email", "relationship", "rights", "until_day", "until_month", "until_year", "reason")
