"""Issue 13 part 3: the patient sees what the checks found, naming each holder and what
its record says; "Ask them to correct it" sends one request to each holder; "This is
right" closes it for the patient's side; only about items the patient may see."""

import pytest
from django.urls import reverse

from accuracy.checks.engine import run_checks
from accuracy.models import CorrectionRequest, Finding, FindingResponse
from consent.models import ConsentChoice
from phr.models import Patient
from tests.accuracy.test_checks_engine import NHS, metformin
from tests.feeds import person, send
from tests.personas import PatientUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def jones(gp, hospital):
    send(gp, person("p", NHS, "Jones"), metformin("m1", "500mg once daily"))
    send(hospital, person("p", NHS, "Jones"), metformin("h1", "500mg twice daily with meals"))
    patient = Patient.objects.get(nhs_number=NHS)
    run_checks(patient.pk)
    return PatientUserFactory(email="jones@example.com", patient=patient)


def test_the_summary_and_the_checks_page_show_the_metformin_case(client, jones):
    client.force_login(jones)
    summary = client.get(reverse("record:summary")).content.decode()
    assert "One thing you may want to check" in summary
    page = client.get(reverse("record:checks")).content.decode()
    assert "Riverside Surgery's record says: <strong>500mg once daily</strong>" in page
    assert "City Teaching Hospitals's record says: <strong>500mg twice daily with meals</strong>" in page
    assert "Ask them to correct it" in page


def test_the_item_page_says_it_may_need_checking(client, jones):
    from phr.models import RecordEntry

    client.force_login(jones)
    item = RecordEntry.objects.get(fhir_id="m1")
    page = client.get(reverse("record:item", kwargs={"entry_id": item.pk})).content.decode()
    assert "You may want to check this" in page
    assert "record Metformin 500mg tablets differently" in page


def test_one_click_sends_a_request_to_each_holder(client, jones, gp, hospital):
    client.force_login(jones)
    finding = Finding.objects.get()
    response = client.post(reverse("record:finding_ask", kwargs={"finding_id": finding.pk}))
    assert response.status_code == 302
    requests = CorrectionRequest.objects.order_by("owner__name")
    assert [r.owner for r in requests] == [hospital, gp]
    gp_request = requests.get(owner=gp)
    assert "City Teaching Hospitals's record says 500mg twice daily with meals" in gp_request.proposed
    assert FindingResponse.objects.get().outcome == "asked"
    page = client.get(reverse("record:checks")).content.decode()
    assert "nothing to check" in page
    earlier = page[page.index('id="findings-earlier"') :]
    assert "You asked the organisations to correct it on" in earlier
    assert reverse("record:corrections") in earlier


def test_this_is_right_closes_it_for_the_patient_with_a_note(client, jones):
    client.force_login(jones)
    finding = Finding.objects.get()
    client.post(
        reverse("record:finding_right", kwargs={"finding_id": finding.pk}), {"note": "Once a day is right"}
    )
    response = FindingResponse.objects.get()
    assert (response.outcome, response.note, response.organisation) == ("right", "Once a day is right", None)
    assert "One thing you may want to check" not in client.get(reverse("record:summary")).content.decode()
    assert "You said this is right on" in client.get(reverse("record:checks")).content.decode()


def test_this_is_right_can_say_which_holders_record_is_right(client, jones, gp):
    """With two holders the patient can say which record is right; the holders read it.
    Naming an organisation that holds none of the items is refused, and nothing is kept."""
    client.force_login(jones)
    finding = Finding.objects.get()
    page = client.get(reverse("record:checks")).content.decode()
    assert "Which record is right?" in page
    assert f'value="{gp.ods_code}"' in page
    url = reverse("record:finding_right", kwargs={"finding_id": finding.pk})
    client.post(url, {"right": "Y99999", "note": "x"})
    assert not FindingResponse.objects.exists()
    client.post(url, {"right": gp.ods_code, "note": "I take it with breakfast"})
    said = FindingResponse.objects.get()
    assert said.note == f"{gp.name}'s record is right. I take it with breakfast"


def test_another_patient_cannot_see_or_answer_it(client, jones):
    finding = Finding.objects.get()
    client.force_login(PatientUserFactory(email="other@example.com"))
    assert "Metformin" not in client.get(reverse("record:checks")).content.decode()
    assert client.post(reverse("record:finding_ask", kwargs={"finding_id": finding.pk})).status_code == 404
    assert client.post(reverse("record:finding_right", kwargs={"finding_id": finding.pk})).status_code == 404
    assert not CorrectionRequest.objects.exists()


def test_a_finding_about_an_item_the_viewer_may_not_see_is_not_shown(client, jones, gp, hospital):
    """The hospital's clinician sees it while the patient shares the GP's item with them;
    once the patient withholds their record from the hospital, the finding goes too."""
    from accuracy import findings
    from consent.policy import actor_for
    from tests.personas import ClinicianFactory

    doctor = actor_for(ClinicianFactory(email="dr@hospital.example", organisation=hospital))
    assert len(findings.for_holder(doctor)) == 1
    ConsentChoice.objects.create(
        patient=jones.patient_link.patient, scope="organisation", organisation=hospital, decision="deny"
    )
    assert findings.for_holder(doctor) == []
