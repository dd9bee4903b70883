"""The home page tells a patient, as it tells of questions from staff, when someone used
emergency access to their record, until they have read the message about it."""

import pytest
from django.urls import reverse

from accounts.models import Notification
from consent.models import Decision, Scope
from consent.policy import actor_for
from consent.services import change_consent, declare_break_glass
from tests.clinician.network import build_record
from tests.personas import ClinicianFactory, PatientUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def opened(gp, hospital, mental_health_trust):
    """Ada withheld her record from the mental health trust; a clinician there used
    emergency access to it."""
    patient = build_record(gp, hospital)
    ada = PatientUserFactory(email="ada@example.com", patient=patient)
    change_consent(
        actor=actor_for(ada),
        patient_id=patient.pk,
        scope=Scope.ORGANISATION,
        decision=Decision.DENY,
        organisation=mental_health_trust,
    )
    moss = ClinicianFactory(email="dr.moss@mind.example", organisation=mental_health_trust)
    declare_break_glass(
        actor=actor_for(moss),
        patient_id=patient.pk,
        reason_code="emergency",
        reason_text="Brought in unconscious.",
    )
    return ada


def banner(client, user) -> str | None:
    client.force_login(user)
    page = client.get(reverse("home")).content.decode()
    start = page.find('id="emergency-access"')
    return None if start < 0 else page[start : page.index("</div>", start)]


def test_the_home_page_says_someone_used_emergency_access_and_links_to_it(client, opened):
    shown = banner(client, opened)
    assert shown is not None
    assert "Someone used emergency access to your record" in shown
    note = Notification.objects.get(user=opened, kind=Notification.Kind.BREAK_GLASS)
    assert reverse("portal:inbox_item", args=[note.pk]) in shown
    assert reverse("sharing:access_log") + "#emergency-openings" in shown
    assert "Brought in unconscious" not in shown  # the detail is one click away, not on the home page


def test_the_banner_goes_once_the_message_is_read(client, opened):
    note = Notification.objects.get(user=opened, kind=Notification.Kind.BREAK_GLASS)
    client.force_login(opened)
    client.get(reverse("portal:inbox_item", args=[note.pk]))
    assert banner(client, opened) is None


def test_no_banner_without_emergency_access(client, gp, hospital):
    ada = PatientUserFactory(email="ada@example.com", patient=build_record(gp, hospital))
    Notification.objects.create(user=ada, kind=Notification.Kind.CORRECTION, title="Other news", body="x")
    assert banner(client, ada) is None
