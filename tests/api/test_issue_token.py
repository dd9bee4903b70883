"""issue_token: a bearer token for a patient's account or an organisation's system,
from the command line, for scripting and tests."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from api.auth import InvalidToken, api_actor, has_scope
from api.models import SystemClient
from audit.models import AuditEvent
from consent.policy import ActorRole
from tests.personas import ClinicianFactory, PatientUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sam(db):
    return PatientUserFactory(email="sam@example.com")


def issue(*args) -> str:
    out = StringIO()
    call_command("issue_token", *args, stdout=out)
    return out.getvalue().strip()


def bearer(token: str):
    return RequestFactory().get("/fhir/Condition", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_it_prints_a_working_token_for_a_patient(sam):
    token = issue("sam@example.com", "--scope", "patient/*.read openid")
    request = bearer(token)
    actor = api_actor(request)
    assert actor.role == ActorRole.PATIENT
    assert actor.patient_id == sam.patient_link.patient_id
    assert has_scope(request, "patient/Condition.read")
    assert not has_scope(request, "patient/Communication.write")
    event = AuditEvent.objects.get(action="oauth.issue")
    assert event.patient_id == sam.patient_link.patient_id
    assert event.actor_label == "operator:issue_token"


def test_a_patients_token_is_checked_in_one_query(sam, django_assert_num_queries):
    """Every API request checks its token: the token, its app, its user and the user's
    record link come back together."""
    token = issue("sam@example.com", "--scope", "patient/*.read")
    with django_assert_num_queries(1):  # nothing of what the actor needs is loaded lazily
        actor = api_actor(bearer(token))
        label, fields = actor.label, actor.audit_fields()
    assert actor.patient_id == sam.patient_link.patient_id
    assert (label, fields["actor"]) == ("sam@example.com", sam)


def test_it_prints_a_token_response_as_json_with_the_patient(sam):
    body = json.loads(issue("SAM@example.com", "--scope", "launch/patient patient/*.read", "--json"))
    assert body["patient"] == str(sam.patient_link.patient_id)
    assert body["expires_in"] == 3600
    assert api_actor(bearer(body["access_token"])).user == sam


def test_it_prints_a_working_token_for_an_organisation_system(gp):
    token = issue("--client", "a10001", "--scope", "system/*.read system/Bundle.write")
    request = bearer(token)
    actor = api_actor(request)
    assert actor.role == ActorRole.SYSTEM
    assert actor.organisation == gp
    assert has_scope(request, "system/Bundle.write")
    # The same system client is used the next time.
    issue("--client", "A10001", "--scope", "system/*.read")
    assert SystemClient.objects.filter(organisation=gp).count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody@example.com", "--scope", "patient/*.read"], "No user"),
        (["sam@example.com", "--scope", "system/*.read"], "Not a scope"),
        (["sam@example.com", "--scope", "patient/*.read", "--minutes", "0"], "--minutes"),
        (["sam@example.com", "--scope", " "], "names no scope"),
        (["--client", "NOPE", "--scope", "system/*.read"], "No member organisation"),
        (["--client", "A10001", "--scope", "patient/*.read"], "Not a scope"),
        (["sam@example.com", "--client", "A10001", "--scope", "system/*.read"], "either"),
    ],
)
def test_it_refuses(sam, gp, args, message):
    with pytest.raises(CommandError, match=message):
        issue(*args)


def test_it_refuses_staff_and_unlinked_patients(gp):
    ClinicianFactory(email="doc@example.com", organisation=None, second_factor=False)
    PatientUserFactory(email="new@example.com", patient=None)
    with pytest.raises(CommandError, match="not a patient"):
        issue("doc@example.com", "--scope", "patient/*.read")
    with pytest.raises(CommandError, match="not linked"):
        issue("new@example.com", "--scope", "patient/*.read")


def test_a_token_from_the_command_can_be_stopped_by_the_patient(client, sam):
    token = issue("sam@example.com", "--scope", "patient/*.read")
    client.force_login(sam)
    page = client.get("/apps/").content.decode()
    assert "cli" in page
    from oauth2_provider.models import Application

    client.post("/apps/", {"application": Application.objects.get(name="cli").pk})
    with pytest.raises(InvalidToken):
        api_actor(bearer(token))
