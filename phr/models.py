"""The shared care record: member organisations, patients, and record entries that keep
their data owner and every version ever received or amended."""

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from audit.models import AppendOnly, ImmutableQuerySet

from .nhs_number import is_valid_nhs_number


class OrganisationKind(models.TextChoices):
    GP_PRACTICE = "gp_practice", "GP practice"
    ACUTE_TRUST = "acute_trust", "Acute trust"
    MENTAL_HEALTH_TRUST = "mental_health_trust", "Mental health trust"
    COMMUNITY_SERVICES = "community_services", "Community services"
    SOCIAL_CARE = "social_care", "Social care"
    AMBULANCE = "ambulance", "Ambulance service"
    OTHER = "other", "Other"


class Category(models.TextChoices):
    """Sensitivity categories a patient can share or withhold separately."""

    GENERAL = "general", "General"
    MENTAL_HEALTH = "mental_health", "Mental health"
    SEXUAL_HEALTH = "sexual_health", "Sexual health"
    SOCIAL_CARE = "social_care", "Social care"
    SAFEGUARDING = "safeguarding", "Safeguarding"
    ASSISTED_CONCEPTION = "assisted_conception", "Assisted conception"
    GENDER_IDENTITY = "gender_identity", "Gender identity"


class Organisation(models.Model):
    """A member of the network, known by its ODS code, and the data owner of what it sends."""

    ods_code = models.CharField("ODS code", max_length=12, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=30, choices=OrganisationKind.choices, default=OrganisationKind.OTHER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.ods_code})"


def validate_nhs_number(value: str) -> None:
    if not is_valid_nhs_number(value):
        raise ValidationError("%(value)s is not a valid NHS number", params={"value": value})


class Patient(models.Model):
    """One person across the network, matched by NHS number or another configured identifier.

    Its primary key is a random UUID so that no NHS number or name ever appears in a URL.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    nhs_number = models.CharField(
        "NHS number", max_length=10, unique=True, null=True, blank=True, validators=[validate_nhs_number]
    )
    family_name = models.CharField(max_length=200, blank=True)
    given_names = models.CharField(max_length=200, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    gender = models.CharField(max_length=20, blank=True)
    deceased = models.BooleanField(default=False)
    postcode = models.CharField(max_length=12, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.display_name or str(self.id)

    @property
    def display_name(self) -> str:
        return " ".join(part for part in (self.given_names, self.family_name) if part)


class PatientIdentifier(models.Model):
    """Any other identifier a member organisation knows the patient by."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="identifiers")
    system = models.CharField(max_length=255)
    value = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["system", "value"], name="identifier_unique")]

    def __str__(self) -> str:
        return f"{self.system}|{self.value}"


class IngestBatchQuerySet(models.QuerySet):
    def takeable(self, *, stale_before) -> "IngestBatchQuerySet":
        """Batches a delivery of the ingest task may run: queued ones, and running ones whose
        worker has shown no sign of life since ``stale_before`` (it was killed)."""
        unattended = Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale_before)
        return self.filter(
            Q(status=IngestBatch.Status.QUEUED) | (Q(status=IngestBatch.Status.RUNNING) & unattended)
        )


class IngestBatch(models.Model):
    """One call of ingest: every path given together, with its counts and progress."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="batches")
    source = models.CharField(max_length=40, default="command")
    atomic = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    outcome = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The delivery of the ingest task that runs the batch, and when it last showed it was
    # alive: a redelivered message leaves a live run alone and takes over a dead one.
    run_token = models.UUIDField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    objects = IngestBatchQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "ingest batches"

    def __str__(self) -> str:
        return f"ingest batch {self.id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)


class RecordEntryQuerySet(models.QuerySet):
    def of_patient(self, patient: Patient) -> "RecordEntryQuerySet":
        return self.filter(patient=patient)

    def owned_by(self, organisation: Organisation) -> "RecordEntryQuerySet":
        return self.filter(owner=organisation)

    def clinical(self) -> "RecordEntryQuerySet":
        return self.filter(patient__isnull=False)

    def with_time_in_record(self) -> "RecordEntryQuerySet":
        """Annotates ``in_record_since``: when each entry joined the record it is in now,
        its latest re-filing into that record, else its first receipt. A sender cannot
        make an entry older there than the moment it put it there."""
        joined = (
            Refiling.objects.filter(entry=OuterRef("pk"), to_patient=OuterRef("patient"))
            .order_by("-moved_at")
            .values("moved_at")[:1]
        )
        return self.annotate(in_record_since=Coalesce(Subquery(joined), F("first_received_at")))


class RecordEntry(models.Model):
    """The current state of one resource held by one data owner.

    The head row carries the current canonical JSON (served as it is, never re-encoded)
    and the columns pages and searches need. Its history lives in EntryVersion.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="entries")
    resource_type = models.CharField(max_length=64)
    fhir_id = models.CharField(max_length=64)
    # Null for reference data (Organization, Practitioner, Location...) and for items
    # whose patient has not arrived yet; subject_ref lets them be linked when it does.
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="entries"
    )
    subject_ref = models.CharField(max_length=140, blank=True)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.GENERAL)
    # Information about someone other than the patient (a relative, a person who raised a
    # concern), as the sender labelled it: held from the patient until the holder reviews it.
    third_party = models.BooleanField(default=False)
    clinical_status = models.CharField(max_length=40, blank=True)
    entered_in_error = models.BooleanField(default=False)
    display = models.CharField(max_length=255, blank=True)
    clinical_date = models.DateTimeField(null=True, blank=True)
    json = models.TextField()
    content_hash = models.CharField(max_length=64)
    version = models.PositiveIntegerField(default=1)
    first_received_at = models.DateTimeField(auto_now_add=True)
    last_updated_at = models.DateTimeField()

    objects = RecordEntryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "record entries"
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "resource_type", "fhir_id"], name="entry_per_owner_type_id"
            )
        ]
        indexes = [
            models.Index(
                fields=["patient", "resource_type", "clinical_date"], name="entry_patient_type_date"
            ),
            models.Index(fields=["patient", "category"], name="entry_patient_category"),
            models.Index(fields=["owner", "subject_ref"], name="entry_owner_subject"),
            models.Index(fields=["last_updated_at"], name="entry_last_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.resource_type}/{self.fhir_id} held by {self.owner.ods_code}"


class EntryVersionQuerySet(ImmutableQuerySet):
    def filed_under(self, patient) -> "EntryVersionQuerySet":
        """The versions that belong to this patient's record: those filed while the item
        named them, and those sent before the patient was known, under the reference that
        has since linked the item to them. A version filed under another patient (an item
        its owner re-filed) is never among them."""
        return self.filter(
            Q(patient=patient)
            | (
                Q(patient__isnull=True, entry__patient=patient, subject_ref=F("entry__subject_ref"))
                & ~Q(subject_ref="")
            )
        )


class EntryVersion(AppendOnly):
    """One version of an entry exactly as it was received or amended; never changed."""

    class Source(models.TextChoices):
        INGEST = "ingest", "Received from the data owner"
        CORRECTION = "correction", "Amended after a correction request"

    entry = models.ForeignKey(RecordEntry, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    json = models.TextField()
    content_hash = models.CharField(max_length=64)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.INGEST)
    batch = models.ForeignKey(
        IngestBatch, on_delete=models.PROTECT, null=True, blank=True, related_name="versions"
    )
    # What produced an amendment, e.g. "correction:<request id>", and who made it.
    produced_by = models.CharField(max_length=80, blank=True, db_default="")
    changed_by = models.CharField(max_length=200, blank=True, db_default="")
    recorded_at = models.DateTimeField()
    # The patient whose record the version was filed under (None: not known yet) and the
    # reference it was filed by. A version belongs to that patient only: an item its
    # owner re-files to someone else never shows them what it said before.
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    subject_ref = models.CharField(max_length=140, blank=True, db_default="")

    objects = EntryVersionQuerySet.as_manager()

    class Meta:
        ordering = ["entry", "number"]
        constraints = [models.UniqueConstraint(fields=["entry", "number"], name="version_number_unique")]

    def __str__(self) -> str:
        return f"version {self.number} of entry {self.entry_id}"


class Refiling(AppendOnly):
    """An entry leaving one patient's record for another's (or for none yet), or joining a
    record after it was first received: the data owner's act. The record it left keeps
    this trace (who moved an item away, and when, never what it said), and the time an
    entry joined a record is known (RecordEntryQuerySet.with_time_in_record)."""

    entry = models.ForeignKey(RecordEntry, on_delete=models.PROTECT, related_name="refilings")
    from_patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="refiled_away"
    )
    to_patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="refiled_in"
    )
    version = models.PositiveIntegerField()  # the entry's version when it moved
    batch = models.ForeignKey(IngestBatch, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    moved_at = models.DateTimeField()

    class Meta:
        ordering = ["moved_at", "pk"]

    def __str__(self) -> str:
        return f"entry {self.entry_id} re-filed at version {self.version}"
