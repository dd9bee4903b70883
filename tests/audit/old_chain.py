"""Events written as the portal wrote them before the ledger (until 2026-12): each chained
to the one before, the head row advanced and sealed, every head witnessed. For the tests
that the old chain still verifies, and that the migration seals it into the first blocks.
"""

from django.db import connection, transaction
from django.utils import timezone

from audit import ledger, witness
from audit.chain import GENESIS, event_hash, head_seal, witness_line
from audit.models import AuditEvent, Block, ChainHead

FIRST_BLOCKS = 20_000  # events per block, as migration audit 0008 sealed them


def write_chained(n: int, **fields) -> list[AuditEvent]:
    """n events at the end of the old chain; call before any ledger event is written."""
    head, _ = ChainHead.objects.get_or_create(pk=1)
    written = []
    for i in range(n):
        event = AuditEvent(
            seq=head.last_seq + 1,
            occurred_at=timezone.now(),
            action="test.old",
            actor_label=f"old writer {i}",
            detail={"i": i},
            prev_hash=head.last_hash,
            **fields,
        )
        event.hash = event_hash(event.prev_hash, event)
        event.save()
        head.last_seq, head.last_hash = event.seq, event.hash
        head.seal = head_seal(head.last_seq, head.last_hash)
        witness.append(witness_line(event.seq, event.hash))
        written.append(event)
    ChainHead.objects.filter(pk=1).update(last_seq=head.last_seq, last_hash=head.last_hash, seal=head.seal)
    if connection.vendor == "postgresql":  # as the migration leaves it: ledger events follow on
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval('audit_event_seq', %s, false)", [head.last_seq + 1])
    return written


def seal_as_the_migration_does() -> None:
    """The chained events in blocks as migrations audit 0008 (which sealed them) and 0011
    (which listed the members on the block) leave them. Its witness lines are written on
    commit: run under django_capture_on_commit_callbacks. (tests/audit/test_migrations.py
    runs the migrations themselves.)"""
    number, prev_hash, last_seq, lines = 0, GENESIS, 0, []
    while rows := list(
        AuditEvent.objects.filter(seq__gt=last_seq).order_by("seq").values_list("seq", "hash")[:FIRST_BLOCKS]
    ):
        number += 1
        fields = ledger.block_fields(number, prev_hash, [mac for _, mac in rows], timezone.now())
        block = Block.objects.create(**fields, **ledger.members_fields([seq for seq, _ in rows]))
        prev_hash, last_seq = block.hash, rows[-1][0]
        lines.append(ledger.witness_line(number, block.hash))
    transaction.on_commit(lambda: [witness.append(line) for line in lines])
