"""Staff reach clinical and audit data only with a second factor set up, through every
channel: the policy refuses them (so FHIR, the JSON API, pages and anything else that
opens a record through it), and each channel says why (FHIR and JSON with a 403 telling
them to set up two-factor authentication, pages by sending them to the set-up page)."""

import json

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.urls import reverse

from accounts.models import User
from audit.models import AuditEvent
from consent.policy import SECOND_FACTOR_NEEDED, Action, NotFound, actor_for, authorise, open_record
from tests.api.test_fhir_api import net as net  # the shared network, found by name
from tests.personas import TOTP_SECRET, ClinicianFactory, CorrectionRequestFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def password_only(net):
    """The network's staff, with a password and no second factor set up."""
    staff = [net["people"][who] for who in ("gp", "trust", "ig")]
    Authenticator.objects.filter(user__in=staff).delete()
    return net


def as_staff(client, net, who):
    client.force_login(net["people"][who])
    return client


def refused_with_two_factor_outcome(response) -> None:
    assert response.status_code == 403, response.content[:500]
    body = json.loads(response.content)
    assert body["resourceType"] == "OperationOutcome"
    assert "two-factor authentication" in body["issue"][0]["diagnostics"]
    assert "Hypertensive" not in response.content.decode()


def test_a_password_only_clinician_reads_no_conditions_through_fhir(client, password_only):
    net = password_only
    as_staff(client, net, "gp")
    response = client.get(f"/fhir/Condition?patient={net['ada'].pk}")
    refused_with_two_factor_outcome(response)
    refused_with_two_factor_outcome(client.get(f"/fhir/Patient/{net['ada'].pk}/$everything"))
    refused_with_two_factor_outcome(client.get(f"/fhir/Patient/{net['ada'].pk}/$summary"))
    refused_with_two_factor_outcome(client.get("/fhir/Condition/c1"))
    refused_with_two_factor_outcome(client.get("/fhir/Task?owner=A10001"))


def test_a_password_only_ig_officer_reads_no_audit_trail_through_fhir(client, password_only):
    as_staff(client, password_only, "ig")
    refused_with_two_factor_outcome(client.get("/fhir/AuditEvent"))
    refused_with_two_factor_outcome(client.get(f"/fhir/Consent?patient={password_only['ada'].pk}"))


def test_with_a_second_factor_the_same_clinician_reads_them(client, password_only):
    net = password_only
    TOTP.activate(net["people"]["gp"], TOTP_SECRET)
    as_staff(client, net, "gp")
    response = client.get(f"/fhir/Condition?patient={net['ada'].pk}")
    assert response.status_code == 200
    found = [e["resource"]["id"] for e in json.loads(response.content)["entry"]]
    assert {"c1", "c2", "c3"} <= set(found)


def test_the_json_api_refuses_them_with_a_clear_message(client, password_only):
    for who in ("gp", "ig"):
        as_staff(client, password_only, who)
        for url in ("/api/v1/corrections/", "/api/v1/audit/events/"):
            response = client.get(url)
            assert response.status_code == 403, (who, url)
            assert response.json()["detail"] == SECOND_FACTOR_NEEDED


def test_the_policy_refuses_staff_without_a_second_factor_and_audits_it(password_only):
    net = password_only
    clinician = actor_for(User.objects.get(pk=net["people"]["gp"].pk))
    assert clinician.second_factor_missing
    with pytest.raises(NotFound):
        open_record(clinician, net["ada"].pk)
    refusal = AuditEvent.objects.filter(action="record.read", outcome="deny").latest("seq")
    assert refusal.actor_id == net["people"]["gp"].pk
    assert "two-factor" in refusal.reason
    officer = actor_for(User.objects.get(pk=net["people"]["ig"].pk))
    for action in (Action.READ_AUDIT, Action.READ_CONSENT):
        with pytest.raises(NotFound):
            authorise(officer, action, net["ada"].pk)
    # Patients have no second factor to set up; their own record opens as before.
    patient = actor_for(User.objects.get(pk=net["people"]["ada"].pk))
    assert not patient.second_factor_missing
    assert open_record(patient, net["ada"].pk).read()


def test_with_a_second_factor_the_policy_opens_the_record(password_only):
    net = password_only
    TOTP.activate(net["people"]["gp"], TOTP_SECRET)
    clinician = actor_for(User.objects.get(pk=net["people"]["gp"].pk))
    assert not clinician.second_factor_missing
    assert open_record(clinician, net["ada"].pk).read()


def test_the_pages_still_send_them_to_set_it_up(client, password_only):
    as_staff(client, password_only, "gp")
    response = client.get(reverse("clinician:find_patient"))
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")


def test_a_new_staff_role_user_without_memberships_is_refused_too(client, password_only):
    newcomer = ClinicianFactory(email="new@example.com", organisation=None, second_factor=False)
    client.force_login(newcomer)
    refused_with_two_factor_outcome(client.get(f"/fhir/Condition?patient={password_only['ada'].pk}"))


def test_the_correction_queue_selector_gives_password_only_staff_no_requests(password_only):
    """The one selector every channel lists requests through (accuracy.selectors) lists
    none for staff without a second factor, whatever the channel checks before it."""
    from accuracy.selectors import visible_requests
    from phr.models import RecordEntry

    net = password_only
    entry = RecordEntry.objects.filter(owner__ods_code="A10001", resource_type="Condition").first()
    CorrectionRequestFactory(
        entry=entry, proposed="Not this", reason="Wrong", requested_by=net["people"]["ada"]
    )
    gp = net["people"]["gp"]
    assert not visible_requests(actor_for(gp)).exists()
    TOTP.activate(gp, TOTP_SECRET)
    assert visible_requests(actor_for(gp)).exists()
