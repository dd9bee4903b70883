"""Forms of the clinician's corrections workspace.

Each form parses one step a clinician can take on a correction request and hands it to
the workflow (accuracy.services), which decides whether the step is allowed. Every form
carries the request's revision as the page showed it: a step taken on an older revision
is refused by the workflow as a Conflict, never merged.
"""

from __future__ import annotations

from django import forms
from django.forms.forms import NON_FIELD_ERRORS
from django.utils import timezone

from accounts.models import Role, User
from accuracy import services
from accuracy.models import BusinessStatus, CorrectionRequest, DenialReason, Statement
from phr import fhir
from phr.amend_fields import DIRECTION_MESSAGE, Change, Refused, amend, part_at, parts_for
from phr.contact_details import has_direction_controls
from phr.ingest import canonical_json, parse_json
from web.clinician import amend_inputs

# The request's state in the words a clinician uses (the model's labels speak to the patient).
STATE_WORDS = {
    BusinessStatus.QUEUED: "New",
    BusinessStatus.IN_REVIEW: "In review",
    BusinessStatus.WAITING: "Waiting for the patient",
    BusinessStatus.AMENDED: "Corrected",
    BusinessStatus.PARTIAL: "Partly corrected",
    BusinessStatus.DENIED: "Not corrected",
    BusinessStatus.CANCELLED: "Withdrawn",
    BusinessStatus.DISAGREEMENT: "Not corrected: disagreement recorded",
}

SHOW_CHOICES = [
    ("open", "Open requests"),
    ("overdue", "Overdue"),
    ("due_soon", "Due soon"),
    ("waiting", "Waiting for the patient"),
    ("mine", "Assigned to you"),
    ("decided", "Decided or withdrawn"),
    ("all", "All requests"),
]


class QueueFilterForm(forms.Form):
    show = forms.ChoiceField(label="Show", choices=SHOW_CHOICES, required=False)

    def chosen(self) -> str:
        return (self.cleaned_data.get("show") or "open") if self.is_valid() else "open"


MAX_WORDS = 5000  # what one box of a step or a note may hold


def _text(label: str, help_text: str = "", *, rows: int = 4, required: bool = True) -> forms.CharField:
    # Required-ness is the workflow's to judge (it names what is missing): the form only
    # refuses an empty box where nothing could be sent at all.
    return forms.CharField(
        label=label,
        help_text=help_text,
        required=required,
        max_length=MAX_WORDS,
        widget=forms.Textarea(attrs={"rows": rows}),
        error_messages={
            "required": f"Enter {label[0].lower()}{label[1:]}",
            "max_length": f"{label} must be {MAX_WORDS:,} characters or fewer",
        },
    )


class StepForm(forms.Form):
    """A step on one request, based on the revision the clinician was looking at."""

    revision = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    step = ""  # the key in services.STEPS / the page's actions, and the form prefix

    def __init__(self, *args, correction: CorrectionRequest, **kwargs):
        kwargs.setdefault("prefix", self.step)
        kwargs.setdefault("initial", {}).setdefault("revision", correction.revision)
        super().__init__(*args, **kwargs)
        self.correction = correction

    def add_service_error(self, message: str, field: str | None = None) -> None:
        """Attach a refusal from the workflow to the field it names, or to the form."""
        self.add_error(field if field in self.fields else None, message)

    def perform(self, actor) -> CorrectionRequest:
        """Call the workflow step; raises InvalidStep, Conflict or NotFound."""
        return self.call(actor=actor, request_id=self.correction.pk, revision=self.cleaned_data["revision"])

    def call(self, **common) -> CorrectionRequest:
        raise NotImplementedError

    done = "Saved."


class StartReviewForm(StepForm):
    step = "start_review"
    done = "You have started reviewing this request."

    def call(self, **common):
        return services.start_review(**common)


class AskInformationForm(StepForm):
    step = "ask_information"
    done = "Your question has been sent to the patient."
    question = _text("Your question to the patient", "The patient reads this. Say what you need and why.")

    def call(self, **common):
        return services.ask_information(**common, question=self.cleaned_data["question"])


class MessageForm(StepForm):
    step = "message"
    done = "Your message has been sent to the patient."
    body = _text("Message to the patient", "The patient reads this in the portal.", rows=3)

    def call(self, **common):
        return services.post_message(**common, body=self.cleaned_data["body"])


class ExtendForm(StepForm):
    step = "extend"
    done = "The deadline has been extended and the patient has been told why."
    reason = _text("Reason for the extension", "The patient is told this reason.", rows=3)
    until = forms.DateField(
        label="New deadline",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter the new deadline as a real date"},
    )

    def __init__(self, *args, latest=None, **kwargs):
        super().__init__(*args, **kwargs)
        if latest is not None:
            self.fields["until"].help_text = (
                f"Optional. If you leave it empty, the deadline becomes the latest allowed: "
                f"{latest:%-d %B %Y}."
            )

    def call(self, **common):
        return services.extend_deadline(
            **common, reason=self.cleaned_data["reason"], until=self.cleaned_data["until"]
        )


class _AcceptForm(StepForm):
    """Accept, in full or in part: what both ways of writing the item's next version share."""

    step = "accept"
    based_on_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    note = _text(
        "Note about the decision",
        "Required when you correct only part of the request: say what you corrected and why "
        "the rest stays. The patient reads this.",
        rows=3,
        required=False,
    )
    outcome = forms.ChoiceField(
        choices=[("accept", "Correct the item"), ("in_part", "Correct it in part")],
        widget=forms.HiddenInput,
        required=False,
    )

    @property
    def done(self) -> str:
        done = "corrected in part" if self.in_part else "corrected"
        return f"The item has been {done}. The patient and everyone who saw the old version have been told."

    @property
    def in_part(self) -> bool:
        return self.cleaned_data.get("outcome") == "in_part"

    def accept(self, resource_json: str, **common):
        return services.accept(
            **common,
            resource_json=resource_json,
            based_on_version=self.cleaned_data["based_on_version"],
            in_part=self.in_part,
            note=self.cleaned_data["note"],
        )


class AmendForm(_AcceptForm):
    """Accept, in full or in part: the item's next version, as FHIR JSON."""

    resource = forms.CharField(
        label="The corrected item (FHIR R4 JSON)",
        help_text="Edit the item as it should be. It is checked as FHIR R4 and stored as a new version.",
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "workspace-json"}),
        strip=False,
        error_messages={"required": "Enter the corrected item"},
    )

    def call(self, **common):
        return self.accept(self.cleaned_data["resource"], **common)


class FieldsAmendment:
    """Changing parts of an item in fields: the server writes them into a copy of its
    current version (phr.amend_fields), checks it as FHIR R4 and says the change in words.
    Shared by the correction workflow (AmendFieldsForm) and the accuracy checks' findings
    (FindingAmendForm); a subclass is a Form that calls offer_fields from __init__."""

    def offer_fields(self, entry, element: str = "") -> None:
        self.current = parse_json(str(entry.json).encode(), "the item")
        self.offer = parts_for(self.current, element)
        self.groups: list[tuple[bool, list[amend_inputs.Inputs]]] = []
        flagged = {part.key for part in self.offer.flagged}
        for part in self.offer.parts:
            fields = amend_inputs.fields_for(part, self.current)
            self.fields.update(fields)
            for name, value in amend_inputs.initial_for(part, self.current).items():
                self.initial.setdefault(name, value)
            inputs = amend_inputs.Inputs(part, list(fields))
            if not self.groups or self.groups[-1][0] != (part.key in flagged):
                self.groups.append((part.key in flagged, []))
            self.groups[-1][1].append(inputs)
        self.initial.setdefault("based_on_version", entry.version)
        if self.is_bound:
            # An input left out of the post (never by the page itself) keeps what the item
            # says, as the page promises: only what is changed changes.
            offered = [n for n in self.fields if n not in ("note", "outcome", "based_on_version")]
            missing = {
                self.add_prefix(n): self.initial[n]
                for n in offered
                if self.add_prefix(n) not in self.data
                and n in self.initial
                and not isinstance(self.fields[n].widget, forms.CheckboxInput)
            }
            if missing:
                self.data = self.data.copy()
                self.data.update(missing)
        self.order_fields(
            [name for name in self.fields if name not in ("note", "outcome")] + ["note", "outcome"]
        )
        self.amended: dict | None = None
        self.changes: list[Change] = []

    def bound_groups(self):
        """The parts as the template lays them out: the flagged ones, then the others, each
        group saying whether one of its inputs has a problem (a folded group opens then)."""
        laid_out = []
        for flagged, group in self.groups:
            parts = [(inputs, [self[name] for name in inputs.names]) for inputs in group]
            wrong = any(bound.errors for _, bounds in parts for bound in bounds)
            laid_out.append((flagged, parts, wrong))
        return laid_out

    def values_from_fields(self, cleaned) -> dict:
        values = {}
        for part in self.offer.parts:
            names = [n for n in self.fields if n == part.key or n.startswith(f"{part.key}_")]
            if any(self.has_error(name) for name in names):
                continue
            try:
                values[part.key] = amend_inputs.value_from(part, cleaned)
            except amend_inputs.Problem as problem:
                self.add_error(f"{part.key}_{problem.name}" if problem.name else part.key, str(problem))
        return values

    def apply_fields(self, values: dict, unchanged: str) -> None:
        """The amended copy and the change in words, or the errors that say what to fix."""
        try:
            self.amended, self.changes = amend(self.current, values, self.offer.parts)
        except Refused as refused:
            self.add_error(f"{refused.key}_{refused.name}" if refused.name else refused.key, str(refused))
            return
        if not self.changes:
            raise forms.ValidationError(unchanged, code="unchanged")
        for path, message in fhir.validate(self.amended):
            part = part_at(path, self.offer.parts)
            name = next((n for n in self.fields if part and n.startswith(part.key)), None)
            self.add_error(name, f"{part.label if part else 'The corrected item'} {message}")

    def add_error(self, field, error):
        """A refusal of the whole step (the item changed meanwhile) replaces "you have not
        changed anything": the fields were reset to the item as it is now, so that one
        would blame the clinician for the reset."""
        said = (self._errors or {}).get(NON_FIELD_ERRORS)
        if field is None and said:
            kept = [e for e in said.as_data() if e.code != "unchanged"]
            if kept:
                self._errors[NON_FIELD_ERRORS] = self.error_class(
                    kept, error_class="nonfield", renderer=self.renderer
                )
            else:
                del self._errors[NON_FIELD_ERRORS]
        super().add_error(field, error)


class AmendFieldsForm(FieldsAmendment, _AcceptForm):
    """Accept, in full or in part, by changing parts of the item in fields; confirmed, it
    is stored as the JSON path stores it."""

    step = "amend"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.offer_fields(self.correction.entry, self.correction.element or "")

    def clean(self):
        cleaned = super().clean()
        values = self.values_from_fields(cleaned)
        if self.in_part and len((cleaned.get("note") or "").strip()) < services.MIN_TEXT:
            self.add_error("note", "Say which part you corrected and why the rest stays as it is")
        elif has_direction_controls(cleaned.get("note") or ""):
            self.add_error("note", DIRECTION_MESSAGE)
        if self.errors:
            return cleaned
        self.apply_fields(
            values,
            "You have not changed anything. Change the part that is wrong, "
            "or choose not to correct the item.",
        )
        return cleaned

    def call(self, **common):
        return self.accept(canonical_json(self.amended).decode(), **common)


class FindingAmendForm(FieldsAmendment, forms.Form):
    """A holder's clinician corrects their organisation's item an accuracy check found a
    problem with, in the same fields as a correction."""

    based_on_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    note = _text(
        "Note about the correction",
        "Optional. Kept with the finding: the other organisations' clinicians read it.",
        rows=3,
        required=False,
    )

    def __init__(self, *args, entry, **kwargs):
        super().__init__(*args, **kwargs)
        self.offer_fields(entry)

    def clean(self):
        cleaned = super().clean()
        values = self.values_from_fields(cleaned)
        if has_direction_controls(cleaned.get("note") or ""):
            self.add_error("note", DIRECTION_MESSAGE)
        if not self.errors:
            self.apply_fields(values, "You have not changed anything. Change the part that is wrong.")
        return cleaned


class DenyForm(StepForm):
    step = "deny"
    done = "Your decision has been sent to the patient with their rights."
    code = forms.ChoiceField(
        label="Why the item is not being corrected",
        choices=DenialReason.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose the reason for not correcting the item"},
    )
    text = _text(
        "Explanation for the patient",
        "Plain words: the patient reads this in the decision letter.",
    )

    def preview_letter(self, item: str = "") -> str:
        """The letter the patient would receive, from an unsaved copy of the request;
        ``item`` names the item as released to the reader (selectors.Copies.item_name)."""
        unsaved = CorrectionRequest(
            pk=self.correction.pk,
            entry=self.correction.entry,
            business_status=BusinessStatus.DENIED,
            decision_code=self.cleaned_data["code"],
            decision_text=self.cleaned_data["text"].strip(),
        )
        return services.decision_letter(unsaved, item)

    def call(self, **common):
        return services.deny(**common, code=self.cleaned_data["code"], text=self.cleaned_data["text"])


class AssignForm(StepForm):
    step = "assign"
    colleague = forms.ModelChoiceField(
        label="Assign to",
        queryset=User.objects.none(),
        empty_label="Choose a colleague",
        error_messages={"required": "Choose a colleague", "invalid_choice": "Choose a colleague"},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["colleague"].queryset = User.objects.filter(
            memberships__organisation=self.correction.owner, role=Role.CLINICIAN, is_active=True
        ).order_by("email")

    @property
    def done(self) -> str:
        return f"The request has been assigned to {self.cleaned_data['colleague']}."

    def call(self, **common):
        return services.assign(**common, colleague=self.cleaned_data["colleague"])


class WithdrawForm(StepForm):
    step = "withdraw"
    done = "The request has been withdrawn and the patient has been told."
    note = _text(
        "How the patient asked to withdraw",
        "For example: by phone on 3 March, to the reception team. The patient is told this.",
        rows=3,
    )

    def call(self, **common):
        return services.withdraw(**common, note=self.cleaned_data["note"])


class RebuttalForm(StepForm):
    step = "rebuttal"
    done = "Your response has been added beside the item. The patient has been told."
    text = _text(
        "Your response to the disagreement",
        "It is kept beside the item with the patient's statement, and the patient sees it.",
    )

    def call(self, **common):
        return services.add_rebuttal(**common, text=self.cleaned_data["text"])


FORMS: dict[str, type[StepForm]] = {
    form.step: form
    for form in (
        StartReviewForm,
        AskInformationForm,
        MessageForm,
        ExtendForm,
        AmendForm,
        AmendFieldsForm,
        DenyForm,
        AssignForm,
        WithdrawForm,
        RebuttalForm,
    )
}


def actions_for(correction: CorrectionRequest) -> set[str]:
    """The steps to offer on the page in the request's current state. The workflow checks
    them again when they are taken; this only keeps buttons off the page that would fail."""
    state = (correction.status, correction.business_status)
    offered = {step for step, (starts, _) in services.STEPS.items() if state in starts}
    offered.discard("patient_reply")
    offered.discard("log_disagreement")
    if "accept" in offered or "accept_in_part" in offered:
        offered -= {"accept_in_part"}
        offered.add(AmendFieldsForm.step)
    if correction.is_open:
        offered |= {"message", "assign"}
        if not correction.is_extended and timezone.localdate() <= correction.first_due_on:
            offered.add("extend")
    if correction.business_status == BusinessStatus.DISAGREEMENT and not any(
        s.kind == Statement.Kind.REBUTTAL for s in correction.statements.all()
    ):
        offered.add("rebuttal")
    return offered
