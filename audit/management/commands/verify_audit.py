"""python manage.py verify_audit: check the audit ledger end to end (audit.ledger.verify)
and exit 1 naming the first problem; --proof prints an event's inclusion proof."""

import json
import re

from django.core.management.base import BaseCommand, CommandError

from audit import ledger, witness
from audit.chain import witnessed_heads
from audit.models import AuditEvent

HEAD = re.compile(r"^([1-9][0-9]{0,17}):([0-9a-f]{64})$")


def counted(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def head_value(text: str) -> tuple[int, str]:
    match = HEAD.match(text.strip())
    if match is None:
        raise CommandError("--head takes a block number and its hash: NUMBER:HASH (64 hex digits)")
    return int(match.group(1)), match.group(2)


class Command(BaseCommand):
    help = (
        "Check the audit trail: every event's MAC (and the old chain's links), every sealed"
        " block's members, Merkle root and link to the block before, that nothing older than"
        " the seal window is unsealed, and every block the witness (AUDIT_WITNESS_PATH) saw."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--head",
            type=head_value,
            help="A block number and hash kept outside the database (NUMBER:HASH): it must still be there.",
        )
        parser.add_argument(
            "--proof",
            type=int,
            metavar="SEQ",
            help="Print the inclusion proof of the event with this sequence number, as JSON.",
        )

    def handle(self, *args, **options):
        if options["proof"] is not None:
            return self.proof(options["proof"])
        report = ledger.verify(head=options["head"])
        if report.problem is not None:
            raise CommandError(
                f"audit trail broken after {report.events} good events and {report.blocks} good blocks:"
                f" {report.problem}",
                returncode=1,
            )
        self.stdout.write(
            f"audit trail intact: {counted(report.events, 'event')} and {counted(report.blocks, 'block')}"
            f" checked, {counted(report.pending, 'event')} written in the last moments not yet sealed,"
            f" {counted(report.witnessed, 'block')} and {counted(witnessed_heads(), 'old chain head')}"
            f" from the witness at {witness.path()} compared"
        )
        if report.blocks and not report.witnessed:
            self.stderr.write(
                f"The witness at {witness.path()} holds no block of this ledger: a cut tail could go"
                " unnoticed. Is AUDIT_WITNESS_PATH the file the portal writes?"
            )
        return None

    def proof(self, seq: int) -> None:
        event = AuditEvent.objects.filter(seq=seq).first()
        if event is None:
            raise CommandError(f"no audit event #{seq}")
        try:
            inclusion = ledger.inclusion(event)
        except ledger.Altered as error:
            raise CommandError(f"{error}; run verify_audit for the whole trail") from None
        if inclusion is None:
            raise CommandError(f"audit event #{seq} is not sealed yet: try again in a few seconds")
        self.stdout.write(json.dumps(inclusion.as_json(), indent=2))
