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


class ImmutableQuerySet(models.QuerySet):
    """For append-only tables (the audit trail, record versions, consent choices, the
    corrections' timeline): no bulk change or removal. Here, in the leaf every app uses."""

    def update(self, **kwargs):
        raise TypeError(f"{self.model.__name__} rows are never changed; add a new row")

    def delete(self):
        raise TypeError(f"{self.model.__name__} rows are never deleted")


class AppendOnly(models.Model):
    """A row written once: the model refuses to save it again or delete it (and on
    PostgreSQL a trigger refuses UPDATE and DELETE too, see the migrations)."""

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError(f"{type(self).__name__} rows are never changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} rows are never deleted")


class DisclosureSet(AppendOnly):
    """One set of entry versions disclosed together, stored once however often it is.

    Reading the same record again discloses the same set: events name it by its SHA-256
    digest (which their keyed hash covers), so a read of 5,000 entries writes 64
    characters, not 5,000 references. The digest is over the references themselves, so
    a changed set no longer matches the events that name it (audit.chain.verify).
    """

    digest = models.CharField(max_length=64, primary_key=True)
    refs = models.TextField()  # "<entry uuid hex>:<version>" sorted, one space apart
    count = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.count} entries ({self.digest[:12]})"


class AuditEvent(AppendOnly):
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
    # The entry versions disclosed or changed ("<entry uuid hex>:<version>"): a shared
    # DisclosureSet since 2026-11; events written before list them inline.
    disclosure = models.ForeignKey(
        DisclosureSet,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="events",
        db_constraint=False,  # like the keys above; audit.chain.verify checks the set is there
    )
    inline_entries = EntryRefsField(default=list, blank=True, db_column="entries")
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PERMIT)
    purpose = models.CharField(max_length=40, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["patient", "occurred_at"], name="audit_patient_time"),
            models.Index(fields=["actor", "occurred_at"], name="audit_actor_time"),
            models.Index(fields=["organisation", "occurred_at"], name="audit_org_time"),
            # FHIR AuditEvent/<id> finds an event by its id, the UUID of its hash's first 32
            # hex digits, as a range (prefix <= hash < prefix + "g"): a plain b-tree serves
            # that on SQLite and PostgreSQL alike, where hash__startswith (LIKE) would need
            # varchar_pattern_ops on PostgreSQL and is never served on SQLite (its LIKE is
            # case-insensitive). Not db_index=True: on PostgreSQL that adds a second,
            # pattern_ops index, one more to write with every audit event.
            models.Index(fields=["hash"], name="audit_hash"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} ({self.outcome})"

    @property
    def entries(self) -> list[str]:
        """The entry references this event names (select_related("disclosure") when
        listing many events)."""
        if self.disclosure_id is not None:
            return self.disclosure.refs.split()
        return self.inline_entries


class ChainHead(models.Model):
    """The single row that serialises writers: the last sequence number and hash, sealed
    with an HMAC over both (audit.chain.head_seal), so that database access alone cannot
    set it back to a kept event after deleting the ones behind it. Setting it back to an
    older head, genuine once, is what the witness outside the database catches."""

    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    seal = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"audit chain head at #{self.last_seq}"
