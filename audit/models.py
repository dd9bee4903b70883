"""The audit trail. This issue keeps a plain append-only event; the hash chain, the
database trigger and the IG console arrive with the audit issue, behind record()."""

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    class Outcome(models.TextChoices):
        PERMIT = "permit", "Permitted"
        DENY = "deny", "Denied"

    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=60, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    organisation = models.ForeignKey("phr.Organisation", on_delete=models.PROTECT, null=True, blank=True)
    patient = models.ForeignKey("phr.Patient", on_delete=models.PROTECT, null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PERMIT)
    purpose = models.CharField(max_length=40, blank=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.action} at {self.occurred_at:%Y-%m-%d %H:%M:%S} ({self.outcome})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Audit events are append-only")
