"""Correction requests: a patient's flag on one item, routed to the organisation that
holds it, decided against the legal deadline, following the HL7 Patient Request for
Corrections guide's Task states; with its timeline, its message thread, statements of
disagreement and rebuttal, and the notices sent to those who saw the old version."""

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from audit.models import AppendOnly


class Status(models.TextChoices):
    """FHIR Task.status values the guide uses."""

    READY = "ready", "Received"
    IN_PROGRESS = "in-progress", "Being reviewed"
    COMPLETED = "completed", "Decided"
    CANCELLED = "cancelled", "Withdrawn"


class BusinessStatus(models.TextChoices):
    """The guide's Task.businessStatus codes."""

    QUEUED = "queued", "Waiting for review"
    IN_REVIEW = "in-review", "Being reviewed"
    WAITING = "waiting-for-information", "Waiting for more information from you"
    AMENDED = "amendment-completed", "Corrected"
    PARTIAL = "partial-amendment-completed", "Partly corrected"
    DENIED = "denied", "Not corrected"
    CANCELLED = "requester-cancelled", "Withdrawn"
    DISAGREEMENT = "disagreement-logged", "Not corrected: your disagreement is recorded"


OPEN_STATUSES = (Status.READY, Status.IN_PROGRESS)


class ContactPreference(models.TextChoices):
    PORTAL = "portal", "A message in this portal"
    EMAIL = "email", "Email"
    PHONE = "phone", "Phone"
    LETTER = "letter", "Letter"


class DenialReason(models.TextChoices):
    ACCURATE = "accurate", "The information is accurate and complete"
    CLINICAL_OPINION = "clinical_opinion", "It records a clinical opinion that was correct when it was made"
    NOT_OURS = "not_created_here", "We did not create this information"
    NOT_PART_OF_RECORD = "not_part_of_record", "It is not part of the record you can ask us to correct"
    INSUFFICIENT = "insufficient", "We could not confirm the change you asked for"


def overdue_on(today) -> models.Q:
    """A request overdue on this day: still open, and due before it."""
    return models.Q(status__in=OPEN_STATUSES, due_on__lt=today)


def waiting_on_patient() -> models.Q:
    """A request the owner cannot decide until the patient answers its question."""
    return models.Q(status__in=OPEN_STATUSES, business_status=BusinessStatus.WAITING)


# No 0/O, 1/I/L or 5/S: a reference read out on the phone is heard and typed right.
REFERENCE_ALPHABET = "2346789ABCDEFGHJKMNPQRTUVWXYZ"


def _reference_text() -> str:
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))
    return f"PRC-{chars[:4]}-{chars[4:]}"


def new_reference() -> str:
    """A short reference a patient can quote on the phone ("PRC-7K3M-Q9"), not yet used
    by any request; the unique column is the last word if two are made at once."""
    while True:
        reference = _reference_text()
        if not CorrectionRequest.objects.filter(reference=reference).exists():
            return reference


class CorrectionRequestQuerySet(models.QuerySet):
    def open(self) -> "CorrectionRequestQuerySet":
        return self.filter(status__in=OPEN_STATUSES)

    def overdue(self, today) -> "CorrectionRequestQuerySet":
        return self.filter(overdue_on(today))

    def waiting_on_patient(self) -> "CorrectionRequestQuerySet":
        return self.filter(waiting_on_patient())

    def disputing(self) -> "CorrectionRequestQuerySet":
        """Requests that make their item disputed: open, or with a disagreement standing."""
        return self.filter(
            models.Q(status__in=OPEN_STATUSES) | models.Q(business_status=BusinessStatus.DISAGREEMENT)
        )

    def for_queue(self, organisation) -> "CorrectionRequestQuerySet":
        return self.filter(owner=organisation)


class CorrectionRequest(models.Model):
    """One patient's request to correct one item (or one element of it)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey("phr.Patient", on_delete=models.PROTECT, related_name="correction_requests")
    entry = models.ForeignKey("phr.RecordEntry", on_delete=models.PROTECT, related_name="correction_requests")
    # The data owner, copied from the stored entry when the request is made: never from input.
    owner = models.ForeignKey(
        "phr.Organisation", on_delete=models.PROTECT, related_name="correction_requests"
    )
    entry_version = models.PositiveIntegerField(help_text="the version the patient saw and flagged")
    element = models.CharField(
        max_length=200, blank=True, help_text="FHIR path of the element, empty for the whole item"
    )
    element_label = models.CharField(max_length=200)
    # The item's name as the patient saw it when flagging it, for letters and queues,
    # so that they need not read the item outside the access policy.
    item_display = models.CharField(max_length=255, blank=True)
    current_text = models.TextField(blank=True)
    proposed = models.TextField()
    reason = models.TextField()
    contact_preference = models.CharField(max_length=10, choices=ContactPreference.choices)
    # Where to phone or write, given when the patient chose phone or letter.
    contact_phone = models.CharField(max_length=30, blank=True)
    contact_address = models.TextField(blank=True)
    contact_postcode = models.CharField(max_length=10, blank=True)
    reference = models.CharField(max_length=12, unique=True, default=new_reference, editable=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.READY)
    business_status = models.CharField(
        max_length=40, choices=BusinessStatus.choices, default=BusinessStatus.QUEUED
    )
    jurisdiction = models.CharField(max_length=10)
    received_on = models.DateField()
    first_due_on = models.DateField()
    due_on = models.DateField(db_index=True)
    extension_reason = models.TextField(blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decision_code = models.CharField(max_length=30, choices=DenialReason.choices, blank=True)
    decision_text = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    amended_version = models.PositiveIntegerField(null=True, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Bumped by every change: a form based on an older value is refused, not merged.
    revision = models.PositiveIntegerField(default=1)

    objects = CorrectionRequestQuerySet.as_manager()

    class Meta:
        ordering = ["due_on", "created_at"]
        indexes = [models.Index(fields=["owner", "status", "due_on"], name="correction_queue")]

    def __str__(self) -> str:
        return f"correction request {self.pk} ({self.business_status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_extended(self) -> bool:
        return self.due_on != self.first_due_on

    @property
    def contact_details(self) -> str:
        """Where the owner should phone or write, as the patient gave it ("" otherwise)."""
        if self.contact_preference == ContactPreference.PHONE:
            return self.contact_phone
        if self.contact_preference == ContactPreference.LETTER:
            return "\n".join(filter(None, [self.contact_address, self.contact_postcode]))
        return ""


class TimelineEvent(AppendOnly):
    """One step in a request's life, as the patient and the owner see it."""

    request = models.ForeignKey(CorrectionRequest, on_delete=models.PROTECT, related_name="timeline")
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=40)
    status = models.CharField(max_length=20)
    business_status = models.CharField(max_length=40)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} on {self.request_id}"


class Message(AppendOnly):
    """The request's conversation (a FHIR Communication each)."""

    request = models.ForeignKey(CorrectionRequest, on_delete=models.PROTECT, related_name="messages")
    # None when an organisation's system wrote it; author_label names who, either way.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    author_label = models.CharField(max_length=200, blank=True)
    from_patient = models.BooleanField()
    body = models.TextField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sent_at", "id"]

    def __str__(self) -> str:
        return f"message on {self.request_id}"


class Statement(AppendOnly):
    """A patient's statement of disagreement, or the owner's rebuttal, shown beside the item."""

    class Kind(models.TextChoices):
        DISAGREEMENT = "disagreement", "Statement of disagreement"
        REBUTTAL = "rebuttal", "Response from the organisation"

    request = models.ForeignKey(CorrectionRequest, on_delete=models.PROTECT, related_name="statements")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # No user when an organisation's system responds over FHIR; the label names it then.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    author_label = models.CharField(max_length=200, blank=True)
    text = models.TextField()
    made_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["made_at", "id"]
        constraints = [models.UniqueConstraint(fields=["request", "kind"], name="one_statement_of_each_kind")]

    def __str__(self) -> str:
        return f"{self.kind} on {self.request_id}"


class DownstreamNotice(AppendOnly):
    """Tells one organisation that an item it read has been corrected: at a patient's
    request, or by its holder after an accuracy check's finding (then the entry is named,
    as one finding may lead its holder to correct more than one item)."""

    request = models.ForeignKey(
        CorrectionRequest, on_delete=models.PROTECT, related_name="notices", null=True, blank=True
    )
    finding = models.ForeignKey(
        "Finding", on_delete=models.PROTECT, related_name="notices", null=True, blank=True
    )
    entry = models.ForeignKey(
        "phr.RecordEntry", on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    organisation = models.ForeignKey(
        "phr.Organisation", on_delete=models.PROTECT, related_name="correction_notices"
    )
    versions_read = models.CharField(max_length=100, help_text="the old versions it read, e.g. '1,2'")
    communication = models.TextField(help_text="the FHIR Communication its system can fetch")
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sent_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "organisation"], name="one_notice_per_org"),
            models.UniqueConstraint(
                fields=["finding", "entry", "organisation"], name="one_finding_notice_per_org"
            ),
            models.CheckConstraint(
                condition=Q(request__isnull=False, finding__isnull=True)
                | Q(request__isnull=True, finding__isnull=False, entry__isnull=False),
                name="notice_about_a_request_or_a_finding",
            ),
        ]

    def __str__(self) -> str:
        return f"notice to {self.organisation_id} about {self.request_id or self.finding_id}"


class SweepMark(AppendOnly):
    """That a reminder or escalation was sent: the sweep sends each one once."""

    request = models.ForeignKey(CorrectionRequest, on_delete=models.PROTECT, related_name="sweep_marks")
    kind = models.CharField(max_length=20)  # "remind-7", "remind-1", "escalate"
    due_on = models.DateField()  # the deadline it was about: an extension earns new reminders
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request", "kind", "due_on"], name="one_mark_per_deadline")
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.request_id}"


class SweepRun(models.Model):
    """A day's run of the deadline sweep. Beat asks often whether one is due; this row
    makes it once a day, whenever beat was (re)started, and lets a run that died half
    way be taken over (the sweep itself sends each reminder once: SweepMark)."""

    day = models.DateField(unique=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"deadline sweep of {self.day}"


class CheckOutcome(models.TextChoices):
    LOOKS_RIGHT = "looks_right", "This looks right"
    SOMETHING_WRONG = "something_wrong", "Something is wrong"


class RecordCheck(models.Model):
    """That the patient looked at one version of one item of their record and said
    whether it looks right. A check is of a version: when the item changes, it needs a
    new look (accuracy.record_check). What a patient marked is theirs alone: IG sees
    only totals."""

    patient = models.ForeignKey("phr.Patient", on_delete=models.PROTECT, related_name="record_checks")
    entry = models.ForeignKey("phr.RecordEntry", on_delete=models.PROTECT, related_name="checks")
    version = models.PositiveIntegerField()
    outcome = models.CharField(max_length=20, choices=CheckOutcome.choices)
    checked_at = models.DateTimeField(db_index=True)
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["checked_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "entry", "version"], name="one_check_per_item_version")
        ]

    def __str__(self) -> str:
        return f"{self.outcome} for entry {self.entry_id} version {self.version}"


class Finding(models.Model):
    """What an accuracy check found in a patient's record (accuracy.checks): keyed by
    its rule and the entry versions it is about, so that running the checks again finds
    it, never a second copy, and a later version that fixes the problem resolves it (the
    engine marks it resolved when the rule no longer finds it)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved by a later version"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    key = models.CharField(max_length=64, unique=True)
    rule = models.CharField(max_length=60, db_index=True)
    kind = models.CharField(max_length=20)
    severity = models.CharField(max_length=10)
    audience = models.CharField(max_length=10)
    patient = models.ForeignKey("phr.Patient", on_delete=models.PROTECT, related_name="findings")
    explanation = models.TextField()  # the rule's sentence, in plain words
    says = models.JSONField(default=dict)  # entry id -> what that holder's copy says
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    found_at = models.DateTimeField(db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-found_at", "id"]
        indexes = [models.Index(fields=["patient", "status"], name="findings_of_patient")]

    def __str__(self) -> str:
        return f"{self.rule} for patient {self.patient_id} ({self.status})"


class FindingEntry(models.Model):
    """One entry version a finding is about, and its holder (for the holder's list)."""

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="implicated")
    entry = models.ForeignKey("phr.RecordEntry", on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField()
    owner = models.ForeignKey("phr.Organisation", on_delete=models.PROTECT, related_name="+")
    # The category that version had: what the finding quotes of it follows that version's
    # rule (consent.policy.shown_versions). Blank (rows from before) counts as none shared.
    category = models.CharField(max_length=20, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["finding", "entry"], name="one_row_per_finding_entry")]
        indexes = [models.Index(fields=["owner", "finding"], name="findings_of_holder")]

    def __str__(self) -> str:
        return f"entry {self.entry_id} v{self.version} of finding {self.finding_id}"


class FindingResponse(AppendOnly):
    """Someone's answer to a finding: the patient ("This is right", or they asked the
    holders to correct it) or a holder's clinician ("Checked, correct", or amended).
    A response closes the finding for that side (the patient, or that holder); the note
    is for the other side to read."""

    class Outcome(models.TextChoices):
        RIGHT = "right", "This is right"
        ASKED = "asked", "Asked the holders to correct it"
        CHECKED = "checked", "Checked, correct"
        AMENDED = "amended", "Amended"

    finding = models.ForeignKey(Finding, on_delete=models.PROTECT, related_name="responses")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    by_label = models.CharField(max_length=200)
    organisation = models.ForeignKey(
        "phr.Organisation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )  # None: the patient's side
    note = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.outcome} on finding {self.finding_id}"


class PendingCheck(models.Model):
    """A patient whose record changed since it was last checked: written in the same
    transaction as the change, so that a change is never left unchecked when the task
    queue is down (accuracy.tasks.check_pending takes them, a batch at a time, and the
    beat runs it every minute as well)."""

    patient = models.OneToOneField(
        "phr.Patient", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    since = models.DateTimeField()

    def __str__(self) -> str:
        return f"check patient {self.patient_id}"
