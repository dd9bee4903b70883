"""Migration audit 0011 moves each block's members onto the block's own row and the
pending events into the Unsealed table: a trail sealed the old way (a member row per
event) still verifies after it, the event still waiting is sealed next, and the
migration runs backwards too."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit import ledger
from audit.chain import GENESIS
from audit.ledger import event_mac, seal, verify
from audit.models import AuditEvent, Block, Unsealed

BEFORE = [("audit", "0010_partitioned_by_month")]
FIRST_SEQ = 7_000_001  # clear of the numbers the other tests' events take


def migrate(target) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)


def latest() -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return [key for key in executor.loader.graph.leaf_nodes() if key[0] == "audit"]


def write_the_old_way(apps, sealed: int, waiting: int) -> list[AuditEvent]:
    """Events as the ledger wrote them before 0011: a PendingSeal row each, then a
    block with a BlockMember row per event for the first ``sealed`` of them."""
    pending, member, block_model = (
        apps.get_model("audit", name) for name in ("PendingSeal", "BlockMember", "Block")
    )
    events = []
    for i in range(sealed + waiting):
        event = AuditEvent(
            seq=FIRST_SEQ + i,
            occurred_at=timezone.now(),
            action="test.event",
            actor_label=f"w{i}",
            prev_hash="",
        )
        event.hash = event_mac(event)
        event.save()
        pending.objects.create(event_id=event.pk)
        events.append(event)
    block = block_model.objects.create(
        **ledger.block_fields(1, GENESIS, [e.hash for e in events[:sealed]], timezone.now())
    )
    for event in reversed(events[:sealed]):  # the order rows are stored in does not matter
        member.objects.create(block_id=block.pk, event_id=event.pk)
        pending.objects.filter(event_id=event.pk).delete()
    return events


@pytest.mark.django_db(transaction=True)
def test_members_move_onto_their_blocks_and_the_trail_still_verifies():
    forward = latest()
    migrate(BEFORE)
    try:
        old_apps = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        events = write_the_old_way(old_apps, sealed=4, waiting=1)
    finally:
        migrate(forward)

    block = Block.objects.get()
    assert block.member_seqs == [e.seq for e in events[:4]]
    assert (block.first_seq, block.last_seq) == (events[0].seq, events[3].seq)
    assert list(Unsealed.objects.values_list("seq", "mac")) == [(events[4].seq, events[4].hash)]
    report = verify()
    assert (report.blocks, report.pending, report.problem) == (1, 1, None)

    # Backwards: the members and the waiting event go back to their rows; then forwards.
    migrate(BEFORE)
    try:
        old_apps = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        member = old_apps.get_model("audit", "BlockMember")
        assert sorted(member.objects.values_list("event_id", flat=True)) == sorted(e.pk for e in events[:4])
        assert list(
            old_apps.get_model("audit", "PendingSeal").objects.values_list("event_id", flat=True)
        ) == [events[4].pk]
    finally:
        migrate(forward)

    assert seal().member_seqs == [events[4].seq]
    report = verify()
    assert (report.blocks, report.pending, report.problem) == (2, 0, None)
