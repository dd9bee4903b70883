"""python manage.py verify_audit: walk the hash chain; exit 1 naming the first break."""

from django.core.management.base import BaseCommand, CommandError

from audit.chain import verify


class Command(BaseCommand):
    help = "Check the audit trail's hash chain from the first event to the last."

    def handle(self, *args, **options):
        checked, problem = verify()
        if problem is not None:
            raise CommandError(f"audit chain broken after {checked} good events: {problem}", returncode=1)
        self.stdout.write(f"audit chain intact: {checked} events checked")
