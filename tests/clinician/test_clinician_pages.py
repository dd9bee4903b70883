"""The clinician pages: who reaches them, finding a patient without an NHS number in any
address, reading only what the policy permits, and emergency (break-glass) access."""

import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.access import ACTING_FOR_SESSION_KEY
from accounts.models import Notification
from audit.models import AuditEvent
from consent.models import BreakGlass, BreakGlassReason, Decision, Scope
from consent.policy import actor_for
from consent.services import change_consent
from phr.models import Category, RecordEntry
from phr.render.dates import day_and_time
from tests.clinician.network import NHS_NUMBER, UNKNOWN_NHS_NUMBER, build_record
from tests.personas import ClinicianFactory, PatientUserFactory, UserFactory
from web.clinician.record import PAGE_SIZE
from web.common import pretty_json

pytestmark = pytest.mark.django_db

FIND = reverse("clinician:find_patient")
CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]*"')
ADDRESSES = re.compile(r'(?:href|action)="([^"]*)"')


def record_url(patient_id) -> str:
    return reverse("clinician:record", kwargs={"patient_id": patient_id})


def emergency_url(patient_id) -> str:
    return reverse("clinician:emergency_access", kwargs={"patient_id": patient_id})


def entry_url(patient_id, entry_id) -> str:
    return reverse("clinician:entry", kwargs={"patient_id": patient_id, "entry_id": entry_id})


def assert_no_nhs_number_in_addresses(response) -> None:
    """No NHS number, spaced or not, in any link, form action or redirect."""
    addresses = ADDRESSES.findall(response.content.decode())
    if response.has_header("Location"):
        addresses.append(response["Location"])
    for address in addresses:
        digits = re.sub(r"\D", "", address)
        for number in (NHS_NUMBER, UNKNOWN_NHS_NUMBER):
            assert number not in digits, address


@pytest.fixture
def ada(gp, hospital):
    return build_record(gp, hospital)


@pytest.fixture
def ada_user(ada):
    return PatientUserFactory(email="ada@example.com", patient=ada)


@pytest.fixture
def ada_actor(ada_user):
    return actor_for(ada_user)


@pytest.fixture
def dr_hospital(hospital):
    return ClinicianFactory(email="dr.bell@hospital.example", organisation=hospital)


@pytest.fixture
def dr_mind(mental_health_trust):
    return ClinicianFactory(email="dr.moss@mind.example", organisation=mental_health_trust)


def deny(actor, patient, *, organisation=None, category=""):
    scope = {
        (True, True): Scope.ORGANISATION_CATEGORY,
        (True, False): Scope.ORGANISATION,
        (False, True): Scope.CATEGORY,
        (False, False): Scope.NETWORK,
    }[(organisation is not None, bool(category))]
    return change_consent(
        actor=actor,
        patient_id=patient.pk,
        scope=scope,
        decision=Decision.DENY,
        organisation=organisation,
        category=category,
    )


def without_csrf(content: bytes) -> bytes:
    return CSRF.sub(b"", content)


# --- Who reaches the pages ----------------------------------------------------------


def every_page(patient_id=None):
    patient_id = patient_id or uuid.uuid4()
    return [
        FIND,
        record_url(patient_id),
        emergency_url(patient_id),
        entry_url(patient_id, uuid.uuid4()),
    ]


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for url in every_page():
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("role", ["patient", "ig_officer"])
def test_patients_and_ig_officers_find_no_clinician_pages(client, ada, role):
    user = UserFactory(email=f"{role}@example.com", role=role)
    client.force_login(user)
    for url in every_page(ada.pk):
        assert client.get(url).status_code == 404
    assert client.post(FIND, {"nhs_number": NHS_NUMBER}).status_code == 404


def test_a_clinician_without_two_factor_authentication_is_sent_to_set_it_up(client, hospital):
    client.force_login(
        ClinicianFactory(email="new@hospital.example", organisation=hospital, second_factor=False)
    )
    response = client.get(FIND)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")


# --- Finding a patient --------------------------------------------------------------


def test_the_nhs_number_search_leads_to_the_patients_uuid_address(client, ada, dr_hospital):
    client.force_login(dr_hospital)
    response = client.post(FIND, {"nhs_number": "943 476 5919"})
    assert response.status_code == 302
    assert response["Location"] == record_url(ada.pk)
    assert_no_nhs_number_in_addresses(response)


def test_an_nhs_number_that_matches_nobody_looks_like_a_refusing_patient(client, ada, dr_hospital):
    client.force_login(dr_hospital)
    first = client.post(FIND, {"nhs_number": UNKNOWN_NHS_NUMBER})
    again = client.post(FIND, {"nhs_number": UNKNOWN_NHS_NUMBER})

    # Like a real patient's, the address is stable, and it names no NHS number.
    assert first.status_code == 302
    assert first["Location"] == again["Location"]
    assert first["Location"] != record_url(ada.pk)
    assert_no_nhs_number_in_addresses(first)
    page = client.get(first["Location"])
    assert page.status_code == 404
    assert b"You cannot see this record" in page.content


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("", "Enter the patient&#x27;s NHS number"),
        ("943476591", "Enter an NHS number that is 10 digits long"),
        ("94347659AB", "Enter an NHS number using numbers only"),
        ("9434765918", "fails its check digit"),
    ],
)
def test_an_invalid_nhs_number_is_named_in_the_error_summary(client, dr_hospital, typed, problem):
    client.force_login(dr_hospital)
    response = client.post(FIND, {"nhs_number": typed})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="nhsuk-error-summary"' in html
    assert 'href="#id_nhs_number"' in html
    assert problem in html
    assert html.count(problem) == 2  # in the summary and beside the field
    assert "<title>Error: Find a patient" in html
    assert_no_nhs_number_in_addresses(response)


def test_the_search_page_is_never_a_get_with_the_number(client, dr_hospital):
    client.force_login(dr_hospital)
    response = client.get(FIND, {"nhs_number": NHS_NUMBER})
    assert response.status_code == 200
    assert 'method="post"' in response.content.decode()
    assert NHS_NUMBER.encode() not in response.content


def test_a_clinician_of_several_organisations_chooses_only_among_their_own(client, gp, hospital, dr_gp):
    from phr.models import Organisation

    both = ClinicianFactory(email="locum@example.com", organisation=[gp, hospital])
    stranger = Organisation.objects.create(ods_code="Z999", name="Elsewhere Clinic")
    client.force_login(both)
    page = client.get(FIND).content.decode()
    assert "Acting for" in page
    assert "Elsewhere Clinic" not in page

    client.post(reverse("clinician:acting_for"), {"organisation": hospital.pk})
    assert client.session[ACTING_FOR_SESSION_KEY] == hospital.pk
    assert "You are acting for <strong>City Teaching Hospitals" in client.get(FIND).content.decode()

    client.post(reverse("clinician:acting_for"), {"organisation": stranger.pk})
    assert client.session[ACTING_FOR_SESSION_KEY] == hospital.pk

    # A membership that ends takes its choice with it.
    both.memberships.filter(organisation=hospital).delete()
    assert "You are acting for <strong>Riverside Surgery" in client.get(FIND).content.decode()
    assert ACTING_FOR_SESSION_KEY not in client.session


def test_a_clinician_of_one_organisation_is_offered_no_choice(client, dr_gp):
    client.force_login(dr_gp)
    page = client.get(FIND).content.decode()
    assert "Change organisation" not in page
    assert "You are acting for <strong>Riverside Surgery" in page


# --- Reading the record -------------------------------------------------------------


def test_the_record_shows_every_shared_item_with_its_owner_date_and_status(client, ada, dr_hospital):
    client.force_login(dr_hospital)
    response = client.get(record_url(ada.pk))
    html = response.content.decode()

    assert response.status_code == 200
    assert "OKAFOR, Ada" in html
    assert "4 March 1971" in html
    assert "943 476 5919" in html
    for display in ("Hypertensive disorder", "Depressive disorder", "Fracture of wrist", "Serum potassium"):
        assert display in html
    assert "Riverside Surgery" in html
    assert "City Teaching Hospitals" in html
    assert "20 August 2024" in html
    assert '<strong class="nhsuk-tag nhsuk-tag--purple">Mental health</strong>' in html
    assert "Some of this patient's record is not shared" not in html
    assert "Sensitive records (such as sexual health and safeguarding) stay with the organisation" in html
    assert_no_nhs_number_in_addresses(response)


def test_an_entry_made_in_error_is_labelled_and_never_shown_as_current(client, ada, dr_hospital):
    client.force_login(dr_hospital)
    html = client.get(record_url(ada.pk)).content.decode()
    row = next(r for r in html.split("<tr") if "Asthma" in r)
    status = row[row.rindex("<td") :]
    assert "Entered in error" in status
    assert "Active" not in status
    assert html.index("Past problems") < html.index("Asthma")

    asthma = RecordEntry.objects.get(display="Asthma")
    page = client.get(entry_url(ada.pk, asthma.pk)).content.decode()
    assert "Entered in error" in page
    assert "not a current part of the record" in page


def test_every_read_is_audited_with_the_entries_shown(client, ada, dr_hospital):
    client.force_login(dr_hospital)
    client.get(record_url(ada.pk))
    reads = AuditEvent.objects.filter(action="record.read", actor=dr_hospital).order_by("seq")
    # The items of the record in one event, the patient's own details (the banner) in another.
    event = next(e for e in reads if (e.detail or {}).get("summary") != "count" and "purpose" not in e.detail)
    shown = RecordEntry.objects.filter(patient=ada).exclude(resource_type="Patient")
    assert event.outcome == "permit"
    assert event.purpose == "direct-care"
    assert sorted(event.entries) == sorted(f"{e.pk.hex}:{e.version}" for e in shown)
    assert event.organisation.ods_code == "RX100"

    one = shown.get(display="Fracture of wrist")
    client.get(entry_url(ada.pk, one.pk))
    reads = AuditEvent.objects.filter(action="record.read", actor=dr_hospital).order_by("-seq")
    event = next(e for e in reads if "purpose" not in (e.detail or {}))
    assert event.entries == [f"{one.pk.hex}:{one.version}"]


def test_filters_by_kind_and_owner_narrow_what_is_read(client, ada, gp, dr_hospital):
    client.force_login(dr_hospital)
    html = client.get(record_url(ada.pk), {"kind": "test-results"}).content.decode()
    assert "Serum potassium" in html
    assert "Hypertensive disorder" not in html

    html = client.get(record_url(ada.pk), {"owner": gp.pk}).content.decode()
    assert "Hypertensive disorder" in html
    assert "Fracture of wrist" not in html
    reads = AuditEvent.objects.filter(action="record.read").order_by("-seq")
    event = next(e for e in reads if (e.detail or {}).get("owner") and "summary" not in e.detail)
    items = RecordEntry.objects.filter(patient=ada, owner=gp).exclude(resource_type="Patient")
    assert len(event.entries) == items.count()
    assert event.detail["owner"] == gp.pk


def test_long_records_are_read_a_page_at_a_time(client, ada, hospital, dr_hospital):
    from phr.ingest import ingest_documents

    many = [
        {
            "resourceType": "Observation",
            "id": f"bp{n}",
            "status": "final",
            "subject": {"reference": "Patient/p1"},
            "code": {"text": f"Blood pressure reading {n}"},
            "effectiveDateTime": f"2020-01-{1 + n % 28:02d}",
        }
        for n in range(60)
    ]
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_NUMBER}],
    }
    ingest_documents(
        [
            (
                "bp.json",
                {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": r} for r in [patient, *many]],
                },
            )
        ],
        organisation=hospital,
    )
    total = RecordEntry.objects.filter(patient=ada, resource_type="Observation").count()
    client.force_login(dr_hospital)
    results = {"kind": "test-results"}

    first = client.get(record_url(ada.pk), results).content.decode()
    assert f"Items 1 to {PAGE_SIZE} of {total}" in first
    assert 'aria-label="Page 2"' in first
    second = client.get(record_url(ada.pk), {**results, "page": 2}).content.decode()
    assert f"Items {PAGE_SIZE + 1} to {total} of {total}" in second
    events = AuditEvent.objects.filter(action="record.read", actor=dr_hospital).order_by("seq")
    # Each page counts the record (an event that discloses no item), reads one page of
    # items, and reads the patient's own details for the banner.
    counted = [e for e in events if (e.detail or {}).get("summary") == "count"]
    reads = [e for e in events if (e.detail or {}).get("kind") and "summary" not in e.detail]
    assert [len(e.entries) for e in counted] == [0, 0]
    assert [len(e.entries) for e in reads] == [PAGE_SIZE, total - PAGE_SIZE]
    assert client.get(record_url(ada.pk), {**results, "page": "nonsense"}).status_code == 200


def test_a_denied_category_is_hidden_and_the_clinician_is_told_plainly(client, ada, ada_actor, dr_hospital):
    deny(ada_actor, ada, category=Category.MENTAL_HEALTH)
    client.force_login(dr_hospital)
    response = client.get(record_url(ada.pk))
    html = response.content.decode()

    assert "Depressive disorder" not in html
    assert "Hypertensive disorder" in html
    assert "Some of this patient's record is not shared with your organisation" in html
    assert f'href="{emergency_url(ada.pk)}"' in html
    depression = RecordEntry.objects.get(display="Depressive disorder")
    assert f"{depression.pk.hex}:" not in str(AuditEvent.objects.filter(action="record.read").last().entries)
    assert client.get(entry_url(ada.pk, depression.pk)).status_code == 404


def test_the_owning_organisation_always_sees_its_own_items(client, ada, ada_actor, gp, dr_gp):
    deny(ada_actor, ada, category=Category.MENTAL_HEALTH)
    deny(ada_actor, ada, organisation=gp)
    client.force_login(dr_gp)
    html = client.get(record_url(ada.pk)).content.decode()

    assert "Depressive disorder" in html
    assert "Hypertensive disorder" in html
    assert "Fracture of wrist" not in html
    assert "Some of this patient's record is not shared with your organisation" in html


def test_a_refusing_patient_and_a_missing_one_get_the_same_refusal(
    client, ada, ada_actor, mental_health_trust, dr_mind
):
    deny(ada_actor, ada, organisation=mental_health_trust)
    client.force_login(dr_mind)

    refused = client.get(record_url(ada.pk))
    missing_id = uuid.uuid4()
    missing = client.get(record_url(missing_id))

    assert refused.status_code == missing.status_code == 404
    assert b"You cannot see this record" in refused.content
    assert b"Ada" not in refused.content
    assert b"Okafor" not in refused.content
    same = without_csrf(refused.content).replace(str(ada.pk).encode(), b"PATIENT")
    assert same == without_csrf(missing.content).replace(str(missing_id).encode(), b"PATIENT")
    assert f'href="{emergency_url(ada.pk)}"'.encode() in refused.content

    denials = AuditEvent.objects.filter(action="record.read", outcome="deny", actor=dr_mind)
    assert denials.count() == 2


# --- Emergency (break-glass) access -------------------------------------------------


@pytest.fixture
def refused_to_mind(ada, ada_actor, mental_health_trust):
    deny(ada_actor, ada, organisation=mental_health_trust)
    return ada


def test_the_emergency_access_form_warns_that_patient_and_ig_are_told(client, refused_to_mind, dr_mind):
    client.force_login(dr_mind)
    html = client.get(emergency_url(refused_to_mind.pk)).content.decode()
    assert "The patient and information governance will be told" in html
    for reason in BreakGlassReason:
        assert f'value="{reason.value}"' in html


@pytest.mark.parametrize(
    ("form", "field", "problem"),
    [
        ({"reason_code": "emergency", "reason_text": "unwell"}, "id_reason_text", "at least 10 characters"),
        ({"reason_text": "Unconscious in the emergency department"}, "id_reason_code", "Choose the reason"),
    ],
)
def test_an_unjustified_emergency_access_is_refused_naming_the_field(
    client, refused_to_mind, dr_mind, form, field, problem
):
    client.force_login(dr_mind)
    response = client.post(emergency_url(refused_to_mind.pk), form)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="nhsuk-error-summary"' in html
    assert f'href="#{field}"' in html
    assert problem in html
    assert not BreakGlass.objects.exists()


def test_emergency_access_for_a_missing_patient_gets_the_same_refusal(client, refused_to_mind, dr_mind):
    client.force_login(dr_mind)
    missing_id = uuid.uuid4()
    response = client.post(
        emergency_url(missing_id),
        {"reason_code": "emergency", "reason_text": "Unconscious in A&E, no history"},
    )
    assert response.status_code == 404
    refusal = client.get(record_url(missing_id))
    assert without_csrf(response.content) == without_csrf(refusal.content)


def test_emergency_access_opens_the_whole_record_for_a_limited_time(
    client, refused_to_mind, dr_mind, ada_user, django_capture_on_commit_callbacks
):
    ada = refused_to_mind
    client.force_login(dr_mind)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            emergency_url(ada.pk),
            {
                "reason_code": "emergency",
                "reason_text": "Unconscious in the emergency department, no history",
            },
        )
    assert response.status_code == 302
    assert response["Location"] == record_url(ada.pk)
    glass = BreakGlass.objects.get()

    page = client.get(record_url(ada.pk))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="emergency-access-banner"' in html
    assert "Unconscious in the emergency department" in html
    assert day_and_time(glass.expires_at) in html
    for display in ("Hypertensive disorder", "Depressive disorder", "Fracture of wrist"):
        assert display in html
    reads = AuditEvent.objects.filter(action="record.read", actor=dr_mind, outcome="permit").order_by("seq")
    read = [e for e in reads if "summary" not in e.detail and "purpose" not in e.detail][-1]
    assert read.purpose == "emergency"
    assert read.detail["break_glass"] == glass.pk
    assert (
        len(read.entries) == RecordEntry.objects.filter(patient=ada).exclude(resource_type="Patient").count()
    )
    assert AuditEvent.objects.filter(action="breakglass.open", actor=dr_mind).count() == 1

    # The patient is told in the portal and by email.
    note = Notification.objects.get(user=ada_user)
    assert note.kind == Notification.Kind.BREAK_GLASS
    assert "City Mind Partnership" in note.body
    assert [m.to for m in mail.outbox] == [[ada_user.email]]

    one = RecordEntry.objects.get(display="Depressive disorder")
    assert 'id="emergency-access-banner"' in client.get(entry_url(ada.pk, one.pk)).content.decode()

    with time_machine.travel(glass.expires_at + timedelta(seconds=1)):
        client.logout()  # an hour idle signs anyone out: sign in afresh
        client.force_login(dr_mind)
        closed = client.get(record_url(ada.pk))
    assert closed.status_code == 404
    assert b"You cannot see this record" in closed.content


def test_the_entry_page_shows_the_stored_json_and_its_versions(client, ada, dr_hospital):
    client.force_login(dr_hospital)
    potassium = RecordEntry.objects.get(display="Serum potassium")
    html = client.get(entry_url(ada.pk, potassium.pk)).content.decode()
    assert "<pre" in html
    assert "&quot;resourceType&quot;: &quot;Observation&quot;" in html
    assert "City Teaching Hospitals (RX100)" in html
    assert "1 (this is version 1)" in html


def test_an_entry_of_another_patient_is_not_found(client, ada, dr_hospital):
    client.force_login(dr_hospital)
    assert client.get(entry_url(ada.pk, uuid.uuid4())).status_code == 404


def test_pretty_json_keeps_every_number_as_it_was_written():
    assert pretty_json('{"value": 4.10, "n": [1e5, -0.000120, 7]}') == (
        '{\n  "value": 4.10,\n  "n": [\n    1e5,\n    -0.000120,\n    7\n  ]\n}'
    )


def test_declaring_emergency_access_again_returns_the_open_one(client, refused_to_mind, dr_mind, ada_user):
    """A retry (a timeout, a double click) opens nothing new: one opening, one audit event,
    one message to the patient, and the time is not extended."""
    client.force_login(dr_mind)
    reason = {
        "reason_code": "emergency",
        "reason_text": "Unconscious in the emergency department, no history",
    }
    assert client.post(emergency_url(refused_to_mind.pk), reason).status_code == 302
    glass = BreakGlass.objects.get()
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        again = client.post(emergency_url(refused_to_mind.pk), reason)
    assert again.status_code == 302
    assert again["Location"] == record_url(refused_to_mind.pk)
    assert list(BreakGlass.objects.values_list("pk", "expires_at")) == [(glass.pk, glass.expires_at)]
    assert AuditEvent.objects.filter(action="breakglass.open", actor=dr_mind).count() == 1
    assert Notification.objects.filter(user=ada_user, kind=Notification.Kind.BREAK_GLASS).count() == 1
