"""python manage.py issue_linkage_key --org ODS --nhs-number NNNNNNNNNN [--issued-by EMAIL]

Prints the details of the letter a practice gives a patient to link their portal account
to their record: account id, passphrase, ODS code and the date it expires. The
passphrase is printed this once; only its hash is stored.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.linking import LinkingError, issue_linkage_key
from accounts.models import User
from phr.models import Organisation, Patient
from phr.render.dates import day_and_time


class Command(BaseCommand):
    help = "Issue a linkage key for a patient whose record the organisation holds, and print the letter."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="ODS code of the organisation issuing the key")
        parser.add_argument("--nhs-number", required=True, help="the patient's NHS number (10 digits)")
        parser.add_argument(
            "--issued-by", help="email of the clinician issuing it (a member of the organisation)"
        )

    def handle(self, *args, org, nhs_number, issued_by=None, **options):
        organisation = Organisation.objects.filter(ods_code__iexact=org.strip()).first()
        if organisation is None:
            raise CommandError(f"No member organisation has the ODS code {org!r}.")
        patient = Patient.objects.filter(nhs_number="".join(nhs_number.split())).first()
        if patient is None:
            raise CommandError("No patient has that NHS number.")
        issuer = None
        if issued_by:
            issuer = User.objects.filter(email__iexact=issued_by.strip()).first()
            if issuer is None:
                raise CommandError(f"No user has the email address {issued_by!r}.")
        try:
            key, passphrase = issue_linkage_key(issued_by=issuer, organisation=organisation, patient=patient)
        except LinkingError as refusal:
            raise CommandError(refusal.message) from None
        self.stdout.write(f"Account ID:  {key.formatted_account_id}")
        self.stdout.write(f"Passphrase:  {passphrase}")
        self.stdout.write(f"ODS code:    {organisation.ods_code}")
        self.stdout.write(
            f"Expires:     {day_and_time(key.expires_at)} ({timezone.localtime(key.expires_at):%Z})"
        )
