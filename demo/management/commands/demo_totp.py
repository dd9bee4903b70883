"""python manage.py demo_totp: the current two-factor code of the demo staff accounts."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from demo.totp import current_code


class Command(BaseCommand):
    help = "Print the current two-factor code for the demo staff accounts (DEBUG only)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("demo_totp is for the demo on a development machine (DEBUG on) only")
        self.stdout.write(current_code())
