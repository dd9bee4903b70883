"""The audit ledger: events written at once, sealed into hash-linked blocks shortly after.

Writing: ``append`` inserts the event, with an HMAC of its own content, in the caller's
transaction, and a row in the small Unsealed table (its number, MAC and time) in the
same statement. Writers share no lock: each takes its sequence number from a database
sequence (PostgreSQL) or under SQLite's single writer lock, which it holds anyway.

Sealing: ``seal`` runs every AUDIT_SEAL_SECONDS, one sealer at a time (a PostgreSQL
advisory lock; SQLite's writer lock). The events pending and committed become one block:
the Merkle root of their MACs in sequence order, their number, the previous block's hash
and the time, hashed together (the block's hash) and sealed with the key. The block lists
its members' numbers, never a range, so a transaction that commits late joins the next
block. The sealer reads and empties the Unsealed table in one statement, and never reads
the trail itself. Each sealed block's hash is written to the witness outside the database.

Checking: ``verify`` (``manage.py verify_audit``) checks every event's MAC (and the old
chain's links), that every block's members give its root and size, that blocks link up
from the first, that every event is in exactly one block, that the witness's blocks are
all still there, and that no event is older than the seal window and still unsealed. An
event is open to undetected removal only in the seconds between its commit and its
block's seal: that is the window the README states.
"""

import hashlib
import hmac
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from . import merkle, partitions, witness
from .chain import (
    CONTENT_FIELDS,
    GENESIS,
    Break,
    canonical,
    disclosure_set,
    disclosure_set_matches,
    event_hash,
    keyed,
    verify_chain,
)
from .models import AuditEvent, Block, Unsealed

logger = logging.getLogger(__name__)
witness_log = logging.getLogger("audit.witness")

_written = threading.local()  # per thread: a web worker's thread serves one request at a time
# The fields an event's MAC covers. Not its sequence number, which the database assigns
# as it inserts; a block's root fixes the order of its events instead.
MAC_FIELDS = tuple(name for name in CONTENT_FIELDS if name != "seq")
# The most events one block holds: a sealer catching up after an outage closes several.
BLOCK_MAX = 20_000
# pg_try_advisory_xact_lock's key for "the sealer": any constant no other code uses.
SEALER_LOCK = 0x4155_4449_5453_4541  # "AUDITSEA"
SEQUENCE = "audit_event_seq"


def event_mac(event: AuditEvent) -> str:
    return keyed(b"event\n" + canonical(event, MAC_FIELDS))


def event_is_sound(event: AuditEvent) -> bool:
    """Whether the event's stored hash follows from its content: its own MAC since the
    ledger, its link in the old chain before it."""
    expected = event_mac(event) if not event.prev_hash else event_hash(event.prev_hash, event)
    return hmac.compare_digest(event.hash, expected)


# --- Writing ----------------------------------------------------------------------------


def append(*, entries=(), **fields) -> AuditEvent:
    """Write one event in the caller's transaction (no savepoint: if the write fails, the
    caller's work fails with it), with no lock shared with other writers."""
    with transaction.atomic(savepoint=False):
        fields["disclosure_id"] = disclosure_set(entries)
        event = AuditEvent(occurred_at=timezone.now(), prev_hash="", **fields)
        event.hash = event_mac(event)
        sql, params = _insert_statement(event)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            event.pk, event.seq = cursor.fetchone()
            if connection.vendor != "postgresql":
                cursor.execute(UNSEALED_INSERT, [event.seq, event.hash, _occurred_at(event)])
    _written.count = events_recorded() + 1
    event._state.adding, event._state.db = False, connection.alias
    return event


def events_recorded() -> int:
    """How many events this thread has written, counted when written, not when committed
    (a commit cut off by a lost connection may have landed). A request compares it before
    and after: an event written means something was disclosed, so the request must not be
    run again (config.reconnect)."""
    return getattr(_written, "count", 0)


_statements: dict[str, tuple[str, list]] = {}


UNSEALED_INSERT = "INSERT INTO audit_unsealed (seq, mac, occurred_at) VALUES (%s, %s, %s)"


def _occurred_at(event: AuditEvent):
    return AuditEvent._meta.get_field("occurred_at").get_db_prep_save(event.occurred_at, connection)


def _insert_statement(event: AuditEvent) -> tuple[str, list]:
    """One prepared statement per database: the event's INSERT (its sequence number from
    the database) and, on PostgreSQL in the same statement, its Unsealed row."""
    vendor = connection.vendor
    if vendor not in _statements:
        fields = [f for f in AuditEvent._meta.concrete_fields if f.name not in ("id", "seq")]
        quote = connection.ops.quote_name
        table = quote(AuditEvent._meta.db_table)
        columns = ", ".join(["seq", *(quote(f.column) for f in fields)])
        values = ", ".join(["%s"] * len(fields))
        if vendor == "postgresql":
            sql = (
                f"WITH added AS (INSERT INTO {table} ({columns}) VALUES (nextval('{SEQUENCE}'), {values})"  # noqa: S608 - names from model metadata
                " RETURNING id, seq, hash, occurred_at) INSERT INTO audit_unsealed (seq, mac, occurred_at)"
                " SELECT seq, hash, occurred_at FROM added RETURNING (SELECT id FROM added), seq"
            )
        else:  # SQLite: one writer at a time holds the database's write lock
            sql = (
                f"INSERT INTO {table} ({columns}) VALUES"  # noqa: S608 - names from model metadata
                f" ((SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}), {values}) RETURNING id, seq"
            )
        _statements[vendor] = (sql, fields)
    sql, fields = _statements[vendor]
    return sql, [f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields]


# --- Sealing ----------------------------------------------------------------------------


def block_header(number: int, prev_hash: str, root: str, size: int, sealed_at: datetime) -> str:
    when = sealed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"audit-block {number} {prev_hash} {root} {size} {when}"


def block_fields(number: int, prev_hash: str, macs: list[str], sealed_at: datetime) -> dict:
    """Every field of a new block over these events' MACs (in sequence order). Used by the
    sealer and by the migration that sealed the old chain."""
    root = merkle.root(macs)
    digest = hashlib.sha256(block_header(number, prev_hash, root, len(macs), sealed_at).encode()).hexdigest()
    return {
        "number": number,
        "prev_hash": prev_hash,
        "root": root,
        "size": len(macs),
        "sealed_at": sealed_at,
        "hash": digest,
        "seal": block_seal(digest),
    }


def block_seal(block_hash: str) -> str:
    return keyed(f"block {block_hash}".encode())


def witness_line(number: int, block_hash: str, database: str | None = None) -> str:
    database = database or witness.database_id()
    mac = keyed(f"witness-block {database} {number} {block_hash}".encode())
    return f"{database} block {number} {block_hash} {mac}"


def _take_sealer_lock() -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite: the transaction began IMMEDIATE and holds the only write lock
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEALER_LOCK])
        return cursor.fetchone()[0]


# The oldest unsealed events, taken out of the Unsealed table as they are read: one
# statement, on its key, whatever the size of the trail. A row whose transaction has not
# committed is not seen, so its event joins a later block.
TAKE_UNSEALED = (
    "DELETE FROM audit_unsealed WHERE seq IN (SELECT seq FROM audit_unsealed ORDER BY seq LIMIT %s)"
    " RETURNING seq, mac"
)


def seal(*, limit: int = BLOCK_MAX) -> Block | None:
    """Seal the events committed since the last block into a new block, and witness it
    once the block commits. None when there is nothing to seal, or when another sealer
    is at work (it will seal them)."""
    with transaction.atomic():
        if not _take_sealer_lock():
            return None
        with connection.cursor() as cursor:
            cursor.execute(TAKE_UNSEALED, [limit])
            rows = sorted(cursor.fetchall())
        if not rows:
            return None
        last = Block.objects.order_by("-number").values_list("number", "hash").first() or (0, GENESIS)
        block = Block(
            **block_fields(last[0] + 1, last[1], [mac for _, mac in rows], timezone.now()),
            **members_fields([seq for seq, _ in rows]),
        )
        block.save()
        transaction.on_commit(partial(_witness, block.number, block.hash))
    return block


def members_fields(seqs: list[int]) -> dict:
    """A block's list of members (sequence numbers, in order) and its first and last."""
    return {"members": " ".join(map(str, seqs)), "first_seq": seqs[0], "last_seq": seqs[-1]}


def seal_all() -> int:
    """Seal until nothing is pending (a sealer catching up); the number of blocks."""
    blocks = 0
    while seal() is not None:
        blocks += 1
    return blocks


def _witness(number: int, block_hash: str) -> None:
    witness.append(witness_line(number, block_hash))
    witness_log.info("audit block %s sealed: %s", number, block_hash)


def sealing_lag(now: datetime | None = None) -> float:
    """Seconds since the oldest event not yet sealed was written: 0 when all are sealed.
    The oldest is the lowest number unsealed (numbers are taken as events are written),
    found on the Unsealed table's key, however far behind the sealer is."""
    oldest = Unsealed.objects.order_by("seq").values_list("occurred_at", flat=True).first()
    if oldest is None:
        return 0.0
    return max(0.0, ((now or timezone.now()) - oldest).total_seconds())


def seal_window() -> timedelta:
    return timedelta(seconds=settings.AUDIT_SEAL_WINDOW_SECONDS)


def sealing_state() -> dict:
    """For /healthz and the IG console: the lag, and whether it is past the window; on
    PostgreSQL, how many months ahead the trail has partitions for (audit.partitions)."""
    lag = sealing_lag()
    state = {"sealing_lag_seconds": round(lag, 1), "late": lag > settings.AUDIT_SEAL_WINDOW_SECONDS}
    months = partitions.months_ready()
    if months is not None:
        state["months_partitioned_ahead"] = months
    return state


class InProcessSealer(threading.Thread):
    """`make run`'s sealer (no Celery beat there): a daemon thread of the web process
    that seals every AUDIT_SEAL_SECONDS. A failed round is logged and tried again."""

    def __init__(self) -> None:
        super().__init__(name="audit-sealer", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(settings.AUDIT_SEAL_SECONDS):
            try:
                seal_all()
            except Exception:  # the next round tries again; nothing is lost, only later
                logger.exception("The audit sealer's round failed")
            finally:
                connection.close()


# --- Proofs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Inclusion:
    """That an event is in a block: its MAC, its place among the block's leaves, the
    sibling hashes to the block's root, and the block's header (whose SHA-256 is the
    block's hash, the value the witness holds)."""

    event_mac: str
    block: int
    block_hash: str
    header: str
    root: str
    index: int
    size: int
    path: list[str]

    def as_json(self) -> dict:
        return {
            "leaf": self.event_mac,
            "block": self.block,
            "blockHash": self.block_hash,
            "blockHeader": self.header,
            "root": self.root,
            "index": self.index,
            "treeSize": self.size,
            "path": self.path,
            "algorithm": "RFC 6962 Merkle tree, SHA-256; the block hash is SHA-256 of the header",
        }


# How far a block's time of sealing may be before the time written on one of its events
# (clocks of different machines): where the search for an event's block starts.
CLOCK_SKEW = timedelta(minutes=5)
BLOCKS_PER_LOOK = 500


def block_of(event: AuditEvent) -> Block | None:
    """The block that sealed the event, or None while it is not sealed. It was sealed
    after the event was written, so the search starts at the first block sealed since
    (on the time-of-sealing index) and looks at a bounded range of block numbers at a
    time, keeping those whose first and last members enclose the event's number: one
    query almost always; never a walk of the whole ledger unless the event is in none."""
    start = (
        Block.objects.filter(sealed_at__gte=event.occurred_at - CLOCK_SKEW)
        .order_by("sealed_at")
        .values_list("number", flat=True)
        .first()
    )
    newest = Block.objects.order_by("-number").values_list("number", flat=True).first()
    while start is not None and start <= newest:
        around = Block.objects.filter(
            number__gte=start,
            number__lt=start + BLOCKS_PER_LOOK,
            first_seq__lte=event.seq,
            last_seq__gte=event.seq,
        ).order_by("number")
        for block in around:
            if event.seq in block.member_seqs:
                return block
        start += BLOCKS_PER_LOOK
    return None


class Altered(ValueError):
    """The event no longer matches its MAC: no proof is given for what it says now."""


def inclusion(event: AuditEvent) -> Inclusion | None:
    """The event's inclusion proof, or None while it is not yet sealed. Altered when the
    event's content no longer matches its MAC: a proof vouches for the leaf, so it is
    given only for an event that is as it was written."""
    if not event_is_sound(event):
        raise Altered(f"audit event #{event.seq} does not match its MAC: edited")
    block = block_of(event)
    if block is None:
        return None
    seqs = block.member_seqs
    found = dict(AuditEvent.objects.filter(seq__in=seqs).values_list("seq", "hash"))
    macs = [found.get(seq, "") for seq in seqs]
    index = seqs.index(event.seq)
    return Inclusion(
        event_mac=event.hash,
        block=block.number,
        block_hash=block.hash,
        header=block_header(block.number, block.prev_hash, block.root, block.size, block.sealed_at),
        root=block.root,
        index=index,
        size=len(macs),
        path=merkle.inclusion_proof(macs, index),
    )


def proof_holds(proof: Inclusion) -> bool:
    """Checks a proof with SHA-256 alone, as a patient holding it would."""
    try:
        root = merkle.root_from_proof(proof.event_mac, proof.index, proof.size, proof.path)
    except ValueError:
        return False
    parts = proof.header.split(" ")
    return (
        root == proof.root
        and len(parts) == 6
        and parts[3] == root
        and parts[4] == str(proof.size)  # the tree the path climbs is the block's, whole
        and hashlib.sha256(proof.header.encode()).hexdigest() == proof.block_hash
    )


# --- Checking ---------------------------------------------------------------------------


@dataclass
class Report:
    """What verify checked, and the first problem it found (None: the trail is intact)."""

    events: int = 0
    blocks: int = 0
    witnessed: int = 0
    pending: int = 0  # written within the seal window and not yet sealed: not a problem
    problem: Break | None = None
    # How many blocks list each sequence number (0, 1, or 2 for "more than one"),
    # filled as the blocks are checked and read as the events are.
    sealed: bytearray = field(default_factory=bytearray, repr=False)


def verify(batch_size: int = 5000, *, head: tuple[int, str] | None = None) -> Report:
    """Check the whole trail: the old chain, every block, every event's MAC and that it
    is in exactly one block (or is within the seal window), and the witness's blocks
    (and ``head``, a block number and hash kept elsewhere, when given)."""
    report = Report()
    report.events, report.problem = verify_chain(batch_size)
    for step in (_check_copies, _check_blocks, _check_events, _check_witness):
        if report.problem is None:
            report.problem = step(report, batch_size)
    if report.problem is None and head is not None:
        report.problem = _check_head(*head)
    return report


# An event's MAC covers its content and time to the microsecond, not its number (which
# the database assigns as it inserts): an exact copy of a row carries a valid MAC. No two
# genuine events share a number, and none share content to the microsecond, so either is
# a copy written behind the portal's back (a replayed read or refusal).
COPIES = (
    "SELECT MIN(seq), '{what}' FROM audit_auditevent GROUP BY {column} HAVING COUNT(*) > 1"
    " ORDER BY MIN(seq) LIMIT 1"
)


def _check_copies(report: Report, batch_size: int) -> Break | None:
    with connection.cursor() as cursor:
        for column, what in (("seq", "another event has its number"), ("hash", "a copy of another event")):
            cursor.execute(COPIES.format(column=column, what=what))
            row = cursor.fetchone()
            if row is not None:
                return Break(row[0], f"{row[1]}: written behind the portal's back")
    return None


def _check_blocks(report: Report, batch_size: int) -> Break | None:
    prev_hash, expected = GENESIS, 1
    while True:
        blocks = list(Block.objects.filter(number__gte=expected).order_by("number")[:50])
        if not blocks:
            return None
        wanted = {seq for block in blocks for seq in block.member_seqs}
        macs = dict(AuditEvent.objects.filter(seq__in=wanted).values_list("seq", "hash")) if wanted else {}
        for block in blocks:
            problem = _block_problem(block, expected, prev_hash, macs)
            if problem is not None:
                return problem
            _count_members(report.sealed, block.member_seqs)
            prev_hash, expected = block.hash, expected + 1
            report.blocks += 1


def _count_members(sealed: bytearray, seqs: list[int]) -> None:
    if seqs and seqs[-1] >= len(sealed):
        sealed.extend(bytes(seqs[-1] + 1 - len(sealed)))
    for seq in seqs:
        sealed[seq] = min(sealed[seq] + 1, 2)


def _block_problem(block: Block, expected: int, prev_hash: str, macs: dict[int, str]) -> Break | None:
    def broken(problem: str, seq: int = 0) -> Break:
        return Break(seq, problem, block=block.number)

    if block.number != expected:
        return Break(0, f"missing: deleted before block {block.number}", block=expected)
    if block.prev_hash != prev_hash:
        return broken("does not follow the block before it: inserted or re-linked")
    header = block_header(block.number, block.prev_hash, block.root, block.size, block.sealed_at)
    if hashlib.sha256(header.encode()).hexdigest() != block.hash:
        return broken("its header does not give its hash: changed")
    if not hmac.compare_digest(block.seal, block_seal(block.hash)):
        return broken("not sealed with the key: forged")
    seqs = block.member_seqs
    if len(seqs) != block.size:
        return broken(f"lists {len(seqs)} events but was sealed with {block.size}: deleted or added")
    if seqs != sorted(set(seqs)) or (seqs and (seqs[0], seqs[-1]) != (block.first_seq, block.last_seq)):
        return broken("its list of events was changed")
    gone = [seq for seq in seqs if seq not in macs]
    if gone:
        return broken(f"an event sealed in it (#{gone[0]}) was deleted", gone[0])
    if merkle.root([macs[seq] for seq in seqs]) != block.root:
        return broken("its events do not give its Merkle root: changed, moved or replaced")
    return None


def _check_events(report: Report, batch_size: int) -> Break | None:
    """Every event: its MAC (the old chain's were checked by verify_chain), and that one
    block holds it, or, within the seal window, none yet. One that is older and in no
    block was written behind the sealer's back, or the sealer is not running."""
    sound_sets: set[str] = set()
    last, late_before = 0, timezone.now() - seal_window()
    while True:
        events = list(AuditEvent.objects.filter(seq__gt=last).order_by("seq")[:batch_size])
        if not events:
            return None
        for event in events:
            last = event.seq
            times = report.sealed[event.seq] if event.seq < len(report.sealed) else 0
            if times > 1:
                return Break(event.seq, "sealed in more than one block")
            if not event.prev_hash:
                if not event_is_sound(event):
                    return Break(event.seq, "content does not match its MAC: edited or forged")
                if event.disclosure_id is not None and event.disclosure_id not in sound_sets:
                    if not disclosure_set_matches(event.disclosure_id):
                        return Break(event.seq, "the entries it names were changed or removed")
                    sound_sets.add(event.disclosure_id)
                report.events += 1
            if times == 0:
                if event.occurred_at < late_before:
                    return Break(
                        event.seq,
                        f"not sealed within the seal window ({settings.AUDIT_SEAL_WINDOW_SECONDS} s):"
                        " written behind the sealer's back, or the sealer is not running",
                    )
                report.pending += 1


def _check_witness(report: Report, batch_size: int) -> Break | None:
    """Every block the witness outside the database saw must still be here, unchanged: a
    tail cut and the head rewound to an older block leaves the witness's newer lines."""
    databases = witness.database_ids()
    seen: list[tuple[int, str]] = []  # not keyed by number: a cut tail sealed again repeats one
    for number, line in witness.lines():
        parts = line.split(" ")
        if len(parts) != 5 or parts[1] != "block" or parts[0] not in databases:
            continue  # the old chain's lines, or another database's
        genuine = parts[2].isdigit() and witness_line(int(parts[2]), parts[3], parts[0])
        if not genuine or not hmac.compare_digest(line, genuine):
            return Break(0, f"the witness's line {number} was not written with the key", block=0)
        seen.append((int(parts[2]), parts[3]))
    held = dict(Block.objects.filter(number__in={n for n, _ in seen}).values_list("number", "hash"))
    for number, block_hash in sorted(seen):
        if number not in held:
            gone = "missing: the witness outside the database saw it, deleted (a cut tail)"
            return Break(0, gone, block=number)
        if not hmac.compare_digest(held[number], block_hash):
            return Break(0, "replaced: the witness outside the database saw another block here", block=number)
    report.witnessed = len(seen)
    return None


def _check_head(number: int, block_hash: str) -> Break | None:
    held = Block.objects.filter(number=number).values_list("hash", flat=True).first()
    if held is None:
        return Break(0, "missing: the head given to verify is not here (a cut tail)", block=number)
    if not hmac.compare_digest(held, block_hash):
        return Break(0, "replaced: not the block whose hash was given", block=number)
    return None
