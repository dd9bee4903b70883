"""python manage.py deadline_sweep [--today YYYY-MM-DD]: the daily sweep, run now.

Celery beat runs it every day in production; this runs the same task in-process, for
the embedded set-up and for trying a date ahead ("what would go out on 1 March?").
"""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from accuracy.tasks import deadline_sweep


class Command(BaseCommand):
    help = "Send due correction reminders and escalations (each at most once)."

    def add_arguments(self, parser):
        parser.add_argument("--today", help="run as if it were this date (YYYY-MM-DD)")

    def handle(self, *args, **options):
        today = options["today"]
        if today:
            try:
                date.fromisoformat(today)
            except ValueError:
                raise CommandError(f"--today must be a date like 2026-03-01, not {today!r}") from None
        sent = deadline_sweep(today=today)
        self.stdout.write(f"reminders sent: {sent['reminders']}, escalations sent: {sent['escalations']}")
