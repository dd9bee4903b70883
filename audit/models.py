"""The audit trail: append-only events, each chained to the one before by a keyed hash.

Rows are never updated or deleted: the model refuses, and on PostgreSQL a trigger
refuses too. Each event's hash is an HMAC over the previous event's hash and its own
canonical content, so editing, deleting or inserting a row breaks the chain at that
row, and forging a replacement needs the key, which is not in the database.
"""

from django.conf import settings
from django.db import models


class Outcome(models.TextChoices):
    PERMIT = "permit", "Permitted"
    DENY = "deny", "Denied"


class EntryRefsField(models.TextField):
    """A list of entry references ("<entry uuid hex>:<version>") kept as one line of
    text: writing a read of 1,000 entries as jsonb cost PostgreSQL a parse per event."""

    def from_db_value(self, value, expression, connection):
        return value.split() if value else []

    def to_python(self, value):
        if isinstance(value, list):
            return value
        return value.split() if value else []

    def get_prep_value(self, value):
        if isinstance(value, list | tuple):
            return " ".join(value)
        return value


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Audit events are append-only")

    def delete(self):
        raise TypeError("Audit events are append-only")


class AuditEvent(models.Model):
    """One disclosure or change: who, for which organisation, did what, to whose record."""

    seq = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=60, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, db_constraint=False
    )
    actor_label = models.CharField(max_length=200, blank=True)
    organisation = models.ForeignKey(
        "phr.Organisation", on_delete=models.PROTECT, null=True, blank=True, db_constraint=False
    )
    patient = models.ForeignKey(
        "phr.Patient", on_delete=models.PROTECT, null=True, blank=True, db_constraint=False
    )
    # "<entry uuid hex>:<version>" for each record entry disclosed or changed.
    entries = EntryRefsField(default=list, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PERMIT)
    purpose = models.CharField(max_length=40, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["patient", "occurred_at"], name="audit_patient_time"),
            models.Index(fields=["actor", "occurred_at"], name="audit_actor_time"),
            models.Index(fields=["organisation", "occurred_at"], name="audit_org_time"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} ({self.outcome})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Audit events are append-only")


class ChainHead(models.Model):
    """The single row that serialises writers: the last sequence number and hash."""

    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"audit chain head at #{self.last_seq}"
