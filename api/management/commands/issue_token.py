"""python manage.py issue_token EMAIL --scope "patient/*.read openid"
python manage.py issue_token --client ODS --scope "system/*.read"

Prints a bearer token for scripting and tests, without an OAuth flow: for a patient's
account (through the operators' own "cli" client) or for an organisation's system (its
SystemClient, made on first use).

For operators only: whoever can run manage.py on the server can read the database
anyway, so the command asks no further permission, whatever DEBUG says. Instead each
token it prints is short-lived (--minutes, 60 by default, at most a day), carries only
the scopes its holder could be granted through OAuth, and is written to the audit
trail ("oauth.issue") where information governance sees it; a patient sees it among
their connected apps ("cli") and can stop it there.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Role, User
from api import scopes as smart
from api.oauth_server import cli_application, issue_access_token, system_application
from phr.models import Organisation

MAX_MINUTES = 24 * 60


class Command(BaseCommand):
    help = "Print a bearer token for a patient's account (EMAIL) or an organisation's system (--client ODS)."

    def add_arguments(self, parser):
        parser.add_argument("email", nargs="?", help="the patient's account email address")
        parser.add_argument("--client", metavar="ODS", help="the ODS code of an organisation, for its system")
        parser.add_argument(
            "--scope", required=True, help='space-separated SMART scopes, e.g. "patient/*.read"'
        )
        parser.add_argument(
            "--minutes", type=int, default=60, help=f"lifetime, 1 to {MAX_MINUTES} (default 60)"
        )
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="print a token response as JSON instead"
        )

    def handle(self, *args, email=None, client=None, scope, minutes, as_json: bool = False, **options):
        if bool(email) == bool(client):
            raise CommandError("Give either a patient's EMAIL or --client ODS, not both or neither.")
        if not 1 <= minutes <= MAX_MINUTES:
            raise CommandError(f"--minutes must be between 1 and {MAX_MINUTES}.")
        scopes = smart.parse(scope)
        if not scopes:
            raise CommandError("--scope names no scope.")
        if client:
            allowed, user = smart.SYSTEM_SCOPES, None
            organisation = Organisation.objects.filter(ods_code__iexact=client.strip()).first()
            if organisation is None:
                raise CommandError(f"No member organisation has the ODS code {client!r}.")
            application = system_application(organisation)
        else:
            allowed = smart.PATIENT_APP_SCOPES
            user = User.objects.filter(email__iexact=email.strip()).first()
            if user is None:
                raise CommandError(f"No user has the email address {email!r}.")
            if user.role != Role.PATIENT:
                raise CommandError(f"{user.email} is not a patient: patient scopes are for patients only.")
            if not hasattr(user, "patient_link"):
                raise CommandError(f"{user.email} is not linked to a record yet.")
            application = cli_application()
        refused = sorted(scopes - set(allowed))
        if refused:
            who = "an organisation's system" if client else "a patient's app"
            raise CommandError(f"Not a scope {who} may be granted: {' '.join(refused)}")
        scope_text = " ".join(sorted(scopes))
        token, _ = issue_access_token(
            application=application,
            user=user,
            scope=scope_text,
            minutes=minutes,
            issued_by="operator:issue_token",
        )
        if not as_json:
            self.stdout.write(token)
            return
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": minutes * 60,
            "scope": scope_text,
        }
        if user is not None and "launch/patient" in scopes:
            body["patient"] = str(user.patient_link.patient_id)
        self.stdout.write(json.dumps(body))
