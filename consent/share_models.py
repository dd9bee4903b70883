"""Share links: a patient's time-limited, passcode-protected link to their own record,
issued as a SMART Health Link. Only hashes of the link and passcode are stored, and the
link's file key only sealed under a key derived from SECRET_KEY: none of them can be
recovered from a copy of the database alone."""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

MAX_DAYS = 30
MAX_FAILED_ATTEMPTS = 5


def token_hash(token: str) -> str:
    """How a link's token is stored and looked up: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class ShareLinkQuerySet(models.QuerySet):
    def of_patient(self, patient_id) -> ShareLinkQuerySet:
        return self.filter(patient_id=patient_id)

    def usable(self, now: datetime | None = None) -> ShareLinkQuerySet:
        """Links that still open: not revoked, not locked, not expired."""
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True, locked_at__isnull=True, expires_at__gt=now)


class ShareLink(models.Model):
    class Scope(models.TextChoices):
        SUMMARY = "summary", "A summary"
        FULL = "full", "My whole record"
        ITEMS = "items", "Items I chose"

    patient = models.ForeignKey("phr.Patient", on_delete=models.PROTECT, related_name="share_links")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    scope = models.CharField(max_length=10, choices=Scope.choices)
    label = models.CharField(max_length=60)
    token_hash = models.CharField(max_length=64, unique=True)
    passcode_hash = models.CharField(max_length=128)
    # What the patient chose (consent.share_links.released reads them): the sensitivity
    # categories a summary or whole record carries, and the items an "items" link carries.
    categories = models.JSONField(default=list, blank=True)
    item_ids = models.JSONField(default=list, blank=True)
    # The SMART Health Link's 32-byte file key, sealed (consent.share_links.seal_key).
    sealed_key = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    locked_at = models.DateTimeField(null=True, blank=True)
    view_count = models.PositiveIntegerField(default=0)
    last_viewed_at = models.DateTimeField(null=True, blank=True)

    objects = ShareLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"share link {self.pk}: {self.label}"

    def status(self, now: datetime | None = None) -> str:
        """Active, expired, revoked or locked, in the patient's words."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            return "Revoked"
        if self.locked_at is not None:
            return "Locked"
        if self.expires_at <= now:
            return "Expired"
        return "Active"

    def usable(self, now: datetime | None = None) -> bool:
        return self.status(now) == "Active"
