"""Events written as the portal wrote them before the ledger (until 2026-12): each chained
to the one before, the head row advanced and sealed, every head witnessed. For the tests
that the old chain still verifies, and that the migration seals it into the first blocks.
"""

import importlib

from django.apps import apps
from django.db import connection
from django.utils import timezone

from audit import witness
from audit.chain import event_hash, head_seal, witness_line
from audit.models import AuditEvent, ChainHead

ledger_migration = importlib.import_module("audit.migrations.0008_ledger")


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
    """Its witness lines are written on commit: run under django_capture_on_commit_callbacks."""
    ledger_migration.seal_the_old_chain(apps, None)
