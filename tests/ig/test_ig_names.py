"""The IG console names people and items: patients by name and NHS number (never their
id), staff by name and role, items read by name (never what they say); the break-glass
card says what the patient had chosen when it opened; the patient's own reads stand apart."""

import csv
import io
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from consent import ig_queries
from consent.policy import actor_for, open_record
from consent.services import change_consent
from tests.ig.test_ig_console import break_glass, make_patients, read
from tests.personas import ClinicianFactory, IGOfficerFactory, PatientUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(gp):
    patient = make_patients(gp, 1)[0]
    patient.family_name, patient.given_names = "Lovelace", "Ada"
    patient.save()
    return patient


@pytest.fixture
def ada_account(ada):
    return PatientUserFactory(email="ada@example.com", patient=ada)


@pytest.fixture
def clinician(hospital):
    user = ClinicianFactory(email="dr.bell@hospital.example", organisation=hospital)
    user.first_name, user.last_name = "Alice", "Bell"
    user.save()
    Membership.objects.filter(user=user, organisation=hospital).update(job_title="Emergency physician")
    return user


@pytest.fixture
def ig(client):
    client.force_login(IGOfficerFactory(email="ig@network.example"))
    return client


def spaced(number):
    return f"{number[:3]} {number[3:6]} {number[6:]}"


def test_search_results_name_the_patient_and_nhs_number_never_the_id(ig, ada, clinician):
    read(clinician, ada)
    html = ig.get(reverse("ig:search"), {"patient": ada.pk.hex}).content.decode()
    assert "LOVELACE, Ada" in html
    assert spaced(ada.nhs_number) in html
    assert "Showing events about <strong" in html
    text_outside_urls = html.replace(ada.pk.hex, "").replace(str(ada.pk), "")
    assert ada.pk.hex[:8] not in text_outside_urls
    assert reverse("ig:patient", args=[ada.pk]) in html  # the link still carries the id


def test_staff_are_named_with_their_role_and_organisation(ig, ada, clinician):
    read(clinician, ada)
    html = ig.get(reverse("ig:search"), {"action": "record.read"}).content.decode()
    assert "Alice Bell" in html
    assert "Emergency physician, City Teaching Hospitals (RX100)" in html


def test_a_user_without_a_name_is_shown_by_email_and_role(ig, ada, hospital):
    nameless = ClinicianFactory(email="locum@hospital.example", organisation=hospital)
    read(nameless, ada)
    html = ig.get(reverse("ig:search"), {"action": "record.read"}).content.decode()
    assert "locum@hospital.example" in html
    assert "Clinician or records staff, City Teaching Hospitals (RX100)" in html


def test_items_read_are_named_on_the_search_and_patient_pages(ig, ada, clinician):
    read(clinician, ada)
    for url in (reverse("ig:search") + f"?patient={ada.pk.hex}", reverse("ig:patient", args=[ada.pk])):
        html = ig.get(url).content.decode()
        assert "High blood pressure" in html
        assert "Personal details" in html
        assert "Hypertensive disorder" not in html  # the name, not the recorded wording or values


def test_item_names_are_batch_loaded_and_capped_at_ten_per_row(ada, clinician, django_assert_max_num_queries):
    entries = read(clinician, ada)
    refs = [f"{e.pk.hex}:{e.version}" for e in entries]
    with django_assert_max_num_queries(1):
        names = ig_queries.item_names(refs)
    assert sorted(names.values()) == ["High blood pressure", "Personal details"]
    row = ig_queries.EventRow(event=None, actor=None, patient=None, items=[f"Item {n:02}" for n in range(13)])
    assert len(row.items_shown) == 10
    assert row.items_more == 3


def test_the_patient_page_has_the_banner_and_no_internal_id(ig, ada, clinician):
    read(clinician, ada)
    response = ig.get(reverse("ig:patient", args=[ada.pk]))
    html = response.content.decode()
    assert 'id="patient-banner"' in html
    assert "LOVELACE, Ada" in html
    assert spaced(ada.nhs_number) in html
    assert str(ada.pk) not in html.replace(f'href="{reverse("ig:patient", args=[ada.pk])}', "")


def test_the_csv_carries_the_nhs_number_and_item_names(ig, ada, clinician):
    read(clinician, ada)
    response = ig.get(reverse("ig:export_csv"), {"action": "record.read"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["patient_nhs_number"] == ada.nhs_number
    assert row["item_names"] == "High blood pressure; Personal details"
    assert row["patient_id"] == str(ada.pk)  # the columns that were there stay


def test_the_break_glass_card_says_the_patient_withheld_seconds_before(ig, ada, ada_account, clinician):
    opened = timezone.now()
    with time_machine.travel(opened - timedelta(seconds=22), tick=False):
        change_consent(actor=actor_for(ada_account), patient_id=ada.pk, scope="network", decision="deny")
    with time_machine.travel(opened, tick=False):
        break_glass(clinician, ada)
        read(clinician, ada)
    html = ig.get(reverse("ig:break_glass")).content.decode()
    assert "The patient had withheld everything from every organisation 22 seconds before" in html
    assert "LOVELACE, Ada" in html
    assert spaced(ada.nhs_number) in html
    assert "High blood pressure" in html  # the items read under it, by name
    assert "Alice Bell" in html


def test_the_break_glass_card_counts_days_for_an_organisation_choice(
    ig, ada, ada_account, clinician, hospital
):
    opened = timezone.now()
    with time_machine.travel(opened - timedelta(days=3, hours=2), tick=False):
        change_consent(
            actor=actor_for(ada_account),
            patient_id=ada.pk,
            scope="organisation",
            organisation=hospital,
            decision="deny",
        )
    with time_machine.travel(opened, tick=False):
        break_glass(clinician, ada)
    html = ig.get(reverse("ig:break_glass")).content.decode()
    assert "The patient had withheld everything from this organisation 3 days before" in html


def test_a_break_glass_with_nothing_withheld_says_so(ig, ada, clinician, settings):
    settings.CONSENT_MODEL = "opt-in"  # not shared until the patient agrees: nothing withheld
    break_glass(clinician, ada)
    html = ig.get(reverse("ig:break_glass")).content.decode()
    assert "The patient had withheld nothing from this organisation: no choice, the default applied" in html


def test_interval_words():
    assert ig_queries.interval_words(timedelta(seconds=1)) == "1 second"
    assert ig_queries.interval_words(timedelta(seconds=22)) == "22 seconds"
    assert ig_queries.interval_words(timedelta(minutes=5, seconds=3)) == "5 minutes"
    assert ig_queries.interval_words(timedelta(hours=3)) == "3 hours"
    assert ig_queries.interval_words(timedelta(days=3, hours=2)) == "3 days"


def test_the_patients_own_reads_are_apart_from_staff_reads(ig, ada, ada_account, clinician):
    read(clinician, ada)
    open_record(actor_for(ada_account), ada.pk).read()
    response = ig.get(reverse("ig:patient", args=[ada.pk]))
    assert [r.event.actor_id for r in response.context["rows"]] == [clinician.pk]
    assert [r.event.actor_id for r in response.context["own_rows"]] == [ada_account.pk]
    html = response.content.decode()
    own = html.index("Reads by the patient and people acting for them")
    staff = html.index("Reads by staff and systems")
    own_table = html[html.index('id="own-access"') :]
    staff_table = html[html.index('id="staff-access"') : html.index('id="own-reads"')]
    assert "ada@example.com" in own_table
    assert "ada@example.com" not in staff_table
    assert "Alice Bell" in staff_table
    assert "Alice Bell" not in own_table
    assert staff < own


def test_each_ig_view_still_writes_its_own_event(ig, ada, clinician):
    from audit.models import AuditEvent

    read(clinician, ada)
    for url, action in (
        (reverse("ig:search") + "?action=record.read", "audit.search"),
        (reverse("ig:patient", args=[ada.pk]), "consent.read"),
        (reverse("ig:break_glass"), "audit.read"),
        (reverse("ig:export_csv"), "audit.export"),
    ):
        before = AuditEvent.objects.filter(action=action).count()
        response = ig.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        assert AuditEvent.objects.filter(action=action).count() == before + 1
