"""Sign-in, sign-out and two-factor events are in the audit trail."""

import pytest
from allauth.mfa.totp.internal.auth import TOTP

from audit.ledger import verify
from audit.models import AuditEvent
from tests.personas import PASSWORD, TOTP_SECRET, UserFactory


@pytest.fixture
def person(db):
    return UserFactory(email="kim@example.com", verified_email=True)


@pytest.mark.django_db
def test_a_sign_in_and_a_sign_out_are_audited(client, person):
    client.post("/accounts/login/", {"login": person.email, "password": PASSWORD})
    client.post("/accounts/logout/")

    login, logout = AuditEvent.objects.filter(action__startswith="auth.").order_by("seq")
    assert (login.action, login.outcome, login.actor) == ("auth.login", "permit", person)
    assert login.source_address == "127.0.0.1"
    assert (logout.action, logout.actor) == ("auth.logout", person)
    assert verify().problem is None


@pytest.mark.django_db
def test_a_failed_sign_in_is_audited_without_the_password(client, person):
    client.post("/accounts/login/", {"login": person.email, "password": "wrong-password-here"})

    event = AuditEvent.objects.get(action="auth.login")
    assert event.outcome == "deny"
    assert event.actor is None
    assert event.actor_label == person.email
    assert "wrong-password-here" not in str(event.detail)


@pytest.mark.django_db
def test_a_wrong_two_factor_code_is_audited(client, person):
    TOTP.activate(person, TOTP_SECRET)
    client.post("/accounts/login/", {"login": person.email, "password": PASSWORD})
    client.post("/accounts/2fa/authenticate/", {"code": "000000"})

    assert AuditEvent.objects.filter(action="auth.mfa", outcome="deny", actor=person).exists()
