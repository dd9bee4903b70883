"""Issue 13 part 4: the holders' clinicians see what the checks found in their items,
with who the patient is and what the patient said, and mark it checked; data-quality
figures per organisation and across the network, counts only, no one named."""

import pytest
from django.urls import reverse

from accuracy.checks.engine import run_checks
from accuracy.models import Finding, FindingResponse
from phr.models import Organisation, Patient
from tests.accuracy.test_checks_engine import NHS, metformin
from tests.feeds import person, send
from tests.personas import ClinicianFactory, IGOfficerFactory, PatientUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def found(gp, hospital) -> Finding:
    send(gp, person("p", NHS, "Jones"), metformin("m1", "500mg once daily"))
    send(hospital, person("p", NHS, "Jones"), metformin("h1", "500mg twice daily with meals"))
    run_checks(Patient.objects.get(nhs_number=NHS).pk)
    return Finding.objects.get()


def test_both_holders_see_it_with_the_patient_banner_and_what_each_says(client, found, gp, hospital):
    for org in (gp, hospital):
        client.force_login(ClinicianFactory(email=f"dr@{org.ods_code}.example", organisation=org))
        page = client.get(reverse("clinician:findings")).content.decode()
        assert "Metformin 500mg tablets" in page
        assert "NHS number 943 476 5919" in page or "9434765919" in page
        assert "500mg once daily" in page
        assert "500mg twice daily with meals" in page
        assert "Correct your item" in page


def test_an_unrelated_organisation_sees_nothing_and_cannot_answer(client, found):
    other = Organisation.objects.create(ods_code="Z99999", name="Elsewhere Clinic")
    client.force_login(ClinicianFactory(email="dr@elsewhere.example", organisation=other))
    assert "Metformin" not in client.get(reverse("clinician:findings")).content.decode()
    response = client.post(reverse("clinician:finding_checked", kwargs={"finding_id": found.pk}))
    assert response.status_code == 404
    assert not FindingResponse.objects.exists()


def test_checked_correct_closes_it_for_that_holder_only(client, found, gp, hospital):
    client.force_login(ClinicianFactory(email="dr@gp.example", organisation=gp))
    client.post(
        reverse("clinician:finding_checked", kwargs={"finding_id": found.pk}), {"note": "Reviewed in clinic"}
    )
    assert "Metformin" not in client.get(reverse("clinician:findings")).content.decode()
    client.force_login(ClinicianFactory(email="dr@hospital.example", organisation=hospital))
    assert "Metformin" in client.get(reverse("clinician:findings")).content.decode()
    answer = FindingResponse.objects.get()
    assert (answer.outcome, answer.organisation, answer.note) == ("checked", gp, "Reviewed in clinic")


def test_the_holder_reads_what_the_patient_said(client, found, gp):
    patient = PatientUserFactory(email="jones@example.com", patient=found.patient)
    client.force_login(patient)
    client.post(
        reverse("record:finding_right", kwargs={"finding_id": found.pk}), {"note": "Once a day is right"}
    )
    client.force_login(ClinicianFactory(email="dr@gp.example", organisation=gp))
    page = client.get(reverse("clinician:findings")).content.decode()
    assert "The patient said" in page
    assert "Once a day is right" in page


def test_the_data_quality_page_counts_and_names_no_one(client, found, gp):
    client.force_login(ClinicianFactory(email="dr.answers@gp.example", organisation=gp))
    client.post(reverse("clinician:finding_checked", kwargs={"finding_id": found.pk}))
    client.force_login(ClinicianFactory(email="dr@gp.example", organisation=gp))
    page = client.get(reverse("clinician:data_quality")).content.decode()
    assert "A medicine is recorded with different doses" in page
    for named in ("Jones", "9434765919", "dr.answers@gp.example"):
        assert named not in page, named


def test_the_ig_console_shows_every_holder_side_by_side(client, found):
    client.force_login(IGOfficerFactory(email="ig@example.com"))
    page = client.get(reverse("ig:data_quality")).content.decode()
    assert "Riverside Surgery: findings by check" in page
    assert "City Teaching Hospitals: findings by check" in page
    assert "Jones" not in page


def test_findings_are_counted_by_team_or_service_never_by_person(client, gp, hospital):
    """The service comes from the item's encounter (service type, else place) or from the
    role that recorded it; an item that says neither is counted as not recorded."""
    clinic = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/p"},
        "serviceType": {"text": "Diabetes clinic"},
        "participant": [{"individual": {"display": "Dr Anna Named"}}],
    }
    pharmacist = {
        "resourceType": "PractitionerRole",
        "id": "r1",
        "code": [{"text": "Pharmacist"}],
        "practitioner": {"display": "Dr Bob Named"},
    }
    statin = {"text": "Simvastatin 20mg tablets"}
    at_clinic = {**metformin("h1", "500mg twice daily"), "encounter": {"reference": "Encounter/e1"}}
    by_role = {
        **metformin("h2", "20mg at night"),
        "medicationCodeableConcept": statin,
        "requester": {"reference": "urn:uuid:r1"},
    }
    send(gp, person("p", NHS, "Jones"), metformin("m1", "500mg once daily"))
    send(gp, {**metformin("m2", "40mg at night"), "medicationCodeableConcept": statin})
    send(hospital, person("p", NHS, "Jones"), clinic, pharmacist, at_clinic, by_role)
    run_checks(Patient.objects.get(nhs_number=NHS).pk)
    assert Finding.objects.filter(rule="medicine-dose-disagrees").count() == 2

    from accuracy.quality import NOT_RECORDED, by_service

    assert by_service(hospital) == [("Diabetes clinic", 1), ("Pharmacist", 1)]
    assert by_service(gp) == [(NOT_RECORDED, 2)]
    client.force_login(ClinicianFactory(email="dr@hospital.example", organisation=hospital))
    page = client.get(reverse("clinician:data_quality")).content.decode()
    assert "findings by team or service" in page
    assert "Diabetes clinic" in page
    assert "Named" not in page


def test_a_finding_about_a_version_kept_from_the_holder_stays_hidden_after_relabelling(gp, hospital):
    """The hospital's copy was labelled sexual health (kept to its holder), then re-sent
    as general. The finding about the labelled version quotes what that version said: the
    GP never sees it, open or resolved, while the finding about the general version is
    the GP's to see."""
    from accuracy.findings import for_holder
    from consent.policy import actor_for

    labelled = {
        **metformin("h1", "500mg twice daily with meals"),
        "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}]},
    }
    send(gp, person("p", NHS, "Jones"), metformin("m1", "500mg once daily"))
    send(hospital, person("p", NHS, "Jones"), labelled)
    patient = Patient.objects.get(nhs_number=NHS)
    run_checks(patient.pk)
    first = Finding.objects.get(rule="medicine-dose-disagrees")
    doctor = actor_for(ClinicianFactory(email="dr@gp.example", organisation=gp))
    assert for_holder(doctor, settled=True) == []

    send(hospital, metformin("h1", "500mg twice daily"))  # no label now: general
    assert first not in for_holder(doctor, settled=True), "not yet checked again"
    run_checks(patient.pk)
    first.refresh_from_db()
    assert first.status == Finding.Status.RESOLVED
    shown = for_holder(doctor, settled=True)
    assert [f.rule for f in shown] == ["medicine-dose-disagrees"]
    assert first not in shown


def _correct_page(found: Finding, org: Organisation) -> str:
    row = found.implicated.get(owner=org)
    return reverse("clinician:finding_correct", kwargs={"finding_id": found.pk, "entry_id": row.entry_id})


def _as_posted(form) -> dict:
    return {name: "" if value is None else value for name, value in form.initial.items()}


def test_the_holder_corrects_its_item_in_fields_and_the_next_check_clears_the_finding(
    client, found, gp, hospital
):
    """From the findings list: the correction form's fields, the change in words, then
    saved as the item's next version with a Provenance naming the finding; the hospital,
    which read the old version, is told; the check that follows resolves the finding."""
    from accounts.models import Notification
    from accuracy.models import DownstreamNotice
    from consent.policy import actor_for, open_record
    from phr.models import RecordEntry

    gp_item = found.implicated.get(owner=gp).entry
    reader = ClinicianFactory(email="dr@hospital.example", organisation=hospital)
    open_record(actor_for(reader), found.patient_id).read_one(gp_item.pk)  # the hospital saw version 1

    client.force_login(ClinicianFactory(email="dr@gp.example", organisation=gp))
    page = client.get(reverse("clinician:findings")).content.decode()
    assert _correct_page(found, gp) in page
    form = client.get(_correct_page(found, gp)).context["form"]
    data = {**_as_posted(form), "dose_text": "500mg twice daily with meals", "note": "Checked with them"}

    check = client.post(_correct_page(found, gp), data)
    assert "Check the correction" in check.content.decode()
    assert RecordEntry.objects.get(pk=gp_item.pk).version == 1, "nothing saved before it is confirmed"
    done = client.post(_correct_page(found, gp), {**data, "confirm": "1"})
    assert done.status_code == 302
    # A second click of "Save" is told it was saved, not "page not found"; nothing twice.
    again = client.post(_correct_page(found, gp), {**data, "confirm": "1"}, follow=True)
    assert again.status_code == 200
    assert "Your correction was already saved" in again.content.decode()

    gp_item.refresh_from_db()
    assert gp_item.version == 2
    assert "twice daily" in gp_item.json
    provenance = RecordEntry.objects.get(owner=gp, resource_type="Provenance")
    assert f"DetectedIssue/{found.pk}" in provenance.json
    notice = DownstreamNotice.objects.get(finding=found)
    assert notice.organisation == hospital
    assert notice.versions_read == "1"
    told = Notification.objects.get(user=reader, title="An item you saw has been corrected")
    assert "after the portal's accuracy check" in told.body
    # The hospital's system finds the notice, and reads it by its id, as after a request.
    client.force_login(reader)
    listed = client.get("/fhir/Communication?recipient=RX100").json()
    (communication,) = [e["resource"] for e in listed["entry"]]
    assert {"reference": f"DetectedIssue/{found.pk}"} in communication["about"]
    read = client.get(f"/fhir/Communication/{communication['id']}")
    assert read.status_code == 200
    assert read.json()["id"] == communication["id"]
    assert FindingResponse.objects.filter(finding=found, organisation=gp, outcome="amended").exists()

    run_checks(found.patient_id)
    found.refresh_from_db()
    assert found.status == Finding.Status.RESOLVED


def test_an_unchanged_or_stale_correction_says_what_to_do_and_saves_nothing(client, found, gp):
    from phr.models import RecordEntry

    client.force_login(ClinicianFactory(email="dr@gp.example", organisation=gp))
    form = client.get(_correct_page(found, gp)).context["form"]
    same = client.post(_correct_page(found, gp), {**_as_posted(form), "confirm": "1"})
    assert same.status_code == 400
    assert "You have not changed anything" in same.content.decode()
    stale = {**_as_posted(form), "based_on_version": "2", "dose_text": "1g daily", "confirm": "1"}
    refused = client.post(_correct_page(found, gp), stale)
    assert refused.status_code == 409
    assert "The item changed while you were correcting it" in refused.content.decode()
    for nonsense in ("abc", "-1", "0", "99999999999999999999", ""):
        broken = client.post(_correct_page(found, gp), {**stale, "based_on_version": nonsense})
        assert broken.status_code == 400, nonsense
        assert "The form was incomplete" in broken.content.decode()
    # Only confirm=1 saves: any other value shows the check page again.
    for not_confirmed in ("0", "", "yes"):
        again = client.post(
            _correct_page(found, gp), {**stale, "based_on_version": "1", "confirm": not_confirmed}
        )
        assert "Check the correction" in again.content.decode()
    assert RecordEntry.objects.get(pk=found.implicated.get(owner=gp).entry_id).version == 1


def test_a_part_left_out_of_the_post_keeps_what_the_item_says(client, found, gp):
    """Only what is changed changes: a post without the dose does not remove it."""
    client.force_login(ClinicianFactory(email="dr@gp.example", organisation=gp))
    check = client.post(_correct_page(found, gp), {"status": "stopped", "based_on_version": "1"})
    changes = check.context["form"].changes
    assert [c.sentence for c in changes] == ["The status changes from active to stopped"]


def test_a_holder_asked_by_the_patient_is_taken_to_decide_their_request(client, found, gp, hospital):
    """Once the patient asked, correcting from the finding would leave their request
    waiting on an item already changed: the clinician decides the request instead, with
    the same fields, and the findings list says what each other side said."""
    from accuracy.findings import ask_holders
    from accuracy.models import CorrectionRequest
    from consent.policy import actor_for, open_record

    patient_user = PatientUserFactory(email="jones@example.com", patient=found.patient)
    ask_holders(open_record(actor_for(patient_user), found.patient_id), found.pk)
    asked = CorrectionRequest.objects.get(owner=gp)
    client.force_login(ClinicianFactory(email="dr@hospital.example", organisation=hospital))
    client.post(
        reverse("clinician:finding_checked", kwargs={"finding_id": found.pk}), {"note": "Ours is right"}
    )
    client.force_login(ClinicianFactory(email="dr@gp.example", organisation=gp))
    listed = client.get(reverse("clinician:findings")).content.decode()
    assert "City Teaching Hospitals said" in listed
    assert "Ours is right" in listed
    opened = client.get(_correct_page(found, gp))
    assert opened.status_code == 302
    assert opened.url == reverse("workspace:request", kwargs={"request_id": asked.pk})


def test_only_a_clinician_at_the_holder_may_correct_its_item(client, found, gp, hospital):
    """The hospital's clinician cannot open the GP's item to correct it, nor a clinician
    without a second factor, nor an IG officer: 404 alike."""
    url = _correct_page(found, gp)
    client.force_login(ClinicianFactory(email="dr@hospital.example", organisation=hospital))
    assert client.get(url).status_code == 404
    assert client.post(url, {"dose_text": "x", "based_on_version": "1", "confirm": "1"}).status_code == 404
    client.force_login(IGOfficerFactory(email="ig@example.com"))
    assert client.get(url).status_code in (403, 404)
    other = reverse("clinician:finding_correct", kwargs={"finding_id": found.pk, "entry_id": found.pk})
    client.force_login(ClinicianFactory(email="dr@gp.example", organisation=gp))
    assert client.get(other).status_code == 404


def test_a_note_too_long_says_how_long_it_may_be(client, found, gp):
    """The probe saw Django's own wording ("Ensure this value has at most ...")."""
    client.force_login(ClinicianFactory(email="dr@gp.example", organisation=gp))
    form = client.get(_correct_page(found, gp)).context["form"]
    data = {**_as_posted(form), "dose_text": "1g daily", "note": "x" * 5001}
    page = client.post(_correct_page(found, gp), data).content.decode()
    assert "Note about the correction must be 5,000 characters or fewer" in page
    assert "Ensure this value" not in page
