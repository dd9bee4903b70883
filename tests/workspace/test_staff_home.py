"""The home page for staff: a clinician sees what waits for their organisation and for
them, an IG officer what waits for review; both only once a second factor is set up,
with a header navigation of their own. Patients and visitors keep the portal's page."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accuracy import services
from accuracy.models import CorrectionRequest
from consent.policy import actor_for
from consent.services import change_consent, declare_break_glass
from tests.personas import ClinicianFactory, IGOfficerFactory
from tests.workspace.test_workspace import flag
from tests.workspace.test_workspace import world as world  # the shared fixture, found by name

pytestmark = pytest.mark.django_db

HOME = reverse("home")


def due_in(request: CorrectionRequest, days: int) -> None:
    CorrectionRequest.objects.filter(pk=request.pk).update(due_on=timezone.localdate() + timedelta(days=days))


def text_of(client, element_id: str) -> str:
    import re

    page = client.get(HOME).content.decode()
    found = re.search(rf'id="{element_id}">(.*?)</dd>', page, re.S)
    assert found, f"#{element_id} is not on the page"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def test_a_clinician_sees_the_organisations_work_and_their_own(client, world):
    overdue = flag(world)
    due_in(overdue, -2)
    soon = flag(world, world["depression"], proposed="Low mood in 2023, now resolved")
    due_in(soon, 3)
    soon = services.assign(
        actor=actor_for(world["dr_two"]),
        request_id=soon.pk,
        revision=soon.revision,
        colleague=world["dr_gp"],
    )
    soon = services.start_review(actor=actor_for(world["dr_gp"]), request_id=soon.pk, revision=soon.revision)
    services.ask_information(
        actor=actor_for(world["dr_gp"]),
        request_id=soon.pk,
        revision=soon.revision,
        question="Which clinic told you it had resolved?",
    )
    flag(world, world["wrist"], proposed="Sprained wrist, not broken")  # the hospital's
    client.force_login(world["dr_gp"])
    response = client.get(HOME)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Correction requests to Riverside Surgery" in page
    assert text_of(client, "work-open") == "2"
    assert text_of(client, "work-overdue") == "1 overdue"
    assert text_of(client, "work-due_soon") == "1"
    assert text_of(client, "work-waiting") == "1"
    assert text_of(client, "work-mine") == "1"
    assert reverse("workspace:queue") in page
    for view in ("open", "overdue", "due_soon", "waiting", "mine"):  # each count opens its list
        assert f'{reverse("workspace:queue")}?show={view}"' in page
    assert 'aria-label="Clinician workspace"' in page
    assert 'aria-label="Your record"' not in page  # not the patient's navigation
    assert "Before you see your record" not in page
    client.force_login(world["dr_two"])
    assert text_of(client, "work-mine") == "0"
    client.force_login(world["dr_hosp"])
    assert text_of(client, "work-open") == "1"
    assert text_of(client, "work-overdue") == "None"


def test_decided_and_withdrawn_requests_wait_for_nobody(client, world):
    request = flag(world)
    services.withdraw(actor=actor_for(world["ada"]), request_id=request.pk, revision=request.revision)
    due_in(request, -10)
    client.force_login(world["dr_gp"])
    assert text_of(client, "work-open") == "0"
    assert text_of(client, "work-overdue") == "None"


def test_staff_without_a_second_factor_are_asked_to_set_one_up_and_see_no_numbers(client, gp):
    flag_free = ClinicianFactory(email="dr.new@example.com", organisation=gp, second_factor=False)
    client.force_login(flag_free)
    page = client.get(HOME).content.decode()
    assert "Set up two-factor authentication" in page
    assert reverse("mfa_activate_totp") in page
    assert 'id="workload"' not in page
    ig = IGOfficerFactory(email="ig.new@example.com", second_factor=False)
    client.force_login(ig)
    page = client.get(HOME).content.decode()
    assert "Set up two-factor authentication" in page
    assert 'id="governance"' not in page


def test_an_ig_officer_sees_emergency_access_to_review_and_overdue_requests(client, world):
    due_in(flag(world), -1)
    flag(world, world["wrist"], proposed="Sprained wrist, not broken")  # not overdue
    change_consent(
        actor=actor_for(world["ada"]), patient_id=world["patient"].pk, scope="network", decision="deny"
    )
    declare_break_glass(
        actor=actor_for(world["dr_hosp"]),
        patient_id=world["patient"].pk,
        reason_code="emergency",
        reason_text="Unconscious in A&E",
    )
    client.force_login(world["ig"])
    page = client.get(HOME).content.decode()
    assert text_of(client, "unreviewed") == "1 to review"
    assert text_of(client, "network-overdue") == "1 overdue"
    assert reverse("ig:break_glass") in page
    assert 'aria-label="Information governance"' in page
    assert "Hypertensive disorder" not in page  # numbers only: nothing of any record


def test_a_clinician_who_belongs_to_no_organisation_is_told_so(client, db):
    loner = ClinicianFactory(email="dr.loner@example.com", organisation=None)
    client.force_login(loner)
    page = client.get(HOME).content.decode()
    assert "not a member of any organisation" in page
    assert 'id="workload"' not in page


@pytest.mark.parametrize(
    ("url", "current"),
    [
        (reverse("workspace:queue"), "Correction requests"),
        (reverse("workspace:figures"), "Figures"),
        (reverse("clinician:find_patient"), "Find a patient"),
        (HOME, "Your work"),
    ],
)
def test_the_clinician_navigation_marks_the_current_section(client, world, url, current):
    import re

    client.force_login(world["dr_gp"])
    page = client.get(url).content.decode()
    marked = re.findall(r'aria-current="page">([^<]+)</a>', page)
    assert marked == [current]


def test_patients_and_visitors_keep_the_portals_home_page(client, world):
    visitor = client.get(HOME).content.decode()
    assert "Your shared care record" in visitor
    assert "Before you see your record" in visitor
    client.force_login(world["ada"])
    page = client.get(HOME).content.decode()
    assert "Your shared care record" in page
    assert 'aria-label="Clinician workspace"' not in page


def listed(client, show: str) -> set[str]:
    import re

    page = client.get(reverse("workspace:queue"), {"show": show}).content.decode()
    return set(re.findall(r'href="/clinician/corrections/([0-9a-f-]{36})/"', page))


def test_each_count_on_the_home_page_opens_the_requests_it_counts(client, world):
    overdue = flag(world)
    due_in(overdue, -2)
    soon = flag(world, world["depression"], proposed="Low mood in 2023, now resolved")
    due_in(soon, 5)
    soon = services.start_review(actor=actor_for(world["dr_gp"]), request_id=soon.pk, revision=soon.revision)
    services.ask_information(
        actor=actor_for(world["dr_gp"]), request_id=soon.pk, revision=soon.revision, question="Which clinic?"
    )
    client.force_login(world["dr_gp"])
    assert listed(client, "overdue") == {str(overdue.pk)}
    assert listed(client, "due_soon") == {str(soon.pk)}
    assert listed(client, "waiting") == {str(soon.pk)}
    assert listed(client, "mine") == {str(soon.pk)}  # starting the review assigned it
    assert listed(client, "open") == {str(overdue.pk), str(soon.pk)}
    assert listed(client, "decided") == set()
    assert "Overdue (1)" in client.get(reverse("workspace:queue"), {"show": "overdue"}).content.decode()
    client.force_login(world["dr_two"])
    assert listed(client, "mine") == set()


def test_a_patient_is_told_on_the_home_page_when_an_organisation_waits_for_their_answer(client, world):
    client.force_login(world["ada"])
    page = client.get(HOME).content.decode()
    assert "You have no correction requests waiting for a decision." in page
    assert 'id="answers-needed"' not in page
    asked = flag(world)
    flag(world, world["wrist"], proposed="Sprained wrist, not broken")
    asked = services.start_review(
        actor=actor_for(world["dr_gp"]), request_id=asked.pk, revision=asked.revision
    )
    services.ask_information(
        actor=actor_for(world["dr_gp"]),
        request_id=asked.pk,
        revision=asked.revision,
        question="Which clinic?",
    )
    page = client.get(HOME).content.decode()
    assert "2 of your correction requests are waiting for a decision." in page
    callout = page[page.index('id="answers-needed"') :]
    assert "An organisation has asked you a question" in callout
    assert reverse("record:corrections") in callout
    assert "Hypertensive disorder" not in page  # numbers only: no item on the home page
    assert "Before you see your record" not in page  # linked already: nothing to do first


def test_an_ig_officer_is_warned_when_the_audit_trail_is_not_being_sealed(client, world, settings):
    from audit import record
    from audit.ledger import seal_all

    client.force_login(world["ig"])
    seal_all()
    settings.AUDIT_SEAL_WINDOW_SECONDS = 0
    assert 'id="sealing-late"' not in client.get(HOME).content.decode()  # all sealed: never late
    record("test.event")  # an event the sealer has not reached
    page = client.get(HOME).content.decode()
    assert 'id="sealing-late"' in page
    assert "The audit trail is not being sealed" in page
    seal_all()
    assert 'id="sealing-late"' not in client.get(HOME).content.decode()
