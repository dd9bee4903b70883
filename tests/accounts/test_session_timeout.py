"""Sessions end after SESSION_IDLE_TIMEOUT without a request and SESSION_ABSOLUTE_TIMEOUT
after sign-in, with a message on the sign-in page saying why."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from audit.models import AuditEvent
from tests.personas import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, ben):
    client.post("/accounts/login/", {"login": ben.email, "password": PASSWORD})
    assert client.session["_auth_user_id"] == str(ben.pk)
    return client


def test_a_request_within_the_idle_limit_keeps_the_session(signed_in, ben):
    start = timezone.now()
    with time_machine.travel(start + timedelta(minutes=29)):
        response = signed_in.get("/link/")
    assert response.status_code == 200
    assert signed_in.session["_auth_user_id"] == str(ben.pk)


def test_thirty_minutes_without_a_request_signs_out(signed_in):
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        response = signed_in.get("/link/")
        assert response.status_code == 302
        assert response["Location"] == "/accounts/login/?next=/link/"
        assert "_auth_user_id" not in signed_in.session
        page = signed_in.get(response["Location"]).content.decode()
    assert "You were signed out after 30 minutes without activity" in page
    assert AuditEvent.objects.filter(action="auth.logout").exists()


def test_activity_moves_the_idle_limit_on(signed_in, ben):
    start = timezone.now()
    for minutes in (20, 40, 60):
        with time_machine.travel(start + timedelta(minutes=minutes)):
            assert signed_in.get("/link/").status_code == 200
    assert signed_in.session["_auth_user_id"] == str(ben.pk)


def test_the_idle_limit_follows_the_setting(signed_in, settings):
    settings.SESSION_IDLE_TIMEOUT = 5 * 60
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        response = signed_in.get("/", follow=True)
    assert "You were signed out after 5 minutes without activity" in response.content.decode()


def test_twelve_hours_after_sign_in_the_session_ends_however_busy(signed_in):
    start = timezone.now()
    for minutes in range(20, 12 * 60, 20):
        with time_machine.travel(start + timedelta(minutes=minutes)):
            assert signed_in.get("/link/").status_code == 200
    with time_machine.travel(start + timedelta(hours=12, minutes=1)):
        response = signed_in.get("/link/", follow=True)
    assert "_auth_user_id" not in signed_in.session
    assert "You were signed out because you had been signed in for 12 hours" in response.content.decode()


def test_signing_in_again_starts_a_new_session_clock(signed_in, ben):
    with time_machine.travel(timezone.now() + timedelta(hours=13)):
        signed_in.get("/link/")
        signed_in.post("/accounts/login/", {"login": ben.email, "password": PASSWORD})
        assert signed_in.get("/link/").status_code == 200


def test_anonymous_visitors_are_not_affected(client):
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        assert client.get("/").status_code == 200
