"""The patient's sharing pages: who can see my record (in words, from the policy), a
preview per organisation, changing a choice through a confirmation, the history of
choices, the FHIR Consent download, and who has looked at my record."""

import json
from datetime import date, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from fhir.resources.R4B.consent import Consent

from audit.models import AuditEvent
from consent.models import BreakGlass, ConsentChoice, Decision, Scope
from consent.policy import (
    Action,
    Actor,
    ActorRole,
    _policy_scope,
    actor_for,
    decide,
    open_record,
    permitted_entries,
)
from consent.services import change_consent, declare_break_glass, withhold_from_patient
from phr.models import Category, Organisation, Patient
from tests.personas import ClinicianFactory, IGOfficerFactory, PatientUserFactory

pytestmark = pytest.mark.django_db

WHO = reverse("sharing:who_can_see")
CHOICES = reverse("sharing:choices")
CONFIRM = reverse("sharing:confirm")
HISTORY = reverse("sharing:history")
FHIR = reverse("sharing:consent_fhir")
LOG = reverse("sharing:access_log")


def choose(user, patient, scope, decision, **kwargs):
    return change_consent(
        actor=actor_for(user), patient_id=patient.pk, scope=scope, decision=decision, **kwargs
    )


def sentences(client) -> dict[str, str]:
    response = client.get(WHO)
    assert response.status_code == 200
    return {row.organisation.name: row.sentence for row in response.context["rows"]}


def future_day() -> date:
    return date(timezone.localdate().year + 2, 3, 1)


# --- Who can see my record: one sentence per organisation --------------------------------


def test_by_default_every_organisation_sees_everything_but_the_sensitive_records(signed_in):
    said = sentences(signed_in)
    holds = " It also sees everything it holds itself."
    assert said == {
        "City Mind Partnership": "City Mind Partnership can see everything except your sensitive records.",
        "City Teaching Hospitals": "City Teaching Hospitals can see everything except your sensitive records."
        + holds,
        "Northbridge Ambulance Service": "Northbridge Ambulance Service can see everything except your "
        "sensitive records.",
        "Riverside Surgery": "Riverside Surgery can see everything except your sensitive records." + holds,
    }
    page = signed_in.get(WHO).content.decode()
    assert (
        "Your sensitive records (sexual health, safeguarding, assisted conception (fertility treatment) and "
        "gender identity) stay with the organisation that holds them unless you choose to share them."
    ) in page


def test_sharing_a_sensitive_category_by_name_shares_it(signed_in, ada, ada_user, ambulance):
    for category in ("sexual_health", "safeguarding", "assisted_conception", "gender_identity"):
        choose(ada_user, ada, Scope.CATEGORY, Decision.PERMIT, category=category)
    choose(
        ada_user,
        ada,
        Scope.ORGANISATION_CATEGORY,
        Decision.DENY,
        organisation=ambulance,
        category="safeguarding",
    )
    said = sentences(signed_in)
    assert said["City Mind Partnership"] == "City Mind Partnership can see everything on your record."
    assert said["Northbridge Ambulance Service"] == (
        "Northbridge Ambulance Service can see everything except your safeguarding records."
    )


def test_a_refused_organisation_sees_only_what_it_holds_or_nothing(
    signed_in, ada, ada_user, hospital, ambulance
):
    choose(ada_user, ada, Scope.ORGANISATION, Decision.DENY, organisation=hospital)
    choose(ada_user, ada, Scope.ORGANISATION, Decision.DENY, organisation=ambulance)
    said = sentences(signed_in)
    assert said["City Teaching Hospitals"] == "City Teaching Hospitals can see only what it holds itself."
    assert said["Northbridge Ambulance Service"] == "Northbridge Ambulance Service cannot see your record."
    assert said["Riverside Surgery"] == (
        "Riverside Surgery can see everything except your sensitive records. "
        "It also sees everything it holds itself."
    )


def test_a_refused_category_is_named_for_every_organisation(signed_in, ada, ada_user):
    choose(ada_user, ada, Scope.CATEGORY, Decision.DENY, category=Category.MENTAL_HEALTH)
    said = sentences(signed_in)
    assert said["Northbridge Ambulance Service"] == (
        "Northbridge Ambulance Service can see everything except your mental health records "
        "and your sensitive records."
    )
    assert said["Riverside Surgery"] == (
        "Riverside Surgery can see everything except your mental health records and your sensitive records. "
        "It also sees everything it holds itself."
    )


def test_a_category_at_one_organisation_changes_only_that_organisation(signed_in, ada, ada_user, ambulance):
    choose(
        ada_user,
        ada,
        Scope.ORGANISATION_CATEGORY,
        Decision.DENY,
        organisation=ambulance,
        category="sexual_health",
    )
    choose(
        ada_user,
        ada,
        Scope.ORGANISATION_CATEGORY,
        Decision.DENY,
        organisation=ambulance,
        category="mental_health",
    )
    said = sentences(signed_in)
    assert said["Northbridge Ambulance Service"] == (
        "Northbridge Ambulance Service can see everything except your mental health records "
        "and your sensitive records."
    )
    assert (
        said["City Mind Partnership"]
        == "City Mind Partnership can see everything except your sensitive records."
    )


def test_network_off_with_one_organisation_permitted(signed_in, ada, ada_user, mental_health_trust):
    choose(ada_user, ada, Scope.NETWORK, Decision.DENY)
    choose(ada_user, ada, Scope.ORGANISATION, Decision.PERMIT, organisation=mental_health_trust)
    said = sentences(signed_in)
    # "Share your record with City Mind" does not reach the categories kept to their holder.
    assert (
        said["City Mind Partnership"]
        == "City Mind Partnership can see everything except your sensitive records."
    )
    assert said["Riverside Surgery"] == "Riverside Surgery can see only what it holds itself."
    assert said["Northbridge Ambulance Service"] == "Northbridge Ambulance Service cannot see your record."
    rows = {row.organisation.name: row for row in signed_in.get(WHO).context["rows"]}
    assert rows["City Mind Partnership"].because == [
        "Do not share your record across the network",  # still decides the sensitive records
        "Share your record with City Mind Partnership",
    ]
    assert rows["Riverside Surgery"].because == ["Do not share your record across the network"]


def test_opt_in_shares_nothing_beyond_what_each_holds(signed_in, ada, ada_user, ambulance, settings):
    settings.CONSENT_MODEL = "opt-in"
    said = sentences(signed_in)
    assert said["Riverside Surgery"] == "Riverside Surgery can see only what it holds itself."
    assert said["Northbridge Ambulance Service"] == "Northbridge Ambulance Service cannot see your record."
    choose(
        ada_user,
        ada,
        Scope.ORGANISATION_CATEGORY,
        Decision.PERMIT,
        organisation=ambulance,
        category="general",
    )
    assert sentences(signed_in)["Northbridge Ambulance Service"] == (
        "Northbridge Ambulance Service can see only your general health records."
    )
    assert "Unless you choose to share it" in signed_in.get(WHO).content.decode()


def test_an_expired_choice_no_longer_counts(signed_in, ada, ada_user, ambulance):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        choose(
            ada_user,
            ada,
            Scope.ORGANISATION,
            Decision.DENY,
            organisation=ambulance,
            until=start + timedelta(days=2),
        )
        assert sentences(signed_in)["Northbridge Ambulance Service"] == (
            "Northbridge Ambulance Service cannot see your record."
        )
    with time_machine.travel(start + timedelta(days=3), tick=False):
        signed_in.force_login(ada_user)  # the session timed out meanwhile
        assert sentences(signed_in)["Northbridge Ambulance Service"] == (
            "Northbridge Ambulance Service can see everything except your sensitive records."
        )


def test_who_can_see_is_audited_as_a_consent_read(signed_in, ada, ada_user):
    body = signed_in.get(WHO).content.decode()
    assert "Emergency access" in body
    event = AuditEvent.objects.filter(action="consent.read").last()
    assert (event.patient_id, event.actor_id, event.outcome) == (ada.pk, ada_user.pk, "permit")


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for url in (WHO, CHOICES, HISTORY, FHIR, LOG, reverse("sharing:preview", args=[1])):
        response = client.get(url)
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]


def test_an_account_without_a_linked_record_is_pointed_to_linking(client, ada, hospital):
    client.force_login(PatientUserFactory(email="new@example.com", patient=None))
    for url in (WHO, CHOICES, HISTORY, FHIR, LOG):
        response = client.get(url)
        assert response.status_code == 200
        assert b"not linked to a record" in response.content
        assert reverse("portal:link_record").encode() in response.content
    client.force_login(ClinicianFactory(email="dr@example.com", organisation=hospital))
    assert b"staff account" in client.get(WHO).content
    assert not AuditEvent.objects.filter(action="consent.read", outcome="permit").exists()


# --- Preview: what one organisation would see -----------------------------------------


def test_the_preview_shows_exactly_what_the_policy_permits_that_organisation(
    signed_in, ada, ada_user, hospital, ambulance
):
    choose(ada_user, ada, Scope.CATEGORY, Decision.DENY, category=Category.MENTAL_HEALTH)
    for org in (hospital, ambulance):
        response = signed_in.get(reverse("sharing:preview", args=[org.pk]))
        assert response.status_code == 200
        shown = {item.pk for _, items in response.context["groups"] for item in items}
        hypothetical = Actor(ActorRole.CLINICIAN, organisation=org)
        # The policy's own answer, read as the policy reads it (the test is its auditor).
        decision = decide(hypothetical, Action.READ_RECORD, ada)
        with _policy_scope():
            permitted = permitted_entries(hypothetical, ada, decision)
            expected = set(permitted.exclude(resource_type="Patient").values_list("pk", flat=True))
        assert shown == expected  # the items: the personal details are not counted as one
        assert "Depressive disorder" not in response.content.decode()
        assert "Hypertensive disorder" in response.content.decode()


def test_a_refused_organisation_previews_only_its_own_items(signed_in, ada, ada_user, hospital):
    choose(ada_user, ada, Scope.ORGANISATION, Decision.DENY, organisation=hospital)
    body = signed_in.get(reverse("sharing:preview", args=[hospital.pk])).content.decode()
    assert "Fracture of wrist" in body
    assert "Hypertensive disorder" not in body
    assert "can see only what it holds itself" in body


def test_the_preview_is_audited_as_the_patients_own_read(signed_in, ada, ada_user, ambulance):
    signed_in.get(reverse("sharing:preview", args=[ambulance.pk]))
    event = AuditEvent.objects.filter(action="record.read").last()
    assert (event.actor_id, event.patient_id, event.organisation_id) == (ada_user.pk, ada.pk, None)
    assert event.purpose == "patient-access"
    assert event.detail["preview_for"] == ambulance.ods_code
    assert len(event.entries) == ada.entries.exclude(resource_type="Patient").count()


def test_the_preview_keeps_items_withheld_from_the_patient_hidden(signed_in, ada, gp, hospital):
    doctor = ClinicianFactory(email="gp@example.com", organisation=gp)
    entry = ada.entries.get(display="Hypertensive disorder")
    withhold_from_patient(actor=actor_for(doctor), entry=entry, reason="Serious harm if read without support")
    body = signed_in.get(reverse("sharing:preview", args=[hospital.pk])).content.decode()
    assert "Hypertensive disorder" not in body
    assert "Fracture of wrist" in body


def test_previewing_an_unknown_organisation_is_not_found(signed_in):
    assert signed_in.get(reverse("sharing:preview", args=[999999])).status_code == 404


# --- Changing a choice ------------------------------------------------------------------


def form_data(**overrides) -> dict:
    until = future_day()
    data = {
        "scope": "organisation_category",
        "organisation": "",
        "category": "mental_health",
        "decision": "deny",
        "until_day": str(until.day),
        "until_month": str(until.month),
        "until_year": str(until.year),
        "reason": "I would rather tell them myself",
    }
    data.update(overrides)
    return data


def test_the_form_leads_to_a_confirmation_in_plain_words(signed_in, ambulance):
    assert signed_in.get(CHOICES).status_code == 200
    response = signed_in.post(CONFIRM, form_data(organisation=ambulance.pk, step="review"))
    assert response.status_code == 200
    body = response.content.decode()
    assert (
        "From now on, Northbridge Ambulance Service will not be able to see your mental health records, "
        f"until 1 March {future_day().year}." in body
    )
    assert (
        "Riverside Surgery can see everything except your sensitive records." in body
    )  # unchanged, listed after
    assert ConsentChoice.objects.count() == 0


def test_hiding_allergies_and_medicines_from_an_emergency_service_says_what_it_risks(signed_in, ambulance):
    """Issue 12 part 7: the confirmation names the risk and explains emergency access."""
    body = signed_in.post(
        CONFIRM, form_data(scope="organisation", organisation=ambulance.pk, category="", step="review")
    ).content.decode()
    assert 'id="emergency-risks"' in body
    assert (
        "If you needed urgent care, staff at Northbridge Ambulance Service would not see your allergies or "
        "the medicines you take" in body
    )
    assert "a clinician can use emergency access to open your whole record for a short time" in body


def test_hiding_only_mental_health_risks_nothing_in_an_emergency(signed_in, ambulance):
    body = signed_in.post(CONFIRM, form_data(organisation=ambulance.pk, step="review")).content.decode()
    assert 'id="emergency-risks"' not in body


def test_confirming_saves_exactly_one_choice_with_the_values(signed_in, ada, ada_user, ambulance):
    response = signed_in.post(CONFIRM, form_data(organisation=ambulance.pk, step="save"), follow=True)
    assert response.redirect_chain[-1][0] == WHO
    assert "Your sharing choice has been saved." in response.content.decode()
    choice = ConsentChoice.objects.get()
    assert (choice.patient, choice.scope, choice.organisation, choice.category, choice.decision) == (
        ada,
        Scope.ORGANISATION_CATEGORY,
        ambulance,
        "mental_health",
        Decision.DENY,
    )
    assert timezone.localtime(choice.until).date() == future_day()
    assert choice.reason == "I would rather tell them myself"
    assert choice.recorded_by == ada_user
    assert AuditEvent.objects.filter(action="consent.change", patient_id=ada.pk).count() == 1
    assert "everything except your mental health records" in response.content.decode()


def test_change_goes_back_to_the_form_with_the_values_kept(signed_in, ambulance):
    response = signed_in.post(CHOICES, form_data(organisation=ambulance.pk, step="change"))
    body = response.content.decode()
    assert response.status_code == 200
    assert 'value="organisation_category" checked' in body
    assert 'value="deny" checked' in body
    assert f'<option value="{ambulance.pk}" selected>' in body
    assert f'value="{future_day().year}"' in body
    assert "I would rather tell them myself" in body
    assert ConsentChoice.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "anchor", "message"),
    [
        ({"until_day": "31", "until_month": "2"}, "until-day", "The end date must be a real date"),
        ({"until_day": "x"}, "until-day", "Enter the end date as numbers"),
        ({"until_year": "2020"}, "until-day", "The end date must be in the future"),
        ({"organisation": ""}, "id_organisation", "Choose an organisation"),
        ({"organisation": "999999"}, "id_organisation", "Choose an organisation from the list"),
        ({"category": ""}, "id_category", "Choose a kind of information"),
        ({"category": "astrology"}, "id_category", "Choose a kind of information from the list"),
        ({"decision": ""}, "id_decision_0", "Choose share, do not share"),
        ({"scope": "everyone"}, "id_scope_0", "Choose one of the options"),
    ],
)
def test_a_problem_is_named_in_the_error_summary_and_nothing_is_saved(
    signed_in, ambulance, overrides, anchor, message
):
    data = {**form_data(organisation=ambulance.pk), **overrides}
    for step in ("review", "save"):
        response = signed_in.post(CONFIRM, {**data, "step": step})
        assert response.status_code == 400
        body = response.content.decode()
        assert "There is a problem" in body
        assert f'<a href="#{anchor}">{message}' in body
        assert f'id="{anchor}"' in body
        assert "<title>Error:" in body
    assert ConsentChoice.objects.count() == 0


def test_a_choice_about_the_network_ignores_a_leftover_organisation(signed_in, ada, ambulance):
    data = form_data(scope="network", organisation=ambulance.pk, category="mental_health", until_day="")
    data.update(until_month="", until_year="", step="save")
    signed_in.post(CONFIRM, data)
    choice = ConsentChoice.objects.get()
    assert (choice.scope, choice.organisation, choice.category, choice.until) == ("network", None, "", None)


def test_a_patient_can_only_ever_change_their_own_choices(client, ada, ambulance, gp):
    from phr.ingest import ingest_documents

    other = {
        "resourceType": "Patient",
        "id": "pb",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}],
    }
    ingest_documents(
        [("b", {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": other}]})],
        organisation=gp,
    )
    bea = Patient.objects.get(nhs_number="9990000018")
    client.force_login(PatientUserFactory(email="bea@example.com", patient=bea))
    client.post(
        CONFIRM,
        {**form_data(organisation=ambulance.pk), "patient": ada.pk, "patient_id": ada.pk, "step": "save"},
    )
    assert list(ConsentChoice.objects.values_list("patient_id", flat=True)) == [bea.pk]


# --- History and the FHIR Consent ------------------------------------------------------------


def test_the_history_lists_every_choice_oldest_first(signed_in, ada, ada_user, ambulance):
    choose(ada_user, ada, Scope.NETWORK, Decision.DENY)
    choose(
        ada_user, ada, Scope.ORGANISATION, Decision.PERMIT, organisation=ambulance, reason="They come fast"
    )
    choose(ada_user, ada, Scope.NETWORK, Decision.DEFAULT)
    response = signed_in.get(HISTORY)
    assert [row["sentence"] for row in response.context["rows"]] == [
        "Do not share your record across the network",
        "Share your record with Northbridge Ambulance Service",
        "Go back to the usual rule for sharing across the network",
    ]
    assert "They come fast" in response.content.decode()
    event = AuditEvent.objects.filter(action="consent.read").last()
    assert (event.patient_id, event.detail["page"]) == (ada.pk, "history")


def test_the_consent_download_is_a_valid_fhir_consent_without_personal_data_in_its_name(
    signed_in, ada, ada_user, ambulance
):
    choose(ada_user, ada, Scope.ORGANISATION, Decision.DENY, organisation=ambulance)
    response = signed_in.get(FHIR)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    disposition = response["Content-Disposition"]
    assert "attachment" in disposition
    assert "Okafor" not in disposition
    assert ada.nhs_number not in disposition
    assert str(ada.pk) not in disposition
    resource = json.loads(response.content)
    Consent.model_validate(resource)
    assert resource["patient"]["reference"] == f"Patient/{ada.pk}"
    assert resource["provision"]["provision"][0]["type"] == "deny"
    assert AuditEvent.objects.filter(action="consent.read", detail__page="consent-fhir").count() == 1


# --- Who has looked at my record ----------------------------------------------------------


@pytest.fixture
def looked_at(ada, ada_user, gp, hospital, mental_health_trust):
    """A hospital doctor reads the record; the mind trust, refused, uses emergency access."""
    doctor = ClinicianFactory(email="dr.hale@hospital.example", organisation=hospital)
    doctor.first_name, doctor.last_name = "Priya", "Hale"
    doctor.save()
    open_record(actor_for(doctor), ada.pk).read()
    choose(ada_user, ada, Scope.ORGANISATION, Decision.DENY, organisation=mental_health_trust)
    moss = ClinicianFactory(email="dr.moss@mind.example", organisation=mental_health_trust)
    with pytest.raises(Exception):  # noqa: B017, PT011 - NotFound: refused before emergency access
        open_record(actor_for(moss), ada.pk)
    declare_break_glass(
        actor=actor_for(moss),
        patient_id=ada.pk,
        reason_code="emergency",
        reason_text="Brought in unconscious; need medicines now.",
    )
    open_record(actor_for(moss), ada.pk).read()
    return {"doctor": doctor, "moss": moss}


def test_the_log_shows_who_when_what_and_why(signed_in, looked_at, hospital):
    response = signed_in.get(LOG)
    assert response.status_code == 200
    rows = response.context["looks"]
    assert [row.person for row in rows] == ["dr.moss@mind.example", "Priya Hale"]
    hale = rows[1]
    assert hale.event.organisation == hospital
    assert not hale.emergency
    assert len(hale.items) == 7
    assert "1 test result" in hale.kinds
    assert "4 health problems" in hale.kinds
    body = response.content.decode()
    assert "City Teaching Hospitals" in body
    assert "Direct care" in body
    assert "Serum potassium" in body


def test_emergency_access_stands_out_with_its_reason(signed_in, looked_at):
    response = signed_in.get(LOG)
    moss = response.context["looks"][0]
    assert moss.emergency
    assert moss.break_glass.reason_code == "emergency"
    body = response.content.decode()
    assert 'nhsuk-tag--red">Emergency access' in body
    assert 'id="emergency-openings"' in body
    assert "Brought in unconscious; need medicines now." in body
    assert "Emergency care: the patient cannot consent" in body


def test_refused_attempts_and_governance_reviews_have_their_own_sections(signed_in, looked_at, ada):
    ig = IGOfficerFactory(email="ig@example.com", second_factor=False)
    import audit

    audit.record("audit.read", actor=ig, actor_label=ig.email, patient=ada, purpose="governance")
    response = signed_in.get(LOG)
    assert [e.organisation.name for e in response.context["refused"]] == ["City Mind Partnership"]
    assert [words for _, words in response.context["reviews"]] == [
        "looked at the record of who has seen your record"
    ]
    assert "ig@example.com" not in response.content.decode()


def test_filters_narrow_the_log(signed_in, looked_at, hospital, mental_health_trust):
    def people(**query):
        return [row.person for row in signed_in.get(LOG, query).context["looks"]]

    assert people(organisation=hospital.pk) == ["Priya Hale"]
    assert people(emergency="on") == ["dr.moss@mind.example"]
    yesterday = timezone.localdate() - timedelta(days=1)
    assert people(date_to=yesterday.isoformat()) == []
    assert people(date_from=timezone.localdate().isoformat()) == ["dr.moss@mind.example", "Priya Hale"]
    response = signed_in.get(LOG, {"date_from": "2025-05-02", "date_to": "2025-05-01"})
    assert "There is a problem" in response.content.decode()


def test_the_patients_own_reads_and_other_patients_events_never_appear(
    signed_in, ada, ada_user, looked_at, gp
):
    open_record(actor_for(ada_user), ada.pk).read()
    from phr.ingest import ingest_documents

    other = {
        "resourceType": "Patient",
        "id": "pb",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}],
    }
    ingest_documents(
        [("b", {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": other}]})],
        organisation=gp,
    )
    bea = Patient.objects.get(nhs_number="9990000018")
    stranger = ClinicianFactory(email="stranger@gp.example", organisation=gp)
    open_record(actor_for(stranger), bea.pk).read()
    people = [row.person for row in signed_in.get(LOG).context["looks"]]
    assert people == ["dr.moss@mind.example", "Priya Hale"]


def test_items_are_resolved_only_within_the_patients_own_view(signed_in, ada, gp, looked_at):
    import audit

    doctor = ClinicianFactory(email="gp2@example.com", organisation=gp)
    withheld = ada.entries.get(display="Hypertensive disorder")
    withhold_from_patient(
        actor=actor_for(doctor), entry=withheld, reason="Serious harm if read without support"
    )
    from phr.ingest import ingest_documents

    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "pb",
                    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}],
                }
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": "x1",
                    "subject": {"reference": "Patient/pb"},
                    "code": {"text": "Somebody else's secret"},
                }
            },
        ],
    }
    ingest_documents([("b", bundle)], organisation=gp)
    foreign = Patient.objects.get(nhs_number="9990000018").entries.get(resource_type="Condition")
    # A forged event naming another patient's entry under Ada's record.
    audit.record(
        "record.read",
        entries=[foreign, withheld],
        patient=ada,
        actor=doctor,
        actor_label=doctor.email,
        organisation=gp,
        purpose="direct-care",
    )
    response = signed_in.get(LOG)
    body = response.content.decode()
    assert "Somebody else&#x27;s secret" not in body
    assert "Somebody else's secret" not in body
    first = response.context["looks"][0]
    assert first.person == "gp2@example.com"
    assert first.items == []
    # Hypertensive disorder is withheld from Ada now, wherever it was read.
    assert all(
        item.display != "Hypertensive disorder" for row in response.context["looks"] for item in row.items
    )


def test_each_view_of_the_log_is_one_audit_read_naming_what_it_showed(signed_in, ada, ada_user, looked_at):
    before = AuditEvent.objects.count()
    signed_in.get(LOG)
    events = list(AuditEvent.objects.filter(seq__gt=AuditEvent.objects.order_by("seq")[before - 1].seq))
    assert [e.action for e in events] == ["audit.read"]
    event = events[0]
    assert (event.actor_id, event.patient_id, event.purpose) == (ada_user.pk, ada.pk, "patient-access")
    assert len(event.entries) == ada.entries.count()


def test_the_log_is_paginated(signed_in, ada, hospital):
    doctor = ClinicianFactory(email="busy@hospital.example", organisation=hospital)
    for _ in range(25):
        open_record(actor_for(doctor), ada.pk, action=Action.SEARCH_RECORD).read(lambda qs: qs.none())
    first = signed_in.get(LOG)
    assert len(first.context["looks"]) == 20
    assert first.context["page"].paginator.count == 25
    assert len(signed_in.get(LOG, {"page": 2}).context["looks"]) == 5
    assert BreakGlass.objects.count() == 0


def test_the_access_log_answers_extreme_dates(client, db):
    from django.urls import reverse

    from phr.models import Patient

    Organisation.objects.create(ods_code="X1", name="X")
    patient = Patient.objects.create(nhs_number="9990000018")
    user = PatientUserFactory(email="edge@example.com", patient=patient)
    client.force_login(user)
    for params in ({"date_to": "9999-12-31"}, {"date_from": "0001-01-01"}):
        assert client.get(reverse("sharing:access_log"), params).status_code in (200, 400)


def test_kinds_people_call_by_one_name_are_counted_together_in_the_records_words():
    from consent.sharing_text import kinds_words

    looked = ["MedicationStatement"] * 4 + ["MedicationRequest", "Condition", "Basic", "Flag", "Patient"]
    assert kinds_words(looked) == [
        "1 health problem",
        "5 medicines",
        "2 other items",
        "1 set of personal details",
    ]
    assert kinds_words(["AllergyIntolerance"]) == ["1 allergy or reaction"]
    assert kinds_words([]) == []


def test_the_preview_counts_what_the_record_summary_counts(signed_in, ada, ada_user, gp):
    """Both say how many items through one function; the preview for an organisation that
    sees everything says the summary's total, under the record's own kind titles."""
    from accuracy import record_display

    page = signed_in.get(reverse("sharing:preview", args=[gp.pk]))
    summary = signed_in.get(reverse("record:summary"))
    total = sum(count for _kind, count in summary.context["kinds"])
    assert page.context["count"] == total == record_display.item_count(ada.entries.all())
    assert f"{total} items" in page.content.decode()
    titles = [title for title, _items in page.context["groups"]]
    assert titles == [kind.title for kind in record_display.KINDS if kind.title in titles]
    assert set(titles) <= {kind.title for kind in record_display.KINDS}
