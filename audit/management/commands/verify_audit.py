"""python manage.py verify_audit: walk the hash chain, check its sealed head and compare it
with the witness outside the database; exit 1 naming the first break."""

from django.core.management.base import BaseCommand, CommandError

from audit import witness
from audit.chain import verify, witnessed_heads


class Command(BaseCommand):
    help = (
        "Check the audit trail's hash chain from the first event to the last, its head, and"
        " every head the witness (AUDIT_WITNESS_PATH) saw."
    )

    def handle(self, *args, **options):
        checked, problem = verify()
        if problem is not None:
            raise CommandError(f"audit chain broken after {checked} good events: {problem}", returncode=1)
        heads = witnessed_heads()
        self.stdout.write(
            f"audit chain intact: {checked} events checked, {heads} heads from the witness at"
            f" {witness.path()} compared"
        )
        if checked and not heads:
            self.stderr.write(
                f"The witness at {witness.path()} holds no head of this chain: a cut tail could go"
                " unnoticed. Is AUDIT_WITNESS_PATH the file the portal writes?"
            )
