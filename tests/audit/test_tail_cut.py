"""Database access alone cannot cut the audit trail's tail unnoticed: the chain head is
sealed with the key, and every committed head is written to a witness outside the
database (AUDIT_WITNESS_PATH), which verify_audit compares the chain with."""

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

import audit
from audit.chain import verify
from audit.models import AuditEvent
from tests.audit.tampering import behind_the_apps_back as raw

pytestmark = pytest.mark.django_db


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Writes events as committed transactions would (their on-commit work runs)."""

    def write(n: int) -> list[AuditEvent]:
        with django_capture_on_commit_callbacks(execute=True):
            return [audit.record("test.event", actor_label=f"writer {i}", detail={"i": i}) for i in range(n)]

    return write


def head_row() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM audit_chainhead WHERE id = 1")
        return [col[0] for col in cursor.description], cursor.fetchone()


def set_head(columns, row) -> None:
    """Put the head row back as it was, every column of it (as a restored backup would)."""
    assignments = ", ".join(f"{name} = %s" for name in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE audit_chainhead SET {assignments} WHERE id = 1", list(row))  # noqa: S608


def cut_after(seq: int) -> None:
    raw("DELETE FROM audit_auditevent WHERE seq > %s", [seq])


def test_a_cut_tail_with_the_head_set_to_the_last_kept_event_is_reported(committed):
    events = committed(5)
    cut_after(3)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_chainhead SET last_seq = %s, last_hash = %s WHERE id = 1", [3, events[2].hash]
        )

    checked, problem = verify()

    assert problem is not None
    assert checked == 3
    with pytest.raises(CommandError, match="audit chain broken"):
        call_command("verify_audit")


def test_the_head_alone_catches_the_cut_without_a_witness():
    # Not committed: no witness line is written, so only the head's seal can tell.
    events = [audit.record("test.event", detail={"i": i}) for i in range(4)]
    cut_after(2)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_chainhead SET last_seq = %s, last_hash = %s WHERE id = 1", [2, events[1].hash]
        )
    checked, problem = verify()
    assert (checked, problem is not None) == (2, True)
    assert "head" in problem.problem


def test_rolling_back_to_an_older_genuine_head_is_caught_by_the_witness(committed):
    committed(3)
    columns, old_head = head_row()  # a genuine, sealed head, kept by someone with database access
    committed(2)
    cut_after(3)
    set_head(columns, old_head)

    checked, problem = verify()

    assert checked == 3
    assert problem is not None
    assert problem.seq == 4  # the first of the heads the witness saw that are gone
    assert "witness" in problem.problem
    with pytest.raises(CommandError, match="#4"):
        call_command("verify_audit")


def test_a_cut_tail_written_again_is_caught_by_the_witness(committed):
    committed(3)
    columns, old_head = head_row()
    committed(2)
    cut_after(3)
    set_head(columns, old_head)
    committed(4)  # the portal carries on: #4 to #7 are new events, a valid chain again

    checked, problem = verify()

    assert checked == 7
    assert problem is not None
    assert problem.seq == 4
    assert "witness" in problem.problem


def test_deleting_every_event_and_the_head_is_caught_by_the_witness(committed):
    committed(3)
    cut_after(0)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_chainhead")
    checked, problem = verify()
    assert checked == 0
    assert problem is not None
    assert problem.seq == 1


def test_an_honest_witnessed_chain_verifies_and_names_its_witness(committed, settings, capsys):
    committed(6)
    lines = Path(settings.AUDIT_WITNESS_PATH).read_text().splitlines()
    assert len(lines) == 6
    # The witness holds sequence numbers and hashes only: nothing of an event's content.
    assert all(len(line.split()) == 4 and "writer" not in line for line in lines)
    assert verify() == (6, None)
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "6 events checked" in out
    assert "6 heads" in out


def test_a_rolled_back_write_leaves_no_witness_line(committed, django_capture_on_commit_callbacks):
    committed(2)

    def fails() -> None:
        with transaction.atomic():
            audit.record("test.event", detail={"undone": True})
            raise RuntimeError("the caller's work failed")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        fails()
    committed(1)
    assert verify() == (3, None)


def test_a_forged_witness_line_is_reported(committed, settings):
    committed(2)
    path = Path(settings.AUDIT_WITNESS_PATH)
    genuine = path.read_text().splitlines()[-1].split()
    path.open("a").write(f"{genuine[0]} 9 {'a' * 64} {'b' * 64}\n")
    checked, problem = verify()
    assert checked == 2
    assert problem is not None
    assert "witness" in problem.problem


def test_witness_lines_of_another_database_are_not_this_chains(committed, settings):
    path = Path(settings.AUDIT_WITNESS_PATH)
    path.write_text(f"{'0' * 16} 40 {'a' * 64} {'b' * 64}\n")
    committed(2)
    assert verify() == (2, None)
