"""The IG console: who may open it, what its searches find, what it never shows, and
that its exports are what they claim to be."""

import csv
import io
import itertools
import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from consent import ig_queries
from consent.models import BreakGlass, BreakGlassReview
from consent.policy import NotFound, actor_for, open_record
from consent.services import change_consent, declare_break_glass
from phr.ingest import ingest_documents
from phr.models import Patient
from phr.nhs_number import unissued_numbers
from tests.personas import ClinicianFactory, IGOfficerFactory, PatientUserFactory, link_record

pytestmark = pytest.mark.django_db

NHS = "https://fhir.nhs.uk/Id/nhs-number"
CONDITION_DISPLAY = "Hypertensive disorder"


def nhs_numbers(count, start=100001):
    """Valid NHS numbers in the 999 test range, from 999<start>."""
    return list(itertools.islice(unissued_numbers(9_990_000_000 + start * 10), count))


def record_bundle(*people):
    """A collection Bundle: for each (id, NHS number) a Patient and one Condition."""
    entries = []
    for pid, nhs in people:
        entries.append(
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": pid,
                    "identifier": [{"system": NHS, "value": nhs}],
                    "name": [{"family": f"Family{pid}", "given": ["Given"]}],
                    "birthDate": "1970-01-01",
                }
            }
        )
        entries.append(
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": f"c-{pid}",
                    "subject": {"reference": f"Patient/{pid}"},
                    "code": {
                        "coding": [
                            {
                                "system": "http://snomed.info/sct",
                                "code": "38341003",
                                "display": CONDITION_DISPLAY,
                            }
                        ]
                    },
                    "recordedDate": "2024-05-01",
                }
            }
        )
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def make_patients(organisation, count, start=100001):
    numbers = nhs_numbers(count, start)
    people = [(f"p{start + i}", nhs) for i, nhs in enumerate(numbers)]
    ingest_documents([("feed.json", record_bundle(*people))], organisation=organisation)
    return [Patient.objects.get(nhs_number=nhs) for nhs in numbers]


@pytest.fixture
def ada(gp):
    """A patient whose record the GP holds: one Condition."""
    return make_patients(gp, 1)[0]


@pytest.fixture
def ada_account(ada):
    return PatientUserFactory(email="ada@example.com", patient=ada)


@pytest.fixture
def clinician(hospital):
    return ClinicianFactory(email="dr.bell@hospital.example", organisation=hospital)


@pytest.fixture
def ig_user():
    return IGOfficerFactory(email="ig@network.example")


@pytest.fixture
def ig(client, ig_user):
    client.force_login(ig_user)
    return client


def read(user, patient):
    return open_record(actor_for(user), patient.pk).read()


def refuse_sharing(patient):
    """The patient refuses sharing across the network, through their own account."""
    link = patient.accounts.select_related("user").first()
    if link is None:
        link = PatientUserFactory(email=f"{patient.pk.hex}@example.com", patient=patient).patient_link
    return change_consent(actor=actor_for(link.user), patient_id=patient.pk, scope="network", decision="deny")


def break_glass(clinician, patient, text="Unconscious in A&E"):
    return declare_break_glass(
        actor=actor_for(clinician), patient_id=patient.pk, reason_code="emergency", reason_text=text
    )


def urls_in(html: str) -> list[str]:
    return re.findall(r'(?:href|action|src)="([^"]*)"', html)


def all_ig_urls(patient, glass_id=1):
    return [
        reverse("ig:search"),
        reverse("ig:export_csv"),
        reverse("ig:export_fhir"),
        reverse("ig:find_patient"),
        reverse("ig:patient", args=[patient.pk]),
        reverse("ig:break_glass"),
        reverse("ig:signals"),
        reverse("ig:withheld"),
    ]


# --- Who may open it ------------------------------------------------------------------


def test_patients_and_clinicians_get_not_found_on_every_ig_url(client, ada, ada_account, clinician):
    for user in (ada_account, clinician):
        client.force_login(user)
        for url in all_ig_urls(ada):
            assert client.get(url).status_code == 404, url
        assert client.post(reverse("ig:review", args=[1]), {}).status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(client, ada):
    for url in all_ig_urls(ada):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


def test_an_ig_officer_without_two_factor_is_sent_to_set_it_up(client, ada):
    user = IGOfficerFactory(email="new.ig@network.example", second_factor=False)
    client.force_login(user)
    for url in all_ig_urls(ada):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == reverse("mfa_activate_totp")


def test_every_page_opens_for_an_ig_officer_with_two_factor(ig, ada, clinician):
    read(clinician, ada)
    for url in all_ig_urls(ada):
        assert ig.get(url).status_code == 200, url


# --- Search ---------------------------------------------------------------------------


def test_a_search_by_nhs_number_redirects_to_the_patients_id(ig, ada, clinician):
    read(clinician, ada)
    response = ig.post(reverse("ig:search"), {"nhs_number": ada.nhs_number})
    assert response.status_code == 302
    assert ada.nhs_number not in response["Location"]
    assert f"patient={ada.pk.hex}" in response["Location"]


def test_an_nhs_number_in_a_search_url_is_ignored_and_never_echoed(ig, ada, clinician):
    read(clinician, ada)
    response = ig.get(reverse("ig:search"), {"nhs_number": ada.nhs_number})
    assert response.status_code == 200
    assert ada.nhs_number not in response.content.decode()


def test_an_unknown_nhs_number_is_a_form_error(ig, ada):
    response = ig.post(reverse("ig:search"), {"nhs_number": nhs_numbers(1, start=500001)[0]})
    assert response.status_code == 200
    assert "No patient with this NHS number" in response.content.decode()
    assert "nhsuk-error-summary" in response.content.decode()


def test_a_search_past_the_count_cap_says_more_than_and_asks_to_narrow_it(ig, ada, clinician, monkeypatch):
    from web.ig import views

    for _ in range(3):
        read(clinician, ada)
    monkeypatch.setattr(views, "SEARCH_COUNT_CAP", 2)
    page = ig.get(reverse("ig:search"), {"action": "record.read"}).content.decode()
    assert "More than 2 events, newest first" in page
    assert "narrow the search" in page
    monkeypatch.setattr(views, "SEARCH_COUNT_CAP", 3)
    page = ig.get(reverse("ig:search"), {"action": "record.read"}).content.decode()
    assert "3 events, newest first" in page
    assert "More than" not in page


def seqs(response) -> set[int]:
    return {e.seq for e in response.context["events"].object_list}


def test_each_filter_narrows_the_results(ig, gp, hospital, clinician):
    ada, bob = make_patients(gp, 2)
    gp_clinician = ClinicianFactory(email="dr.gray@surgery.example", organisation=gp)
    read(clinician, ada)
    read(gp_clinician, bob)
    hospital_read_ada = AuditEvent.objects.get(action="record.read", patient_id=ada.pk)
    gp_read_bob = AuditEvent.objects.get(action="record.read", patient_id=bob.pk)

    by_patient = ig.get(ig.post(reverse("ig:search"), {"nhs_number": ada.nhs_number})["Location"])
    assert hospital_read_ada.seq in seqs(by_patient)
    assert gp_read_bob.seq not in seqs(by_patient)
    assert all(e.patient_id == ada.pk for e in by_patient.context["events"].object_list)

    by_org = ig.get(reverse("ig:search"), {"organisation": gp.ods_code})
    assert gp_read_bob.seq in seqs(by_org)
    assert hospital_read_ada.seq not in seqs(by_org)

    by_user = ig.get(ig.post(reverse("ig:search"), {"user_email": clinician.email})["Location"])
    assert seqs(by_user) == {hospital_read_ada.seq}

    by_action = ig.get(reverse("ig:search"), {"action": "record.read"})
    assert seqs(by_action) == {hospital_read_ada.seq, gp_read_bob.seq}
    assert ig.get(reverse("ig:search"), {"action": "record.*"}).context["events"].paginator.count == 2

    with pytest.raises(NotFound):
        open_record(actor_for(clinician), "00000000-0000-0000-0000-000000000000")
    denied = ig.get(reverse("ig:search"), {"outcome": "deny", "action": "record.read"})
    assert len(seqs(denied)) == 1
    assert all(e.outcome == "deny" for e in denied.context["events"].object_list)

    today = timezone.localdate()
    assert seqs(ig.get(reverse("ig:search"), {"action": "record.read", "date_from": today.isoformat()})) >= {
        hospital_read_ada.seq
    }
    tomorrow = (today + timedelta(days=1)).isoformat()
    yesterday = (today - timedelta(days=1)).isoformat()
    assert not seqs(ig.get(reverse("ig:search"), {"date_from": tomorrow}))
    assert not seqs(ig.get(reverse("ig:search"), {"date_to": yesterday}))
    assert hospital_read_ada.seq in seqs(ig.get(reverse("ig:search"), {"date_to": today.isoformat()}))


def test_results_are_newest_first_with_the_rows_fields(ig, ada, clinician):
    read(clinician, ada)
    read(clinician, ada)
    response = ig.get(reverse("ig:search"), {"action": "record.read"})
    events = response.context["events"].object_list
    assert [e.seq for e in events] == sorted((e.seq for e in events), reverse=True)
    html = response.content.decode()
    assert clinician.email in html
    assert "City Teaching Hospitals (RX100)" in html
    assert reverse("ig:patient", args=[ada.pk]) in html


def test_a_search_is_itself_audited_without_nhs_numbers(ig, ig_user, ada, clinician):
    read(clinician, ada)
    ig.get(ig.post(reverse("ig:search"), {"nhs_number": ada.nhs_number})["Location"])
    event = AuditEvent.objects.filter(action="audit.search").latest("seq")
    assert event.actor_id == ig_user.pk
    assert event.organisation_id is None
    assert event.detail["filters"] == {"patient": ada.pk.hex}
    assert ada.nhs_number not in json.dumps(event.detail)


def test_a_date_range_backwards_is_a_form_error(ig):
    response = ig.get(reverse("ig:search"), {"date_from": "2025-02-01", "date_to": "2025-01-01"})
    assert response.context["events"] is None
    assert "must be the same as or after" in response.content.decode()


# --- The patient page -----------------------------------------------------------------


def test_the_patient_page_shows_the_choice_in_force_for_each_read(ig, ada, ada_account, clinician):
    read(clinician, ada)  # before any choice: the default shares it
    change_consent(
        actor=actor_for(ada_account), patient_id=ada.pk, scope="network", decision="deny", reason="privacy"
    )
    with pytest.raises(NotFound):
        read(clinician, ada)  # refused under the deny
    glass = break_glass(clinician, ada, "Unconscious in A&E")
    read(clinician, ada)  # under break-glass, the deny still in force

    response = ig.get(reverse("ig:patient", args=[ada.pk]))
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [r.event.outcome for r in rows] == ["permit", "deny", "permit"]  # newest first
    after, refused, before = rows
    assert before.consent.by_default
    assert "General" in before.consent.shared
    assert before.event.purpose == "direct-care"
    assert before.break_glass is None
    assert [c.decision for c in refused.consent.deciding] == ["deny"]
    assert [c.decision for c in after.consent.deciding] == ["deny"]
    assert after.event.purpose == "emergency"
    assert after.break_glass == glass
    html = response.content.decode()
    assert "Choice 1: Do not share" in html
    assert "Unconscious in A&amp;E" in html
    assert html.count('href="#choice-1"') == 2
    assert "No choice: the default" in html


def test_the_patient_page_is_audited_as_a_consent_read(ig, ig_user, ada):
    ig.get(reverse("ig:patient", args=[ada.pk]))
    event = AuditEvent.objects.filter(action="consent.read").latest("seq")
    assert event.patient_id == ada.pk
    assert event.actor_id == ig_user.pk
    assert event.outcome == "permit"


def test_an_unknown_patient_is_not_found_and_audited(ig):
    response = ig.get(reverse("ig:patient", args=["11111111-1111-1111-1111-111111111111"]))
    assert response.status_code == 404
    assert AuditEvent.objects.filter(action="consent.read", outcome="deny").exists()


def test_finding_a_patient_by_nhs_number_redirects_to_the_id(ig, ada):
    response = ig.post(reverse("ig:find_patient"), {"nhs_number": ada.nhs_number})
    assert response.status_code == 302
    assert response["Location"] == reverse("ig:patient", args=[ada.pk])
    assert ig.post(reverse("ig:find_patient"), {"nhs_number": "123"}).status_code == 200


def test_choices_as_of_replays_the_history(ada, ada_account):
    first = change_consent(actor=actor_for(ada_account), patient_id=ada.pk, scope="network", decision="deny")
    change_consent(actor=actor_for(ada_account), patient_id=ada.pk, scope="network", decision="default")
    choices = ig_queries.consent_history(ada)
    assert ig_queries.choices_as_of(choices, first.recorded_at - timedelta(seconds=1)) == {}
    assert ig_queries.choices_as_of(choices, first.recorded_at) == {first.key: first}
    assert ig_queries.choices_as_of(choices, timezone.now()) == {}


# --- What IG pages never show ---------------------------------------------------------


def test_no_page_puts_an_nhs_number_in_a_url_or_shows_clinical_content(ig, gp, ada, ada_account, clinician):
    read(clinician, ada)
    refuse_sharing(ada)
    break_glass(clinician, ada, "Collapsed at home")
    staff_patient = make_patients(gp, 1, start=200001)[0]
    link_record(clinician, staff_patient)
    read(clinician, staff_patient)
    numbers = [p.nhs_number for p in Patient.objects.all()]
    pages = [ig.get(url) for url in all_ig_urls(ada) if "export" not in url]
    pages.append(ig.get(ig.post(reverse("ig:search"), {"nhs_number": ada.nhs_number})["Location"]))
    for response in pages:
        html = response.content.decode()
        # Items by name only: never the recorded wording's code display or a date they hold.
        assert CONDITION_DISPLAY not in html
        assert "1 May 2024" not in html
        assert "2024-05-01" not in html
        for url in urls_in(html):
            for number in numbers:
                assert number not in url, url
    # The FHIR export holds references only; the CSV names items and patients (see below).
    body = ig.get(reverse("ig:export_fhir")).content.decode()
    assert CONDITION_DISPLAY not in body
    assert "High blood pressure" not in body
    assert all(number not in body for number in numbers)


# --- Exports --------------------------------------------------------------------------


def test_the_csv_export_has_its_columns_and_is_audited(ig, ig_user, ada, clinician):
    entries = read(clinician, ada)
    response = ig.get(reverse("ig:export_csv"), {"action": "record.read"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ig_queries.CSV_COLUMNS
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["action"] == "record.read"
    assert row["patient_id"] == str(ada.pk)
    assert row["organisation_ods_code"] == "RX100"
    assert row["entry_count"] == str(len(entries))
    assert row["actor_label"] == clinician.email
    export = AuditEvent.objects.filter(action="audit.export").latest("seq")
    assert export.actor_id == ig_user.pk
    assert export.detail == {"filters": {"action": "record.read"}, "format": "csv", "count": 1}


def test_the_fhir_export_is_a_valid_r4_bundle_of_balp_audit_events(ig, ada, ada_account, clinician):
    from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
    from fhir.resources.R4B.bundle import Bundle

    read(clinician, ada)
    change_consent(actor=actor_for(ada_account), patient_id=ada.pk, scope="network", decision="deny")
    with pytest.raises(NotFound):
        read(clinician, ada)
    break_glass(clinician, ada, "Unconscious in A&E")
    read(clinician, ada)

    response = ig.get(reverse("ig:export_fhir"), {"patient": ada.pk.hex})
    assert response["Content-Type"] == "application/fhir+json"
    data = json.loads(response.content)
    Bundle.model_validate(data)
    assert data["type"] == "searchset"
    assert data["total"] == len(data["entry"]) == AuditEvent.objects.filter(patient_id=ada.pk).count()
    for entry in data["entry"]:
        FhirAuditEvent.model_validate(entry["resource"])

    reads = [e["resource"] for e in data["entry"] if e["resource"]["subtype"][-1]["code"] == "record.read"]
    assert len(reads) == 3
    emergency, denied, first = reads  # newest first
    assert first["type"]["code"] == "110110"
    assert first["type"]["system"] == "http://dicom.nema.org/resources/ontology/DCM"
    assert first["subtype"][0] == {"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}
    assert first["action"] == "R"
    assert first["outcome"] == "0"
    assert denied["outcome"] == "4"
    person, organisation = first["agent"]
    assert person["requestor"] is True
    assert person["who"]["display"] == clinician.email
    assert person["who"]["identifier"]["value"] == str(clinician.pk)
    assert person["purposeOfUse"][0]["coding"][0]["code"] == "TREAT"
    assert emergency["agent"][0]["purposeOfUse"][0]["coding"][0]["code"] == "ETREAT"
    assert organisation["who"]["identifier"] == {
        "system": "https://fhir.nhs.uk/Id/ods-organization-code",
        "value": "RX100",
    }
    assert first["source"]["observer"]["display"] == "Patient Record Portal"
    assert first["entity"][0]["what"] == {"reference": f"Patient/{ada.pk}"}
    assert len(first["entity"]) == 1 + len(AuditEvent.objects.get(seq=int_seq(first, data)).entries)
    assert CONDITION_DISPLAY not in response.content.decode()


def int_seq(resource, data):
    """The seq of the trail event an exported AuditEvent came from (by its id)."""
    for event in AuditEvent.objects.all():
        if ig_queries.fhir_id(event) == resource["id"]:
            return event.seq
    raise AssertionError("no such event")


def test_an_invalid_export_search_is_not_found(ig):
    assert ig.get(reverse("ig:export_csv"), {"date_from": "not-a-date"}).status_code == 404


# --- Break-glass review ---------------------------------------------------------------


def test_the_queue_lists_unreviewed_openings_with_their_reads(ig, gp, clinician):
    ada, bob = make_patients(gp, 2)
    refuse_sharing(ada)
    refuse_sharing(bob)
    first = break_glass(clinician, ada, "Unconscious in A&E")
    read(clinician, ada)
    read(clinician, ada)
    second = declare_break_glass(
        actor=actor_for(clinician), patient_id=bob.pk, reason_code="clinical_need", reason_text="Needs it now"
    )
    response = ig.get(reverse("ig:break_glass"))
    pending = response.context["pending"]
    assert [item.glass for item in pending] == [first, second]  # oldest first
    assert [item.reads for item in pending] == [2, 0]
    html = response.content.decode()
    assert "Unconscious in A&amp;E" in html
    assert reverse("ig:review", args=[first.pk]) in html


def test_a_verdict_is_recorded_and_a_second_one_refused(ig, ada, clinician):
    refuse_sharing(ada)
    glass = break_glass(clinician, ada, "Unconscious in A&E")
    url = reverse("ig:review", args=[glass.pk])
    prefix = f"bg-{glass.pk}"
    response = ig.post(url, {f"{prefix}-verdict": "appropriate", f"{prefix}-note": "Seen in A&E notes"})
    assert response.status_code == 302
    assert BreakGlassReview.objects.get(break_glass=glass).verdict == "appropriate"
    assert AuditEvent.objects.filter(action="breakglass.review").count() == 1

    after = ig.get(reverse("ig:break_glass"))
    assert after.context["pending"] == []
    assert [i.glass for i in after.context["reviewed_items"]] == [glass]

    again = ig.post(url, {f"{prefix}-verdict": "not_appropriate", f"{prefix}-note": "changed my mind"})
    assert again.status_code == 200
    html = again.content.decode()
    assert "nhsuk-error-summary" in html
    assert "already been reviewed" in html
    assert BreakGlassReview.objects.get(break_glass=glass).verdict == "appropriate"


def test_not_appropriate_needs_a_note(ig, ada, clinician):
    refuse_sharing(ada)
    glass = break_glass(clinician, ada, "Unconscious in A&E")
    prefix = f"bg-{glass.pk}"
    response = ig.post(reverse("ig:review", args=[glass.pk]), {f"{prefix}-verdict": "not_appropriate"})
    assert response.status_code == 200
    assert "Say why the access was not appropriate" in response.content.decode()
    assert not BreakGlassReview.objects.exists()
    missing = ig.post(reverse("ig:review", args=[glass.pk]), {})
    assert missing.status_code == 200
    assert "nhsuk-error-summary" in missing.content.decode()


def test_a_verdict_on_an_unknown_opening_is_not_found(ig):
    assert not BreakGlass.objects.exists()
    response = ig.post(reverse("ig:review", args=[999]), {"bg-999-verdict": "appropriate"})
    assert response.status_code == 404


# --- Signals --------------------------------------------------------------------------


def test_a_clinician_reading_eleven_unrelated_patients_is_a_signal(ig, gp, hospital, clinician, settings):
    settings.UNUSUAL_ACCESS_PATIENTS = 10
    patients = make_patients(gp, 11)
    for patient in patients:
        read(clinician, patient)
    modest = ClinicianFactory(email="dr.moss@hospital.example", organisation=hospital)
    for patient in patients[:10]:
        read(modest, patient)

    response = ig.get(reverse("ig:signals"))
    unrelated = response.context["unrelated"]
    assert [(u.actor_label, u.organisation, u.patients) for u in unrelated] == [
        (clinician.email, hospital, 11)
    ]
    assert clinician.email in response.content.decode()


def test_patients_the_readers_organisation_holds_are_not_unrelated(gp, hospital, clinician, settings):
    settings.UNUSUAL_ACCESS_PATIENTS = 10
    patients = make_patients(gp, 11)
    # The hospital holds something for one of them: ten unrelated remain, not more than ten.
    make_patients(hospital, 1, start=100001)
    for patient in patients:
        read(clinician, patient)
    assert ig_queries.unrelated_access() == []


def test_reads_of_a_staff_members_own_record_are_a_signal(ig, gp, hospital, clinician):
    colleague = ClinicianFactory(email="nurse.hill@hospital.example", organisation=hospital)
    own, theirs = make_patients(gp, 2, start=300001)
    link_record(clinician, own)
    link_record(colleague, theirs)
    read(clinician, own)
    read(clinician, theirs)

    response = ig.get(reverse("ig:signals"))
    found = {(r.staff_user, r.own) for r in response.context["staff_reads"]}
    assert found == {(clinician, True), (colleague, False)}
    page = response.content.decode()
    assert "Their own record" in page
    # Whose record it is: the patient by NHS number, never the record's internal id.
    assert f"NHS number {own.nhs_number[:3]} {own.nhs_number[3:6]} {own.nhs_number[6:]}" in page
    assert str(own.pk)[:8] not in page.replace(str(own.pk), "")


def test_refused_reads_are_counted_per_user(ig, ada, ada_account, clinician):
    change_consent(actor=actor_for(ada_account), patient_id=ada.pk, scope="network", decision="deny")
    for _ in range(3):
        with pytest.raises(NotFound):
            read(clinician, ada)
    probing = ig.get(reverse("ig:signals")).context["probing"]
    assert [(p.actor_label, p.denied) for p in probing] == [(clinician.email, 3)]


# --- The way in -----------------------------------------------------------------------


def test_the_home_page_links_ig_officers_to_the_console(client, ig_user, clinician):
    client.force_login(ig_user)
    assert reverse("ig:search") in client.get("/").content.decode()
    client.force_login(clinician)
    assert reverse("ig:search") not in client.get("/").content.decode()


def test_every_ig_page_links_to_the_four_areas(ig, ada):
    html = ig.get(reverse("ig:signals")).content.decode()
    for name in ("ig:search", "ig:find_patient", "ig:break_glass"):
        assert f'href="{reverse(name)}"' in html


# --- Items withheld from patients -----------------------------------------------------


def test_withheld_items_are_listed_with_their_reasons_but_not_their_content(ig, ada, gp):
    from consent.services import release_withholding, withhold_from_patient

    owner = ClinicianFactory(email="dr.gp@gp.example", organisation=gp)
    entries = list(ada.entries.filter(resource_type="Condition"))
    held = withhold_from_patient(
        actor=actor_for(owner), entry=entries[0], reason="Result to be discussed face to face first"
    )
    page = ig.get(reverse("ig:withheld")).content.decode()
    assert "Result to be discussed face to face first" in page
    assert "Withheld</strong>" in page
    assert entries[0].display not in page
    assert f"NHS number {ada.nhs_number[:3]} {ada.nhs_number[3:6]}" in page
    assert str(ada.pk)[:8] not in page.replace(str(ada.pk), "")
    release_withholding(actor=actor_for(owner), withholding=held)
    page = ig.get(reverse("ig:withheld")).content.decode()
    assert "Released" in page


@pytest.mark.parametrize(
    ("date_from", "date_to"), [("", "9999-12-31"), ("0001-01-01", ""), ("9999-12-31", "9999-12-31")]
)
def test_extreme_dates_are_answered_not_crashed(ig, date_from, date_to):
    response = ig.get(reverse("ig:search"), {"date_from": date_from, "date_to": date_to})
    assert response.status_code in (200, 400)


def test_every_action_the_portal_writes_has_words_in_the_console():
    """The search form offers, and the results name in words, every action any part of
    the portal writes to the trail: found in the code that writes them."""
    from pathlib import Path

    from accuracy.services import STEPS
    from consent.ig_queries import ACTION_LABELS
    from consent.policy import Action

    root = Path(__file__).resolve().parents[2]
    sources = "\n".join(
        path.read_text()
        for app in ("accounts", "accuracy", "api", "consent", "phr", "audit")
        for path in (root / app).rglob("*.py")
        if "migrations" not in path.parts
    )
    written = {action.value for action in Action}
    for pattern in (
        r'audit\.record\(\s*"([a-z_.]+)"',
        r'_record\(\s*"([a-z_.]+)"',
        r'_audit\(\s*"([a-z_.]+)"',
        r'_ACTION = "([a-z_.]+)"',
    ):
        written |= set(re.findall(pattern, sources))
    steps = set(STEPS) | set(re.findall(r'_advance\(\s*request,\s*actor,\s*"([a-z_]+)"', sources))
    written |= {f"correction.{step}" for step in steps}
    assert len(written) > 30
    assert sorted(written - set(ACTION_LABELS)) == []
