"""What the audit ledger's parts share, and the old hash chain's check.

Until 2026-12 every event was chained to the one before it: its hash an HMAC over the
previous event's hash and its own content, writers serialised on one head row
(ChainHead), every committed head written to the witness. Those events were sealed into
the ledger's first blocks (migration audit 0008); this module still checks their links,
their head and the witness's heads, as before. New events are audit.ledger's.
"""

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC
from functools import partial

from django.conf import settings
from django.db import connection, transaction

from . import witness
from .models import AuditEvent, ChainHead, DisclosureSet

GENESIS = "0" * 64
CONTENT_FIELDS = (
    "seq",
    "occurred_at",
    "action",
    "actor_id",
    "actor_label",
    "organisation_id",
    "patient_id",
    "entries",
    "outcome",
    "purpose",
    "reason",
    "source_address",
    "detail",
)


def _key() -> bytes:
    return (settings.AUDIT_HMAC_KEY or settings.SECRET_KEY).encode()


def canonical(event: AuditEvent, fields=CONTENT_FIELDS) -> bytes:
    """The event's content as bytes that do not depend on the database's round trip.

    An event that names a DisclosureSet is hashed with the set's digest in place of the
    list of entries; events written before sets existed keep their inline list."""
    content = {}
    for name in fields:
        value = getattr(event, "inline_entries" if name == "entries" else name)
        if name == "occurred_at":
            value = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        elif name == "patient_id" and value is not None:
            value = str(value).replace("-", "")
        content[name] = value
    if event.disclosure_id is not None:
        del content["entries"]
        content["disclosure"] = event.disclosure_id
    return json.dumps(content, sort_keys=True, separators=(",", ":"), default=str).encode()


def disclosure_digest(refs_text: str) -> str:
    return hashlib.sha256(refs_text.encode()).hexdigest()


def disclosure_set(refs) -> str | None:
    """The digest of the set of these entry references, stored once: the first time a set
    is disclosed it is written, every later time only looked up (a read of 5,000
    entries sends 64 characters, not 190 kB)."""
    if not refs:
        return None
    text = " ".join(sorted(set(refs)))
    digest = disclosure_digest(text)
    if digest in _sets_seen:
        return digest
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM audit_disclosureset WHERE digest = %s", [digest])
        if cursor.fetchone() is None:
            cursor.execute(
                "INSERT INTO audit_disclosureset (digest, refs, count) VALUES (%s, %s, %s)"
                " ON CONFLICT (digest) DO NOTHING",
                [digest, text, text.count(" ") + 1],
            )
    transaction.on_commit(partial(_remember, digest))
    return digest


# Sets this process has seen committed: sets are never changed or removed, so the next
# disclosure of the same set needs no round trip. Remembered only once the transaction
# that looked (or inserted) commits; bounded, and emptied when full.
_sets_seen: set[str] = set()
SETS_REMEMBERED = 50_000


def _remember(digest: str) -> None:
    if len(_sets_seen) >= SETS_REMEMBERED:
        _sets_seen.clear()
    _sets_seen.add(digest)


def event_hash(prev_hash: str, event: AuditEvent) -> str:
    return hmac.new(_key(), prev_hash.encode() + b"\n" + canonical(event), hashlib.sha256).hexdigest()


def keyed(data: bytes) -> str:
    """An HMAC-SHA256 with the audit key, which is not in the database."""
    return hmac.new(_key(), data, hashlib.sha256).hexdigest()


def _keyed(text: str) -> str:
    return keyed(text.encode())


def head_seal(seq: int, head_hash: str) -> str:
    """The head's HMAC over its sequence number and hash: without the key, the head
    cannot be set back to a kept event after the events behind it are deleted."""
    return _keyed(f"head {seq} {head_hash}")


def witness_line(seq: int, head_hash: str, database: str | None = None) -> str:
    database = database or witness.database_id()
    return f"{database} {seq} {head_hash} {_keyed(f'witness {database} {seq} {head_hash}')}"


def disclosure_set_matches(digest: str) -> bool:
    stored = DisclosureSet.objects.filter(pk=digest).values_list("refs", "count").first()
    if stored is None:
        return False
    refs, count = stored
    return disclosure_digest(refs) == digest and len(refs.split()) == count


@dataclass
class Break:
    """The first problem found: at an event (by sequence number) or at a block."""

    seq: int
    problem: str
    block: int | None = None

    def __str__(self) -> str:
        if self.block is not None:
            return f"audit block {self.block}: {self.problem}"
        return f"audit event #{self.seq}: {self.problem}"


def verify_chain(batch_size: int = 5000) -> tuple[int, Break | None]:
    """Walk the old chain (the events written before the ledger) from the start;
    return how many events were checked and the first break: an event whose content
    changed (edited), a gap in the sequence (deleted), an event whose hash does not
    follow from its predecessor (inserted or re-chained), a head that does not name the
    last event with the key's seal, or a head the witness outside the database saw that
    the chain no longer holds (the tail was cut)."""
    expected_prev, expected_seq, checked = GENESIS, 1, 0
    last_seq = 0
    sound_sets: set[str] = set()  # disclosure sets whose content matches their digest
    while True:
        events = list(
            AuditEvent.objects.filter(seq__gt=last_seq).exclude(prev_hash="").order_by("seq")[:batch_size]
        )
        if not events:
            break
        for event in events:
            if event.seq != expected_seq:
                return checked, Break(expected_seq, f"missing: deleted before #{event.seq}")
            if event.prev_hash != expected_prev:
                return checked, Break(
                    event.seq, "does not follow the event before it: inserted or re-chained"
                )
            if not hmac.compare_digest(event.hash, event_hash(event.prev_hash, event)):
                return checked, Break(event.seq, "content does not match its hash: edited or forged")
            if event.disclosure_id is not None and event.disclosure_id not in sound_sets:
                if not disclosure_set_matches(event.disclosure_id):
                    return checked, Break(event.seq, "the entries it names were changed or removed")
                sound_sets.add(event.disclosure_id)
            expected_prev, expected_seq, checked = event.hash, event.seq + 1, checked + 1
            last_seq = event.seq
    return checked, _head_problem(checked, expected_prev) or _witness_problem(batch_size)


def _head_problem(checked: int, last_hash: str) -> Break | None:
    head = ChainHead.objects.filter(pk=1).first()
    if head is None:
        return Break(checked + 1, "missing: the chain head was deleted") if checked else None
    if head.last_seq != checked:
        return Break(checked + 1, f"missing: the chain head records #{head.last_seq}, deleted from the end")
    if head.last_hash != last_hash:
        return Break(checked, "the chain head does not name this event: re-chained")
    if checked and not hmac.compare_digest(head.seal, head_seal(head.last_seq, head.last_hash)):
        return Break(
            checked + 1, "missing: the chain head was set back without the key, events deleted from the end"
        )
    return None


def _witness_problem(batch_size: int) -> Break | None:
    """The first (lowest) event the witness saw as a head that the chain no longer holds
    as it was: deleted from the end, or replaced by events written after a cut."""
    databases = witness.database_ids()
    first: Break | None = None
    seen: list[tuple[int, str]] = []  # not keyed by seq: a cut tail written again repeats one

    def found(problem: Break) -> None:
        nonlocal first
        if first is None or problem.seq < first.seq:
            first = problem

    def compare() -> None:
        held = dict(AuditEvent.objects.filter(seq__in={seq for seq, _ in seen}).values_list("seq", "hash"))
        for seq, seen_hash in seen:
            if seq not in held:
                found(Break(seq, "missing: the witness outside the database saw it, deleted"))
            elif not hmac.compare_digest(held[seq], seen_hash):
                found(Break(seq, "replaced: the witness outside the database saw another event here"))
        seen.clear()

    for number, line in witness.lines():
        parts = line.split(" ")
        if len(parts) == 5 and parts[1] == "block":
            continue  # a sealed block's line: audit.ledger checks those
        if len(parts) == 4 and parts[0] not in databases:
            continue  # another database's chain
        seq = int(parts[1]) if len(parts) == 4 and parts[1].isdigit() else 0
        if seq == 0 or not hmac.compare_digest(line, witness_line(seq, parts[2], parts[0])):
            found(Break(seq, f"the witness's line {number} was not written with the key"))
            continue
        seen.append((seq, parts[2]))
        if len(seen) >= batch_size:
            compare()
    if seen:
        compare()
    return first


def witnessed_heads() -> int:
    """How many heads of this database's old chain the witness holds (for verify_audit)."""
    databases = witness.database_ids()
    return sum(
        1 for _, line in witness.lines() if line.split(" ", 1)[0] in databases and " block " not in line
    )
