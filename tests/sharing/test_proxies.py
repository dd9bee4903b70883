"""Issue 12 part 4, the pages: a patient lets someone act for them and ends it; the
proxy chooses whose record they look at and acts within their grant; the practice gives
a parent access to a child; access for a child ends at a review age."""

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.access import PROXY_SESSION_KEY
from accounts.models import Notification, ProxyAccess
from audit.models import AuditEvent
from consent import proxies
from consent.policy import actor_for
from consent.proxies import Rights
from consent.share_models import ShareLink
from phr.models import Organisation, OrganisationKind, Patient, RecordEntry
from phr.nhs_number import ODS_SYSTEM
from tests.feeds import labelled_problem as condition
from tests.feeds import patient_resource, send
from tests.personas import ClinicianFactory, PatientUserFactory

pytestmark = pytest.mark.django_db

NHS = "9990000018"


def born(years: int) -> date:
    """A birth date that makes someone ``years`` old today (and not a day more)."""
    today = timezone.localdate()
    return today.replace(year=today.year - years) - timedelta(days=1)


@pytest.fixture
def mia(gp) -> Patient:
    """A patient whose record the GP holds: a plain problem and a sexual-health one."""
    send(gp, patient_resource("p", NHS), condition("plain", "Asthma"), condition("sex", "Chlamydia", "SEX"))
    patient = Patient.objects.get(nhs_number=NHS)
    patient.given_names, patient.family_name, patient.birth_date = "Mia", "Jones", born(40)
    patient.save()
    return patient


@pytest.fixture
def mia_user(mia):
    return PatientUserFactory(email="mia@example.com", patient=mia)


@pytest.fixture
def ben(db):
    """Someone with an account of their own and no record linked to it."""
    return PatientUserFactory(email="ben@example.com", patient=None)


def until(days: int = 30):
    return timezone.now() + timedelta(days=days)


def grant(mia_user, rights: Rights | None = None) -> ProxyAccess:
    return proxies.grant_by_patient(
        actor=actor_for(mia_user),
        email="ben@example.com",
        rights=rights or Rights(),
        until=until(),
        reason="My husband helps",
    )


def acting(client, user, grant_id):
    client.force_login(user)
    response = client.post(reverse("portal:acting_for"), {"whose": str(grant_id)})
    assert response.status_code == 302
    return client


def day_fields(when: date) -> dict:
    return {"until_day": when.day, "until_month": when.month, "until_year": when.year}


# --- The patient's page ----------------------------------------------------------------


def test_a_patient_adds_a_proxy_and_sees_them_listed(client, mia_user, ben):
    client.force_login(mia_user)
    response = client.post(
        reverse("sharing:proxy_add"),
        {
            "email": "ben@example.com",
            "rights": ["see", "correct"],
            **day_fields(timezone.localdate() + timedelta(days=60)),
            "reason": "My husband helps me with appointments",
        },
    )
    assert response.status_code == 302
    made = ProxyAccess.objects.get()
    assert (made.proxy, made.rights, made.relationship) == (ben, {"see", "correct"}, "chosen")
    page = client.get(reverse("sharing:proxies")).content.decode()
    assert "ben@example.com" in page
    assert "Ask for corrections to the record" in page
    assert "Manage sharing choices" not in page
    assert "My husband helps me with appointments" in page
    assert "Active" in page
    assert "End access" in page


def test_the_add_form_names_each_problem_beside_its_field(client, mia_user, ben):
    client.force_login(mia_user)
    response = client.post(reverse("sharing:proxy_add"), {"email": "nobody@example.com", "reason": "Short"})
    page = response.content.decode()
    assert response.status_code == 400
    assert 'href="#until-day">Enter the date their access ends' in page
    assert ProxyAccess.objects.count() == 0
    # The domain's refusal comes back on the field it is about.
    response = client.post(
        reverse("sharing:proxy_add"),
        {
            "email": "nobody@example.com",
            "rights": ["see"],
            **day_fields(timezone.localdate() + timedelta(days=5)),
            "reason": "Helps me a lot",
        },
    )
    assert 'href="#id_email">There is no patient account with this email address' in response.content.decode()


def test_the_patients_page_links_from_the_sharing_pages(client, mia_user):
    client.force_login(mia_user)
    assert reverse("sharing:proxies") in client.get(reverse("sharing:choices")).content.decode()


# --- Acting for someone ------------------------------------------------------------------


def test_a_proxy_chooses_whose_record_and_reads_it_as_their_proxy(client, mia_user, ben):
    made = grant(mia_user)
    client.force_login(ben)
    home = client.get(reverse("home")).content.decode()
    assert "You can act for: Mia Jones" in home
    assert reverse("portal:acting_for") in home
    chooser = client.get(reverse("portal:acting_for")).content.decode()
    assert "Mia Jones" in chooser
    assert "My own record" not in chooser
    acting(client, ben, made.pk)
    assert client.session[PROXY_SESSION_KEY] == made.pk
    page = client.get(reverse("record:kind", kwargs={"kind": "problems"})).content.decode()
    assert "Asthma" in page
    assert "You are acting for Mia Jones." in page
    event = AuditEvent.objects.filter(action="record.read", actor=ben).last()
    assert event.patient_id == mia_user.patient_link.patient_id
    assert "acting for the patient" in event.actor_label


def test_choosing_my_own_record_stops_acting_for_someone(client, mia_user, ben, gp):
    own = PatientUserFactory(email="kim@example.com")
    made = ProxyAccess.objects.create(
        patient=mia_user.patient_link.patient,
        proxy=own,
        relationship="chosen",
        reason="She helps me",
        ends_at=until(),
        granted_by=mia_user,
    )
    acting(client, own, made.pk)
    response = client.post(reverse("portal:acting_for"), {"whose": "own"})
    assert response.status_code == 302
    assert PROXY_SESSION_KEY not in client.session
    assert "You are acting for" not in client.get(reverse("record:summary")).content.decode()


def test_the_chooser_refuses_a_grant_that_is_not_theirs(client, mia_user, ben):
    made = grant(mia_user)
    stranger = PatientUserFactory(email="eve@example.com")
    client.force_login(stranger)
    response = client.post(reverse("portal:acting_for"), {"whose": str(made.pk)})
    assert response.status_code == 400
    assert PROXY_SESSION_KEY not in client.session


def test_a_proxy_without_the_share_right_gets_no_sharing_choices(client, mia_user, ben):
    acting(client, ben, grant(mia_user, Rights(see=True)).pk)
    assert client.get(reverse("sharing:choices")).status_code == 404


def test_pages_offer_a_proxy_only_what_their_grant_lets_them_do(client, mia_user, ben):
    acting(client, ben, grant(mia_user, Rights(see=True)).pk)
    summary = client.get(reverse("record:summary")).content.decode()
    assert "Record of Mia Jones" in summary
    assert "Your record" not in summary
    assert "Their record" in summary
    for offered in ("Share my record", "Who has looked", "Their sharing choices", reverse("share:links")):
        assert offered not in summary, offered
    plain = RecordEntry.objects.get(fhir_id="plain")
    item = client.get(reverse("record:item", kwargs={"entry_id": plain.pk})).content.decode()
    assert 'id="report-link"' not in item
    assert "does not include asking for corrections" in item


def test_a_proxy_with_the_correct_and_share_rights_is_offered_them(client, mia_user, ben):
    acting(client, ben, grant(mia_user, Rights(see=True, correct=True, share=True)).pk)
    summary = client.get(reverse("record:summary")).content.decode()
    assert "Their sharing choices" in summary
    assert "Share my record" not in summary  # a proxy never makes share links
    plain = RecordEntry.objects.get(fhir_id="plain")
    item = client.get(reverse("record:item", kwargs={"entry_id": plain.pk})).content.decode()
    assert 'id="report-link"' in item


def test_the_patient_is_offered_everything(client, mia_user):
    client.force_login(mia_user)
    summary = client.get(reverse("record:summary")).content.decode()
    for offered in ("Your record", "Share my record", "Who has looked", "My sharing choices"):
        assert offered in summary, offered


def test_a_proxy_never_sees_a_sensitive_item_the_patient_sees(client, mia_user, ben):
    url = reverse("record:kind", kwargs={"kind": "problems"})
    client.force_login(mia_user)
    assert "Chlamydia" in client.get(url).content.decode()
    acting(client, ben, grant(mia_user).pk)
    page = client.get(url).content.decode()
    assert "Asthma" in page
    assert "Chlamydia" not in page
    sensitive = RecordEntry.objects.get(fhir_id="sex")
    assert client.get(reverse("record:item", kwargs={"entry_id": sensitive.pk})).status_code == 404


def test_a_see_only_proxy_reaches_no_page_of_what_stays_the_patients_or_needs_a_right(
    client, mia_user, ben, gp
):
    acting(client, ben, grant(mia_user, Rights(see=True)).pk)
    for url in (
        reverse("sharing:preview", kwargs={"organisation_id": gp.pk}),  # reads the sharing choices
        reverse("sharing:check_start"),
        reverse("sharing:check_items"),
        reverse("share:links"),
        reverse("share:new"),
    ):
        assert client.get(url).status_code == 404, url


def test_a_proxy_who_manages_sharing_never_decides_who_sees_the_sensitive_records(client, mia_user, ben, gp):
    from consent.models import ConsentChoice

    acting(client, ben, grant(mia_user, Rights(see=True, share=True)).pk)
    form = client.get(reverse("sharing:choices")).content.decode()
    assert 'value="sexual_health"' not in form
    assert 'value="mental_health"' not in form
    assert 'value="general"' in form
    refused = client.post(
        reverse("sharing:confirm"),
        {"scope": "category", "category": "sexual_health", "decision": "permit", "step": "save"},
    )
    assert refused.status_code == 400
    assert "Choose a kind of information from the list" in refused.content.decode()
    assert not ConsentChoice.objects.exists()
    saved = client.post(
        reverse("sharing:confirm"),
        {"scope": "organisation", "organisation": gp.pk, "decision": "deny", "step": "save"},
    )
    assert saved.status_code == 302
    choice = ConsentChoice.objects.get()
    assert choice.recorded_by == ben
    told = Notification.objects.get(user=mia_user)
    assert told.title == "Someone acting for you changed your sharing choices"
    assert "ben@example.com" in told.body


def test_a_proxy_makes_no_share_links_and_gives_no_one_access(client, mia_user, ben):
    acting(client, ben, grant(mia_user, Rights(see=True, correct=True, share=True)).pk)
    made = client.post(reverse("share:new"), {"label": "For the dentist", "scope": "full", "days": "7"})
    assert made.status_code in (403, 404)
    assert ShareLink.objects.count() == 0
    assert client.get(reverse("sharing:proxies")).status_code == 404
    added = client.post(
        reverse("sharing:proxy_add"),
        {
            "email": "mia@example.com",
            "rights": ["see"],
            **day_fields(timezone.localdate() + timedelta(days=5)),
            "reason": "Let me add more people",
        },
    )
    assert added.status_code == 404
    assert ProxyAccess.objects.count() == 1


def test_once_access_ends_the_proxy_acts_as_themselves(client, mia_user):
    kim = PatientUserFactory(email="kim@example.com")  # with a record of her own
    made = proxies.grant_by_patient(
        actor=actor_for(mia_user),
        email="kim@example.com",
        rights=Rights(),
        until=until(),
        reason="My sister helps",
    )
    item = reverse("record:item", kwargs={"entry_id": RecordEntry.objects.get(fhir_id="plain").pk})
    acting(client, kim, made.pk)
    assert client.get(item).status_code == 200

    patient = type(client)()
    patient.force_login(mia_user)
    assert patient.post(reverse("sharing:proxy_end", kwargs={"grant_id": made.pk})).status_code == 302
    made.refresh_from_db()
    assert made.ended_at is not None
    assert made.ended_by == mia_user

    # Kim is told on her next request, which acts for no one; after it she acts for
    # herself: Mia's item is not hers to see, and no banner says otherwise.
    told = client.get(item).content.decode()
    assert "Your access to act for someone else has ended" in told
    assert "Asthma" not in told
    assert client.get(item).status_code == 404
    assert "You are acting for" not in client.get(reverse("record:summary")).content.decode()


def test_a_form_opened_for_the_patient_never_lands_on_the_proxys_own_record_after_access_ends(
    client, mia_user
):
    """From the outside probe: the grant ends while the proxy has a form open; its POST
    acts for no one and the proxy is told, instead of saving on their own record."""
    from consent.models import ConsentChoice

    kim = PatientUserFactory(email="kim@example.com")  # with a record of her own
    made = proxies.grant_by_patient(
        actor=actor_for(mia_user),
        email="kim@example.com",
        rights=Rights(share=True),
        until=until(),
        reason="My sister helps",
    )
    acting(client, kim, made.pk)
    proxies.end_grant(actor=actor_for(mia_user), grant_id=made.pk)
    response = client.post(
        reverse("sharing:confirm"), {"scope": "network", "decision": "deny", "step": "save"}, follow=True
    )
    assert not ConsentChoice.objects.exists()
    assert "Your access to act for someone else has ended" in response.content.decode()


def test_a_see_only_proxy_changes_no_alert_choice_and_marks_no_check(client, mia_user, ben):
    from accounts.models import AccessAlertPreference
    from accuracy.models import RecordCheck

    acting(client, ben, grant(mia_user).pk)
    response = client.post(reverse("sharing:access_log"), {"alerts-mode": "emergency_only"})
    assert response.status_code == 404
    assert not AccessAlertPreference.objects.exists()
    entry = RecordEntry.objects.get(fhir_id="plain")
    marked = client.post(
        reverse("sharing:check_mark", kwargs={"entry_id": entry.pk}), {"outcome": "looks_right"}
    )
    assert marked.status_code == 404
    assert not RecordCheck.objects.exists()


def test_a_proxy_is_not_told_that_items_wait_for_review(client, mia_user, ben, gp):
    send(gp, condition("held", "Concern raised by a neighbour", "SDV"))
    patient = type(client)()
    patient.force_login(mia_user)
    assert "Some items are waiting" in patient.get(reverse("record:summary")).content.decode()
    acting(client, ben, grant(mia_user).pk)
    assert "Some items are waiting" not in client.get(reverse("record:summary")).content.decode()


def test_a_patient_cannot_end_someone_elses_grant(client, mia_user, ben):
    made = grant(mia_user)
    client.force_login(PatientUserFactory(email="eve@example.com"))
    assert client.post(reverse("sharing:proxy_end", kwargs={"grant_id": made.pk})).status_code == 404
    made.refresh_from_db()
    assert made.ended_at is None


# --- The practice's page -----------------------------------------------------------------


@pytest.fixture
def dr_gp_client(client, dr_gp):
    client.force_login(dr_gp)
    return client


def practice_grant(client, patient, relationship="child", days=365):
    return client.post(
        reverse("clinician:proxies", kwargs={"patient_id": patient.pk}),
        {
            "email": "ben@example.com",
            "relationship": relationship,
            "rights": ["see"],
            **day_fields(timezone.localdate() + timedelta(days=days)),
            "reason": "Mother of the child, identity checked at the desk",
        },
    )


def test_the_practice_gives_a_parent_access_to_a_child(dr_gp_client, mia, ben):
    mia.birth_date = born(5)
    mia.save()
    record = dr_gp_client.get(reverse("clinician:record", kwargs={"patient_id": mia.pk})).content.decode()
    assert reverse("clinician:proxies", kwargs={"patient_id": mia.pk}) in record
    response = practice_grant(dr_gp_client, mia)
    assert response.status_code == 302
    made = ProxyAccess.objects.get()
    assert (made.patient, made.proxy, made.relationship) == (mia, ben, "child")
    assert made.granted_by_organisation.name == "Riverside Surgery"
    page = dr_gp_client.get(reverse("clinician:proxies", kwargs={"patient_id": mia.pk})).content.decode()
    assert "ben@example.com" in page
    assert "Parent or guardian of a child under 11" in page


def test_the_practice_cannot_give_child_access_to_an_adults_record(dr_gp_client, mia, ben):
    mia.birth_date = born(20)
    mia.save()
    response = practice_grant(dr_gp_client, mia)
    assert response.status_code == 400
    assert (
        'href="#id_relationship_0">This relationship is for a patient aged 0 to 10'
        in response.content.decode()
    )
    assert ProxyAccess.objects.count() == 0


def test_the_practice_ends_a_grant(dr_gp_client, mia, ben):
    mia.birth_date = born(5)
    mia.save()
    practice_grant(dr_gp_client, mia)
    made = ProxyAccess.objects.get()
    url = reverse("clinician:proxy_end", kwargs={"patient_id": mia.pk, "grant_id": made.pk})
    assert dr_gp_client.post(url).status_code == 302
    made.refresh_from_db()
    assert made.ended_at is not None


def test_a_clinician_outside_a_holding_gp_practice_gets_no_proxy_page(client, mia, hospital):
    client.force_login(ClinicianFactory(email="dr.h@example.com", organisation=hospital))
    assert client.get(reverse("clinician:proxies", kwargs={"patient_id": mia.pk})).status_code == 404
    record = client.get(reverse("clinician:record", kwargs={"patient_id": mia.pk})).content.decode()
    assert reverse("clinician:proxies", kwargs={"patient_id": mia.pk}) not in record


def test_only_the_registered_practice_gives_proxy_access_when_the_details_name_it(client, mia, ben):
    """A practice that saw the patient once (a temporary resident) decides nothing about
    proxy access when the patient's details name their registered practice."""
    visited = Organisation.objects.create(
        ods_code="B20002", name="Seaside Surgery", kind=OrganisationKind.GP_PRACTICE
    )
    registered = {"identifier": {"system": ODS_SYSTEM, "value": "A10001"}, "display": "Riverside Surgery"}
    send(
        visited,
        {**patient_resource("q", NHS), "generalPractitioner": [registered]},
        condition("visit", "Sprain", pid="q"),
    )
    proxies_url = reverse("clinician:proxies", kwargs={"patient_id": mia.pk})
    client.force_login(ClinicianFactory(email="dr.s@example.com", organisation=visited))
    assert client.get(proxies_url).status_code == 404
    client.force_login(
        ClinicianFactory(email="dr.r@example.com", organisation=Organisation.objects.get(ods_code="A10001"))
    )
    assert client.get(proxies_url).status_code == 200


def test_access_for_a_child_ends_at_eleven_and_the_practice_is_told(dr_gp_client, dr_gp, mia, ben):
    mia.birth_date = born(10)
    mia.save()
    assert practice_grant(dr_gp_client, mia, days=30).status_code == 302
    made = ProxyAccess.objects.get()
    eleventh = proxies.birthday(mia.birth_date, 11)
    assert proxies.review_by_age(today=eleventh - timedelta(days=1)) == 0
    assert proxies.review_by_age(today=eleventh) == 1
    made.refresh_from_db()
    assert made.ended_at is not None
    assert Notification.objects.filter(user=dr_gp, title="Proxy access to review").exists()
    assert Notification.objects.filter(user=ben, title="Your access to act for someone has ended").exists()


def test_the_chooser_is_for_patients_only(client, dr_gp):
    assert client.get(reverse("portal:acting_for")).status_code == 302  # to sign in
    client.force_login(dr_gp)
    assert client.get(reverse("portal:acting_for")).status_code == 404


def test_an_end_date_in_another_scripts_digits_is_refused(client, mia_user, ben):
    """From the outside probe: "٣" is not 3 (one reading of a typed end date, web.common)."""
    client.force_login(mia_user)
    when = timezone.localdate() + timedelta(days=40)
    response = client.post(
        reverse("sharing:proxy_add"),
        {
            "email": "ben@example.com",
            "rights": ["see"],
            **day_fields(when),
            "until_day": "\u0663",
            "reason": "My husband helps with appointments",
        },
    )
    assert response.status_code in (200, 400)
    assert "Enter the end date as numbers" in response.content.decode()
    assert not ProxyAccess.objects.exists()


def test_a_see_only_proxy_gets_no_correction_form(client, mia_user, ben):
    acting(client, ben, grant(mia_user, Rights(see=True)).pk)
    plain = RecordEntry.objects.get(fhir_id="plain")
    assert client.get(reverse("record:correct", kwargs={"entry_id": plain.pk})).status_code == 404
