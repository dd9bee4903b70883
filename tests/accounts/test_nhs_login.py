"""The NHS login seam: an identity verified to P9 with an NHS number links the account
to that patient's record; anything less links nothing. The provider itself is switched
on by settings, checked here in a fresh process."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from account_people import ADA_BORN, ADA_NHS_NUMBER

from accounts.linking import link_from_nhs_login, patient_for_nhs_login
from accounts.models import PatientLink
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[2]
P9 = {"identity_proofing_level": "P9", "nhs_number": ADA_NHS_NUMBER, "birthdate": ADA_BORN.isoformat()}


def test_a_p9_identity_is_matched_by_nhs_number(ada):
    match = patient_for_nhs_login(P9)
    assert (match.patient, match.reason) == (ada, "matched")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        pytest.param({**P9, "identity_proofing_level": "P5"}, "not_p9", id="p5"),
        pytest.param(
            {k: v for k, v in P9.items() if k != "identity_proofing_level"}, "not_p9", id="no-level"
        ),
        pytest.param({**P9, "nhs_number": ""}, "no_nhs_number", id="no-number"),
        pytest.param({**P9, "nhs_number": "9000000009"}, "unknown_patient", id="unknown"),
        pytest.param({**P9, "birthdate": "1990-01-01"}, "birth_date_differs", id="other-birth-date"),
    ],
)
def test_anything_less_matches_nobody(ada, claims, reason):
    match = patient_for_nhs_login(claims)
    assert (match.patient, match.reason) == (None, reason)


def test_a_match_links_the_account_and_is_audited(ben, ada):
    link = link_from_nhs_login(user=ben, claims=P9, source_address="192.0.2.1")
    assert (link.patient, link.method) == (ada, PatientLink.Method.NHS_LOGIN)
    event = AuditEvent.objects.get(action="identity.link")
    assert (event.outcome, event.patient, event.detail["method"]) == ("permit", ada, "nhs_login")


def test_no_match_links_nothing_and_is_audited(ben, ada):
    assert link_from_nhs_login(user=ben, claims={**P9, "identity_proofing_level": "P5"}) is None
    assert not PatientLink.objects.exists()
    event = AuditEvent.objects.get(action="identity.link")
    assert (event.outcome, event.reason, event.patient) == ("deny", "not_p9", None)


def test_an_account_already_linked_keeps_its_link(ben, ada, gp):
    from phr.models import Patient

    other = Patient.objects.create(nhs_number="9000000009")
    existing = PatientLink.objects.create(user=ben, patient=other, method=PatientLink.Method.DEMO)
    assert link_from_nhs_login(user=ben, claims=P9) == existing
    assert PatientLink.objects.get(user=ben).patient == other


def test_staff_accounts_are_never_linked(dr_bell, ada):
    assert link_from_nhs_login(user=dr_bell, claims=P9) is None
    assert not PatientLink.objects.exists()


# --- Switched on by settings, in a fresh process --------------------------------------

NHS_LOGIN_ENV = {
    "NHS_LOGIN_CLIENT_ID": "portal-client",
    "NHS_LOGIN_CLIENT_SECRET": "client-secret",
    "NHS_LOGIN_SERVER_URL": "https://auth.sandpit.signin.nhs.uk",
}


def run_python(code: str, env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NHS_LOGIN_", "DJANGO_ALLOW"))}
    clean.update(
        env,
        DEBUG="true",
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'nhs-login.sqlite3'}",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_the_variables_the_provider_is_off(settings):
    assert "allauth.socialaccount" not in settings.INSTALLED_APPS
    assert not settings.NHS_LOGIN_ENABLED


def test_a_partial_configuration_is_refused(tmp_path):
    result = run_python("import django; django.setup()", {"NHS_LOGIN_CLIENT_ID": "x"}, tmp_path)
    assert result.returncode != 0
    assert "NHS_LOGIN_CLIENT_SECRET" in result.stderr


def test_with_the_variables_a_p9_sign_in_through_the_adapter_links_the_record(tmp_path):
    # A whole sign-in needs NHS login itself; this drives allauth's own objects through
    # the adapter's save_user, as the OpenID Connect callback does for a new account.
    code = f"""
        import django
        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        assert "allauth.socialaccount.providers.openid_connect" in settings.INSTALLED_APPS
        call_command("migrate", verbosity=0)
        call_command("check")
        from allauth.socialaccount.models import SocialAccount, SocialLogin
        from django.contrib.sessions.backends.db import SessionStore
        from django.test import RequestFactory
        from accounts.models import User
        from accounts.nhs_login import NHSLoginAdapter
        from phr.models import Patient
        ada = Patient.objects.create(nhs_number="{ADA_NHS_NUMBER}", birth_date="{ADA_BORN}")
        request = RequestFactory().get("/")
        request.session = SessionStore()
        user = User(email="ada@example.com")
        account = SocialAccount(provider="nhs-login", uid="nhs-login-sub-1", extra_data={{
            "id_token": {{"sub": "nhs-login-sub-1", "identity_proofing_level": "P9"}},
            "userinfo": {{"nhs_number": "{ADA_NHS_NUMBER}", "birthdate": "{ADA_BORN}"}},
        }})
        sociallogin = SocialLogin(user=user, account=account)
        saved = NHSLoginAdapter().save_user(request, sociallogin)
        print("linked", saved.patient_link.patient_id == ada.pk, saved.patient_link.method)
    """
    result = run_python(code, NHS_LOGIN_ENV, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "linked True nhs_login" in result.stdout
