"""People who sign in, the roles they hold, and what ties them to organisations and to
a patient's record."""

import uuid

from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.urls import Resolver404, resolve
from django.utils import timezone


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class Role(models.TextChoices):
    PATIENT = "patient", "Patient"
    CLINICIAN = "clinician", "Clinician or records staff"
    IG_OFFICER = "ig_officer", "Information governance officer"


class User(AbstractUser):
    """A person who signs in with an email address; what they may do follows from role."""

    username = None
    email = models.EmailField("email address", unique=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.PATIENT)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    def __str__(self) -> str:
        return self.email


class Membership(models.Model):
    """A member of staff acting for an organisation of the network."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey("phr.Organisation", on_delete=models.PROTECT, related_name="memberships")
    job_title = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation"], name="one_membership_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.user} at {self.organisation}"


class PatientLink(models.Model):
    """A verified tie between an account and the record of the person it belongs to."""

    class Method(models.TextChoices):
        LINKAGE_KEY = "linkage_key", "Practice linkage key"
        NHS_LOGIN = "nhs_login", "NHS login"
        DEMO = "demo", "Demo data"

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="patient_link")
    patient = models.ForeignKey("phr.Patient", on_delete=models.PROTECT, related_name="accounts")
    method = models.CharField(max_length=20, choices=Method.choices)
    verified_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} -> patient {self.patient_id}"


# The pages a notification may link to, by URL name: what the link says, and the caption
# staff see above such a message (a patient's caption is the kind's own words).
NOTIFICATION_TARGETS = {
    "record:correction": ("Open your correction request", ""),
    "sharing:access_log": ("See the emergency access in who has looked at your record", ""),
    # A page's address with a fragment may have words of its own (view name#fragment).
    "sharing:access_log#looks": ("See who has looked at your record", ""),
    "workspace:request": ("Open the correction request", "Correction request"),
    "clinician:entry": ("Open the corrected item", "An item your organisation saw"),
    "ig:corrections": ("Open the correction requests", "Overdue correction request"),
    "ig:review": ("Review the emergency access", "Emergency access to review"),
}
STAFF_CAPTIONS = {
    "access": "Who has looked",
    "break_glass": "Emergency access",
    "consent": "Sharing choices",
    "correction": "Corrections",
    "general": "Message",
}


class Notification(models.Model):
    """A message in a user's portal inbox, and the outbox row for its email copy: the row
    is written in the transaction of the action it tells of, so the email can never be
    lost, only late (see accounts.outbox)."""

    class Email(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENDING = "sending", "Being sent"
        SENT = "sent", "Sent"
        NOT_NEEDED = "not_needed", "No email address"
        FAILED = "failed", "Gave up after repeated failures"

    class Kind(models.TextChoices):
        ACCESS = "access", "Who has looked at your record"
        BREAK_GLASS = "break_glass", "Emergency access to your record"
        CONSENT = "consent", "Your sharing choices"
        CORRECTION = "correction", "Your correction request"
        GENERAL = "general", "Message"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.GENERAL)
    title = models.CharField(max_length=200)
    body = models.TextField()
    # The portal page the message is about (a path from reverse(): ids only, never a
    # name or NHS number), opened from the inbox and, as a full address, from the email.
    link = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_state = models.CharField(max_length=12, choices=Email.choices, default=Email.PENDING)
    # Sent with every attempt (as the Message-ID), so that a send repeated after a crash
    # is the same message to the mail relay and the mailbox, not a second one.
    email_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["email_state", "created_at"], name="notification_outbox")]

    def __str__(self) -> str:
        return f"{self.title} for {self.user}"

    def _target(self) -> tuple[str, str] | None:
        if not self.link:
            return None
        path, _, fragment = self.link.partition("#")
        try:
            match = resolve(path)
        except Resolver404:
            return None
        return (
            NOTIFICATION_TARGETS.get(f"{match.view_name}#{fragment}")
            or NOTIFICATION_TARGETS.get(match.view_name)
            or ("Open the page this message is about", "")
        )

    @property
    def link_words(self) -> str:
        """What the link to the page the message is about says ("" when there is none)."""
        target = self._target()
        return target[0] if target else ""

    @property
    def staff_caption(self) -> str:
        """The caption above the message for staff: what it is about, not "Your ..."."""
        target = self._target()
        return (target[1] if target else "") or STAFF_CAPTIONS.get(self.kind, "Message")


class LinkageKey(models.Model):
    """A practice-issued key that lets one account be linked to one patient's record.

    The organisation that holds the patient's record prints it in a letter: an account
    id, a passphrase and its ODS code. Only a hash of the passphrase is kept. A key is
    used once, expires, and locks after too many wrong tries.
    """

    organisation = models.ForeignKey(
        "phr.Organisation", on_delete=models.PROTECT, related_name="linkage_keys"
    )
    patient = models.ForeignKey("phr.Patient", on_delete=models.PROTECT, related_name="linkage_keys")
    account_id = models.CharField("account ID", max_length=16, unique=True)
    passphrase_hash = models.CharField(max_length=256)
    issued_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="linkage_keys_issued"
    )
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="linkage_keys_used"
    )
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    locked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return f"linkage key {self.account_id} from {self.organisation_id}"

    def is_expired(self, now=None) -> bool:
        return (now or timezone.now()) >= self.expires_at

    @property
    def formatted_account_id(self) -> str:
        """The account id in groups of four, as printed in the letter."""
        return "-".join(self.account_id[i : i + 4] for i in range(0, len(self.account_id), 4))


class AccessAlertPreference(models.Model):
    """How a patient wants to be told that an organisation read their record (EHDS
    Art. 9): by default only of emergency access, which is always told
    (consent.services.declare_break_glass); each time, or once a day, on request."""

    class Mode(models.TextChoices):
        EACH_TIME = "each_time", "Tell me each time an organisation looks at my record"
        DAILY = "daily", "Send me one message a day listing who looked"
        EMERGENCY_ONLY = "emergency_only", "Only tell me about emergency access (recommended)"

    patient = models.OneToOneField("phr.Patient", on_delete=models.CASCADE, related_name="access_alerts")
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.EMERGENCY_ONLY)
    # Looks before the choice was made are never alerted: "each time" starts now.
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"access alerts for patient {self.patient_id}: {self.mode}"


class AccessAlertCursor(models.Model):
    """The one row that says how far the access alert scan has read the audit trail: the
    last sealed block processed (audit.ledger), moved in the transaction that sent the
    alerts, so a scan run twice (or by two workers) tells nobody twice. By block, not by
    event number: writers take numbers without a shared lock, so a lower number can
    commit after a higher one, but it is sealed in a later block."""

    last_seq = models.BigIntegerField(default=0)  # before the ledger; kept, no longer read
    last_block = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"access alerts read the audit trail up to block {self.last_block}"


class AccessAlert(models.Model):
    """An "each time" alert sent: the look it told of, so that later looks by the same
    organisation within the hour are folded into it rather than sent again."""

    patient = models.ForeignKey("phr.Patient", on_delete=models.CASCADE, related_name="+")
    organisation = models.ForeignKey("phr.Organisation", on_delete=models.CASCADE, related_name="+")
    looked_at = models.DateTimeField()
    notified_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["patient", "organisation", "looked_at"], name="access_alert_recent")]

    def __str__(self) -> str:
        return f"alert to patient {self.patient_id} of a look by {self.organisation_id}"


class AccessDigestRun(models.Model):
    """A day's run of the access digest. Beat asks often whether one is due; this row
    makes it once a day, and lets a run that died half way be taken over (each patient's
    digest is sent once: AccessDigestSent)."""

    day = models.DateField(unique=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"access digest of {self.day}"


class AccessDigestSent(models.Model):
    """One patient's digest of the looks on one day, sent: at most one per patient per day."""

    patient = models.ForeignKey("phr.Patient", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["patient", "day"], name="one_access_digest_a_day")]

    def __str__(self) -> str:
        return f"access digest of {self.day} for patient {self.patient_id}"


class ProxyAccess(models.Model):
    """One person's permission to act for a patient: who, in what relationship, what they
    may do, until when and why (time- and purpose-limited, as the EHDS regulation's
    Art. 4 asks). Given by the patient, or by their practice for a child or for an adult
    who lacks capacity; ended by the patient, the practice, the proxy, or its date.
    consent.proxies holds the rules; the policy reads what an active one allows."""

    class Relationship(models.TextChoices):
        CHILD = "child", "Parent or guardian of a child under 11"
        YOUNG_PERSON = (
            "young_person",
            "Parent or guardian of a young person aged 11 to 15, agreed by the practice",
        )
        CHOSEN = "chosen", "Someone the patient chose to act for them"
        LASTING_POWER = (
            "lasting_power",
            "Lasting power of attorney for health and welfare, checked by the practice",
        )

    patient = models.ForeignKey("phr.Patient", on_delete=models.PROTECT, related_name="proxies")
    proxy = models.ForeignKey(User, on_delete=models.PROTECT, related_name="proxy_grants")
    relationship = models.CharField(max_length=20, choices=Relationship.choices)
    may_see = models.BooleanField(default=True)
    may_correct = models.BooleanField(default=False)
    may_share = models.BooleanField(default=False)
    reason = models.TextField()
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    granted_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    granted_by_organisation = models.ForeignKey(
        "phr.Organisation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    granted_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    end_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-granted_at", "-pk"]
        indexes = [models.Index(fields=["proxy", "ended_at"], name="proxy_grants_of_user")]

    def __str__(self) -> str:
        return f"{self.proxy} for patient {self.patient_id} ({self.relationship})"

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return self.ended_at is None and self.starts_at <= now < self.ends_at

    @property
    def rights(self) -> frozenset[str]:
        """What the proxy may do, as the policy names it: see, correct, share."""
        return frozenset(
            right
            for right, given in (
                ("see", self.may_see),
                ("correct", self.may_correct),
                ("share", self.may_share),
            )
            if given
        )
