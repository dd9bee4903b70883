"""Database access alone cannot cut the audit trail's tail unnoticed: every sealed block's
hash is written to a witness outside the database (AUDIT_WITNESS_PATH), which
verify_audit compares with the blocks, and a head kept elsewhere can be given too. The
old chain (events before the ledger) keeps its own head and witness lines."""

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

import audit
from audit.ledger import seal, verify
from audit.models import AuditEvent, Block
from tests.audit.old_chain import seal_as_the_migration_does, write_chained
from tests.audit.tampering import behind_the_apps_back as raw

pytestmark = pytest.mark.django_db


@pytest.fixture
def blocks(django_capture_on_commit_callbacks):
    """Writes and seals blocks as committed transactions would (the witness line is
    written when the seal commits)."""

    def write(count: int, per_block: int = 2) -> list[Block]:
        made = []
        for b in range(count):
            for i in range(per_block):
                audit.record("test.event", actor_label=f"writer {b}.{i}", detail={"i": i})
            with django_capture_on_commit_callbacks(execute=True):
                made.append(seal())
        return made

    return write


def cut_from(number: int) -> None:
    """Delete blocks from this number on, and their events."""
    for block in Block.objects.filter(number__gte=number):
        seqs = block.member_seqs
        raw(f"DELETE FROM audit_auditevent WHERE seq IN ({', '.join(['%s'] * len(seqs))})", seqs)  # noqa: S608
    raw("DELETE FROM audit_block WHERE number >= %s", [number], table="audit_block")


def test_a_cut_tail_is_caught_by_the_witness(blocks):
    blocks(5)
    cut_from(4)

    report = verify()

    assert (report.events, report.blocks) == (6, 3)  # what is left is itself consistent
    assert (
        str(report.problem)
        == "audit block 4: missing: the witness outside the database saw it, deleted (a cut tail)"
    )
    with pytest.raises(CommandError, match="audit block 4"):
        call_command("verify_audit")


def test_a_cut_tail_is_caught_however_the_database_address_is_spelled(blocks, monkeypatch):
    """Found by the outside probe: checking with ``localhost`` in place of ``127.0.0.1``
    (or no port) made the witness's lines another database's, and a cut tail passed."""
    from django.db import connection

    blocks(4)
    cut_from(3)
    monkeypatch.setitem(connection.settings_dict, "HOST", "another-spelling.example")
    monkeypatch.setitem(connection.settings_dict, "PORT", "")
    assert verify().problem.block == 3


def test_lines_written_under_the_old_spelling_still_count(blocks, settings):
    from audit import witness
    from audit.ledger import witness_line

    made = blocks(3)
    old = witness._spelled_id()
    Path(settings.AUDIT_WITNESS_PATH).write_text(
        "".join(witness_line(b.number, b.hash, old) + "\n" for b in made)
    )
    assert verify().witnessed == 3
    cut_from(3)
    assert verify().problem.block == 3


def test_a_cut_tail_written_again_is_caught_by_the_witness(blocks):
    blocks(3)
    cut_from(2)
    blocks(3)  # the portal carries on: blocks 2 to 4 again, a valid ledger on its own

    problem = verify().problem

    assert problem is not None
    assert (problem.block, "replaced" in problem.problem) == (2, True)


def test_deleting_everything_is_caught_by_the_witness(blocks):
    blocks(2)
    cut_from(1)
    assert verify().problem.block == 1


def test_a_head_kept_elsewhere_catches_a_cut_without_the_witness(blocks, settings, tmp_path):
    made = blocks(3)
    kept = (made[-1].number, made[-1].hash)
    settings.AUDIT_WITNESS_PATH = str(tmp_path / "lost-witness.log")
    cut_from(3)

    assert verify().problem is None  # no witness: the cut alone is not seen
    assert str(verify(head=kept).problem).startswith("audit block 3: missing")
    with pytest.raises(CommandError, match="audit block 3"):
        call_command("verify_audit", "--head", f"{kept[0]}:{kept[1]}")
    with pytest.raises(CommandError, match="NUMBER:HASH"):
        call_command("verify_audit", "--head", "3:not-a-hash")


def test_an_honest_witnessed_ledger_verifies_and_names_its_witness(blocks, settings, capsys):
    made = blocks(3, per_block=4)
    lines = Path(settings.AUDIT_WITNESS_PATH).read_text().splitlines()
    assert len(lines) == 3
    # The witness holds block numbers and hashes only: nothing of an event's content.
    assert all(len(line.split()) == 5 and "writer" not in line for line in lines)
    assert [line.split()[3] for line in lines] == [b.hash for b in made]
    report = verify(head=(made[-1].number, made[-1].hash))
    assert (report.events, report.blocks, report.witnessed, report.problem) == (12, 3, 3, None)
    call_command("verify_audit")
    assert "3 blocks and 0 old chain heads from the witness" in capsys.readouterr().out


def test_a_rolled_back_seal_leaves_no_witness_line(blocks, settings):
    blocks(1)
    audit.record("test.event")

    def fails() -> None:
        with transaction.atomic():
            seal()
            raise RuntimeError("the seal's transaction failed")

    with pytest.raises(RuntimeError):
        fails()
    blocks(1)
    assert len(Path(settings.AUDIT_WITNESS_PATH).read_text().splitlines()) == 2
    assert verify().problem is None


def test_a_forged_witness_line_is_reported(blocks, settings):
    blocks(2)
    path = Path(settings.AUDIT_WITNESS_PATH)
    database = path.read_text().splitlines()[-1].split()[0]
    with path.open("a") as witness:
        witness.write(f"{database} block 9 {'a' * 64} {'b' * 64}\n")
    problem = verify().problem
    assert problem is not None
    assert "was not written with the key" in problem.problem


def test_witness_lines_of_another_database_are_not_this_ledgers(blocks, settings):
    Path(settings.AUDIT_WITNESS_PATH).write_text(f"{'0' * 16} block 40 {'a' * 64} {'b' * 64}\n")
    blocks(2)
    assert verify().problem is None


def test_the_old_chain_is_sealed_into_the_first_blocks_and_still_verifies(
    blocks, django_capture_on_commit_callbacks, settings
):
    old = write_chained(5)
    with django_capture_on_commit_callbacks(execute=True):
        seal_as_the_migration_does()
    made = blocks(2)

    assert Block.objects.get(number=1).member_seqs == [e.seq for e in old]
    assert made[0].number == 2
    assert AuditEvent.objects.filter(prev_hash="").count() == 4
    report = verify()
    assert (report.events, report.blocks, report.witnessed, report.problem) == (9, 3, 3, None)


def test_an_edited_old_event_is_still_caught(django_capture_on_commit_callbacks):
    old = write_chained(4)
    with django_capture_on_commit_callbacks(execute=True):
        seal_as_the_migration_does()
    raw("UPDATE audit_auditevent SET actor_label = 'someone else' WHERE id = %s", [old[1].pk])
    problem = verify().problem
    assert (problem.seq, "edited" in problem.problem) == (old[1].seq, True)


def test_a_deleted_old_event_is_caught_by_the_chain_and_the_block(django_capture_on_commit_callbacks):
    old = write_chained(4)
    with django_capture_on_commit_callbacks(execute=True):
        seal_as_the_migration_does()
    raw("DELETE FROM audit_auditevent WHERE id = %s", [old[3].pk])
    problem = verify().problem
    assert problem is not None
    assert old[3].seq == problem.seq
