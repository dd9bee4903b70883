"""The audit trail: append-only events, sealed into hash-linked blocks (audit.ledger).

Rows are never updated or deleted: the model refuses, and on PostgreSQL a trigger
refuses too. Each event carries an HMAC of its own content, written with the event in
the caller's transaction and with no lock shared between writers. A sealer then closes a
block every few seconds: its members are the events committed since, its Merkle root is
over their MACs, and it names the block before it. The key is not in the database, so
an event cannot be edited or forged unseen; a block's root and size catch an event
deleted or added after sealing; and the newest block's hash goes to a witness outside
the database, which catches a cut tail. Events written before the ledger (until
2026-12) were chained one to the next (prev_hash), and were sealed into the first blocks.
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
    # Indexed below, once: db_index=True would add a second, pattern_ops index on
    # PostgreSQL, one more to write with every event.
    action = models.CharField(max_length=60)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_constraint=False,
        db_index=False,
    )
    actor_label = models.CharField(max_length=200, blank=True)
    organisation = models.ForeignKey(
        "phr.Organisation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_constraint=False,
        db_index=False,
    )
    patient = models.ForeignKey(
        "phr.Patient", on_delete=models.PROTECT, null=True, blank=True, db_constraint=False, db_index=False
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
        db_index=False,  # events are found by patient, actor or organisation, then joined to their set
    )
    inline_entries = EntryRefsField(default=list, blank=True, db_column="entries")
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PERMIT)
    purpose = models.CharField(max_length=40, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    # Before the ledger: the hash of the event before this one, and this event's hash
    # over both. Since: "" and the event's own MAC (audit.ledger.event_mac).
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["patient", "occurred_at"], name="audit_patient_time"),
            models.Index(fields=["actor", "occurred_at"], name="audit_actor_time"),
            models.Index(fields=["organisation", "occurred_at"], name="audit_org_time"),
            # The three keys above lead these indexes, so none has an index of its own:
            # every index is written with every event.
            models.Index(fields=["action"], name="audit_action"),
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


class Block(AppendOnly):
    """Events sealed together: their Merkle root, how many, and the hash of the block
    before, all under this block's hash; its seal is an HMAC of that hash with the key.

    ``hash`` is SHA-256 over the header (audit.ledger.block_header), so anyone holding a
    block's hash (a witness, an inclusion proof) can check the header without the key.

    ``members`` lists the sequence numbers of its events, in order, one space apart:
    never a range, since a transaction that commits late joins a later block. The first
    and last of them, and the time of sealing, find an event's block for its proof; that
    each event is in exactly one block is checked by verify_audit."""

    number = models.PositiveBigIntegerField(unique=True)
    sealed_at = models.DateTimeField(db_index=True)
    size = models.PositiveIntegerField()
    root = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    seal = models.CharField(max_length=64)
    members = models.TextField(default="")
    first_seq = models.BigIntegerField(default=0)
    last_seq = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"audit block {self.number} ({self.size} events)"

    @property
    def member_seqs(self) -> list[int]:
        return [int(seq) for seq in self.members.split()]


class Unsealed(models.Model):
    """An event written and not yet sealed, with what the sealer needs of it (its
    number, its MAC, its time): inserted with the event, in the same statement, and
    removed by the sealer in the transaction that seals it. The sealer reads this small
    table, never the trail; an event that commits late simply joins the next block. Not
    append-only (the sealer empties it): a row removed or changed behind the sealer's
    back leaves its event unsealed or sealed wrongly, which verify_audit reports."""

    seq = models.BigIntegerField(primary_key=True)
    mac = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"event #{self.seq}, not yet sealed"


class ChainHead(models.Model):
    """Before the ledger (kept, no longer written): the single row that serialised
    writers, with the last sequence number and hash, sealed with an HMAC over both
    (audit.chain.head_seal), so that database access alone could not set it back to a
    kept event after deleting the ones behind it."""

    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    seal = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"audit chain head at #{self.last_seq}"
