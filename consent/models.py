"""A patient's sharing choices, emergency (break-glass) access, and items an owner
withholds from the patient's own view. Choices are never edited: each change is a new
row, and the current state is derived from the latest row for each scope."""

from django.conf import settings
from django.db import models

from audit.models import AppendOnly, ImmutableQuerySet
from phr.models import Category


class Scope(models.TextChoices):
    NETWORK = "network", "Sharing across the network"
    ORGANISATION = "organisation", "One organisation"
    CATEGORY = "category", "One kind of information"
    ORGANISATION_CATEGORY = "organisation_category", "One kind of information at one organisation"


class Decision(models.TextChoices):
    PERMIT = "permit", "Share"
    DENY = "deny", "Do not share"
    # Withdraws an earlier choice for this scope, so the default applies again.
    DEFAULT = "default", "Back to the default"


# The reason a "do not share" choice carries while the patient checks their record before
# sharing it (accuracy.record_check): an ordinary choice the policy enforces as any other,
# told apart only so that the pages can say why and offer to end it.
PAUSE_REASON = "Paused while I check my record"


class ConsentChoiceQuerySet(ImmutableQuerySet):
    def of_patient(self, patient) -> "ConsentChoiceQuerySet":
        return self.filter(patient=patient)


class ConsentChoice(AppendOnly):
    """One change a patient made to who may see their record; never changed afterwards."""

    patient = models.ForeignKey("phr.Patient", on_delete=models.PROTECT, related_name="consent_choices")
    scope = models.CharField(max_length=24, choices=Scope.choices)
    organisation = models.ForeignKey(
        "phr.Organisation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    category = models.CharField(max_length=20, choices=Category.choices, blank=True)
    decision = models.CharField(max_length=10, choices=Decision.choices)
    until = models.DateTimeField(null=True, blank=True, help_text="the choice lapses at this moment")
    reason = models.CharField(max_length=500, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = ConsentChoiceQuerySet.as_manager()

    class Meta:
        ordering = ["recorded_at", "id"]
        constraints = [
            models.CheckConstraint(
                name="consent_scope_fields",
                condition=(
                    models.Q(scope="network", organisation__isnull=True, category="")
                    | models.Q(scope="organisation", organisation__isnull=False, category="")
                    | (models.Q(scope="category", organisation__isnull=True) & ~models.Q(category=""))
                    | (
                        models.Q(scope="organisation_category", organisation__isnull=False)
                        & ~models.Q(category="")
                    )
                ),
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} ({self.get_scope_display()}) for patient {self.patient_id}"

    @property
    def key(self) -> tuple[str, int | None, str]:
        return (self.scope, self.organisation_id, self.category)


class BreakGlassReason(models.TextChoices):
    EMERGENCY = "emergency", "Emergency care: the patient cannot consent"
    CLINICAL_NEED = "clinical_need", "Urgent clinical need: information needed now to treat safely"
    SAFEGUARDING = "safeguarding", "Safeguarding: risk of serious harm to the patient or others"
    LEGAL = "legal", "Required by law or a court order"


class BreakGlass(AppendOnly):
    """An emergency opening of one patient's record to one clinician, for a short time."""

    clinician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    organisation = models.ForeignKey("phr.Organisation", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey("phr.Patient", on_delete=models.PROTECT, related_name="break_glass")
    reason_code = models.CharField(max_length=20, choices=BreakGlassReason.choices)
    reason_text = models.TextField()
    opened_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-opened_at"]
        verbose_name_plural = "break-glass openings"

    def __str__(self) -> str:
        return f"break-glass {self.pk} on patient {self.patient_id} at {self.opened_at:%Y-%m-%d %H:%M}"


class BreakGlassEnd(AppendOnly):
    """That the clinician who opened an emergency access ended it before its time: the
    opening itself is never changed, and from ended_at the policy treats it as over."""

    glass = models.OneToOneField(BreakGlass, on_delete=models.PROTECT, related_name="ending")
    ended_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"break-glass {self.glass_id} ended at {self.ended_at:%Y-%m-%d %H:%M}"


class BreakGlassReview(AppendOnly):
    """An IG officer's verdict on one break-glass opening."""

    class Verdict(models.TextChoices):
        APPROPRIATE = "appropriate", "Appropriate"
        NOT_APPROPRIATE = "not_appropriate", "Not appropriate"

    break_glass = models.OneToOneField(BreakGlass, on_delete=models.PROTECT, related_name="review")
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    note = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.get_verdict_display()}: break-glass {self.break_glass_id}"


class Withholding(models.Model):
    """An owner keeping one of its items from the patient's own view, with its reason
    (for instance, information that would cause serious harm); IG reviews these."""

    entry = models.ForeignKey("phr.RecordEntry", on_delete=models.PROTECT, related_name="withholdings")
    reason = models.TextField()
    withheld_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    withheld_at = models.DateTimeField(auto_now_add=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-withheld_at"]

    def __str__(self) -> str:
        return f"entry {self.entry_id} withheld from the patient"


class HarmReview(models.Model):
    """The holder's review of an item held from the patient until a clinician has looked
    (consent.policy.awaiting_review: safeguarding and third-party items, and new results
    while settings.RESULTS_REVIEW_DAYS runs): released to the patient, or kept withheld
    with a reason (then a Withholding holds it, as any other)."""

    class Decision(models.TextChoices):
        RELEASED = "released", "Released to the patient"
        WITHHELD = "withheld", "Kept from the patient"

    entry = models.OneToOneField("phr.RecordEntry", on_delete=models.PROTECT, related_name="harm_review")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"review of entry {self.entry_id}: {self.decision}"


from .share_models import ShareLink  # noqa: E402,F401
