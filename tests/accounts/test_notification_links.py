"""Every notification links to the page it is about, a page its recipient may open, and
says who asked or acted; staff told of a correction elsewhere see the patient and the
item only when the policy admits them; the email says none of the detail."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import Notification, User
from accuracy import services
from accuracy.tasks import deadline_sweep
from consent.models import ConsentChoice, Decision, Scope
from consent.policy import actor_for, open_record
from consent.services import declare_break_glass
from phr.models import Organisation, OrganisationKind, Patient, RecordEntry
from tests.feeds import person, send
from tests.personas import ClinicianFactory, PatientUserFactory

pytestmark = pytest.mark.django_db


def medication(dose="50mg once daily"):
    return {
        "resourceType": "MedicationStatement",
        "id": "amlodipine",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"},
        "dosage": [{"text": dose}],
    }


@pytest.fixture
def net(gp, dr_gp, ig_officer):
    trust = Organisation.objects.create(
        ods_code="RX100", name="City Hospital", kind=OrganisationKind.ACUTE_TRUST
    )
    send(gp, person("p1", "9434765919", "Lovelace"), medication())
    patient = Patient.objects.get()
    return {
        "gp": gp,
        "trust": trust,
        "patient": patient,
        "entry": RecordEntry.objects.get(resource_type="MedicationStatement"),
        "ada": PatientUserFactory(email="ada@example.com", patient=patient),
        "dr_gp": dr_gp,
        "dr_trust": ClinicianFactory(email="dr.trust@example.com", organisation=trust),
        "ig": ig_officer,
    }


def act(user, **kw):
    return actor_for(User.objects.get(pk=user.pk), **kw)


def flag(net):
    return services.submit_correction(
        actor=act(net["ada"]),
        entry_id=net["entry"].pk,
        element="dosage[0].text",
        proposed="5mg once daily",
        reason="My GP changed it to 5mg in March",
        contact_preference="portal",
    )


def latest(user) -> Notification:
    return Notification.objects.filter(user=user).order_by("-created_at", "-id").first()


def opens(client, user, note: Notification) -> str:
    """The recipient follows the link: it resolves and the page lets them in."""
    assert note.link, note.title
    client.force_login(user)
    response = client.get(note.link)
    assert response.status_code == 200, (note.title, note.link, response.status_code)
    return response.content.decode()


def no_one_named_in(link: str) -> None:
    assert "9434765919" not in link
    assert "Lovelace" not in link


def test_staff_are_told_who_asked_for_what_and_the_link_opens_the_request(client, net):
    request = flag(net)
    note = latest(net["dr_gp"])
    assert note.link == reverse("workspace:request", args=[request.pk])
    assert "Test Lovelace asked Riverside Surgery to correct" in note.body
    assert request.item_display in note.body
    no_one_named_in(note.link)
    opens(client, net["dr_gp"], note)


def test_the_patient_is_told_who_wrote_and_the_link_opens_their_request(client, net):
    request = flag(net)
    request = services.start_review(actor=act(net["dr_gp"]), request_id=request.pk, revision=request.revision)
    services.ask_information(
        actor=act(net["dr_gp"]),
        request_id=request.pk,
        revision=request.revision,
        question="Which clinic changed it?",
    )
    note = latest(net["ada"])
    assert note.link == reverse("record:correction", args=[request.pk])
    assert note.body.startswith("From Riverside Surgery, about your request to correct")
    assert "Which clinic changed it?" in note.body
    opens(client, net["ada"], note)


def test_an_assignment_says_who_assigned_it(client, net):
    colleague = ClinicianFactory(email="dr.two@example.com", organisation=net["gp"])
    request = flag(net)
    services.assign(
        actor=act(net["dr_gp"]), request_id=request.pk, revision=request.revision, colleague=colleague
    )
    note = latest(colleague)
    assert note.body.startswith("dr.gp@example.com assigned you Test Lovelace's request")
    opens(client, colleague, note)


def correct(net):
    request = flag(net)
    open_record(act(net["dr_trust"]), net["patient"].pk).read()  # the hospital saw version 1
    request = services.start_review(actor=act(net["dr_gp"]), request_id=request.pk, revision=request.revision)
    return services.accept(
        actor=act(net["dr_gp"]),
        request_id=request.pk,
        revision=request.revision,
        resource_json=json.dumps(medication("5mg once daily")),
        based_on_version=1,
    )


def test_staff_elsewhere_admitted_by_the_policy_see_the_patient_and_item_and_can_open_it(client, net):
    request = correct(net)
    note = latest(net["dr_trust"])
    assert note.title == "An item you saw has been corrected"
    assert f'corrected "{request.item_display}" in Test Lovelace\'s record' in note.body
    assert note.link == reverse("clinician:entry", args=[net["patient"].pk, net["entry"].pk])
    no_one_named_in(note.link)
    opens(client, net["dr_trust"], note)


def test_staff_the_policy_no_longer_admits_are_told_without_the_name_or_a_link(client, net):
    request = flag(net)
    open_record(act(net["dr_trust"]), net["patient"].pk).read()
    ConsentChoice.objects.create(patient=net["patient"], scope=Scope.NETWORK, decision=Decision.DENY)
    request = services.start_review(actor=act(net["dr_gp"]), request_id=request.pk, revision=request.revision)
    services.accept(
        actor=act(net["dr_gp"]),
        request_id=request.pk,
        revision=request.revision,
        resource_json=json.dumps(medication("5mg once daily")),
        based_on_version=1,
    )
    note = latest(net["dr_trust"])
    assert note.title == "An item you saw has been corrected"
    assert "Lovelace" not in note.body
    assert request.item_display not in note.body
    assert "ask Riverside Surgery" in note.body
    assert note.link == ""


def test_emergency_access_links_to_it_on_the_patients_access_log(client, net):
    ConsentChoice.objects.create(patient=net["patient"], scope=Scope.NETWORK, decision=Decision.DENY)
    declare_break_glass(
        actor=act(net["dr_trust"]),
        patient_id=net["patient"].pk,
        reason_code="emergency",
        reason_text="Unconscious in the emergency department",
    )
    note = latest(net["ada"])
    assert note.link == reverse("sharing:access_log") + "#emergency-openings"
    assert note.body.startswith("dr.trust@example.com at City Hospital opened your record")
    assert 'id="emergency-openings"' in opens(client, net["ada"], note)


def test_the_overdue_escalation_opens_the_ig_corrections_page(client, net):
    request = flag(net)
    deadline_sweep((request.due_on + timedelta(days=1)).isoformat())
    note = latest(net["ig"])
    assert note.title == "A correction request is overdue"
    assert note.link == reverse("ig:corrections")
    opens(client, net["ig"], note)


def test_a_reminder_names_the_patient_and_opens_the_request(client, net):
    request = flag(net)
    deadline_sweep((request.due_on - timedelta(days=1)).isoformat())
    note = Notification.objects.filter(user=net["dr_gp"], title="A correction request is due soon").get()
    assert note.body.startswith("Test Lovelace asked Riverside Surgery to correct")
    opens(client, net["dr_gp"], note)


# --- The inbox shows the link, and staff captions match the message -------------------------


def test_the_inbox_list_and_item_show_the_link_and_staff_see_a_staff_caption(client, net):
    request = flag(net)
    note = latest(net["dr_gp"])
    client.force_login(net["dr_gp"])
    listing = client.get(reverse("portal:inbox")).content.decode()
    assert f'href="{note.link}"' in listing
    assert "Open the correction request" in listing
    assert "Your correction request" not in listing
    assert "Correction request," in listing
    item = client.get(reverse("portal:inbox_item", args=[note.pk])).content.decode()
    assert f'href="{reverse("workspace:request", args=[request.pk])}"' in item
    assert "Your correction request" not in item
    assert "uses emergency access to your record" not in listing


def test_a_patient_keeps_the_patient_caption_and_link(client, net):
    request = flag(net)
    services.start_review(actor=act(net["dr_gp"]), request_id=request.pk, revision=request.revision)
    request.refresh_from_db()
    services.post_message(
        actor=act(net["dr_gp"]), request_id=request.pk, revision=request.revision, body="We are on it."
    )
    note = latest(net["ada"])
    client.force_login(net["ada"])
    item = client.get(reverse("portal:inbox_item", args=[note.pk])).content.decode()
    assert "Your correction request" in item
    assert f'<a href="{note.link}">Open your correction request</a>' in item


def test_a_link_that_no_longer_resolves_is_not_shown(client, net):
    note = Notification.objects.create(user=net["ada"], title="Old", body="x", link="/gone/away/")
    assert note.link_words == ""
    client.force_login(net["ada"])
    assert (
        'href="/gone/away/"' not in client.get(reverse("portal:inbox_item", args=[note.pk])).content.decode()
    )


# --- The email ----------------------------------------------------------------------------


def test_the_email_names_the_portal_links_to_the_message_and_carries_no_detail(
    net, settings, django_capture_on_commit_callbacks
):
    settings.PORTAL_URL = "https://portal.example.nhs.uk"
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        request = flag(net)
    note = latest(net["dr_gp"])
    (sent,) = [m for m in mail.outbox if m.to == [net["dr_gp"].email]]
    assert sent.subject == "Patient Record Portal: A new correction request"
    assert f"https://portal.example.nhs.uk{reverse('portal:inbox_item', args=[note.pk])}" in sent.body
    assert "Patient Record Portal" in sent.body
    for detail in ("Lovelace", "9434765919", request.item_display, "Amlodipine", "5mg", "[", "Hello from"):
        assert detail not in sent.subject
        assert detail not in sent.body


def test_the_emergency_access_email_says_nothing_clinical(net, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    ConsentChoice.objects.create(patient=net["patient"], scope=Scope.NETWORK, decision=Decision.DENY)
    with django_capture_on_commit_callbacks(execute=True):
        declare_break_glass(
            actor=act(net["dr_trust"]),
            patient_id=net["patient"].pk,
            reason_code="emergency",
            reason_text="Unconscious after a fall",
        )
    (sent,) = [m for m in mail.outbox if m.to == ["ada@example.com"]]
    assert sent.subject == "Patient Record Portal: A clinician used emergency access to your record"
    for detail in ("Unconscious", "City Hospital", "dr.trust", "[127.0.0.1"):
        assert detail not in sent.body


def test_a_due_date_in_the_body_never_reaches_the_email(net, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        flag(net)
    (sent,) = [m for m in mail.outbox if m.to == [net["dr_gp"].email]]
    assert "Decide by" not in sent.body
