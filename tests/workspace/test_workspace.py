"""The clinician's corrections workspace: the organisation's queue, one request and every
step through the page (with refusals, stale forms and races told, never a server error),
disputed items on the clinician record pages, and the correction figures for the
organisation and, in the IG console, across the network."""

import json
import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accuracy import services
from accuracy.models import BusinessStatus, CorrectionRequest, Statement
from consent.policy import actor_for
from phr.ingest import ingest_documents
from phr.models import EntryVersion, RecordEntry
from tests.clinician.network import build_record
from tests.personas import ClinicianFactory, PatientUserFactory

pytestmark = pytest.mark.django_db

QUEUE = reverse("workspace:queue")
FIGURES = reverse("workspace:figures")


@pytest.fixture
def world(gp, hospital, dr_gp, ig_officer):
    ada = build_record(gp, hospital)
    return {
        "gp": gp,
        "hospital": hospital,
        "patient": ada,
        "ada": PatientUserFactory(email="ada@example.com", patient=ada),
        "dr_gp": dr_gp,
        "dr_two": ClinicianFactory(email="dr.two@example.com", organisation=gp),
        "dr_hosp": ClinicianFactory(email="dr.hosp@example.com", organisation=hospital),
        "ig": ig_officer,
        "hypertension": RecordEntry.objects.get(owner=gp, fhir_id="c1"),
        "depression": RecordEntry.objects.get(owner=gp, fhir_id="c2"),
        "wrist": RecordEntry.objects.get(owner=hospital, fhir_id="h1"),
    }


def flag(world, entry=None, *, element="code", proposed="Hypertension, resolved in 2025"):
    return services.submit_correction(
        actor=actor_for(world["ada"]),
        entry_id=(entry or world["hypertension"]).pk,
        element=element,
        proposed=proposed,
        reason="My blood pressure has been normal since I lost weight",
        contact_preference="portal",
    )


def as_actor(user):
    return actor_for(User.objects.get(pk=user.pk))


def request_url(correction) -> str:
    return reverse("workspace:request", kwargs={"request_id": correction.pk})


def act_url(correction, step) -> str:
    return reverse("workspace:act", kwargs={"request_id": correction.pk, "step": step})


def fresh(correction):
    return CorrectionRequest.objects.get(pk=correction.pk)


def post(client, correction, step, **fields):
    """Post a step as the page would: every field under the step's prefix, with the
    revision the page showed unless the test gives another."""
    data = {f"{step}-revision": fields.pop("revision", fresh(correction).revision)}
    data.update({f"{step}-{name}": value for name, value in fields.items() if name != "preview"})
    if "preview" in fields:
        data["preview"] = "1"
    return client.post(act_url(correction, step), data)


def in_review(world, correction):
    return services.start_review(
        actor=as_actor(world["dr_gp"]), request_id=correction.pk, revision=correction.revision
    )


def condition_json(entry, **changes) -> str:
    resource = json.loads(entry.json)
    resource.update(changes)
    return json.dumps(resource, indent=2)


def main_text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# --- Who reaches the workspace -------------------------------------------------------------


@pytest.mark.parametrize("who", ["ada", "ig"])
def test_patients_and_ig_officers_find_no_workspace(world, client, who):
    correction = flag(world)
    client.force_login(world[who])
    for url in (QUEUE, FIGURES, request_url(correction)):
        assert client.get(url).status_code == 404
    assert client.post(act_url(correction, "start_review"), {"start_review-revision": 1}).status_code == 404
    assert fresh(correction).business_status == BusinessStatus.QUEUED


def test_a_clinician_without_a_second_factor_is_sent_to_set_one_up(world, client, gp):
    client.force_login(ClinicianFactory(email="new@example.com", organisation=gp, second_factor=False))
    response = client.get(QUEUE)
    assert response.status_code == 302
    assert "2fa" in response["Location"]


def test_the_find_patient_page_links_to_the_queue(world, client):
    client.force_login(world["dr_gp"])
    assert QUEUE in client.get(reverse("clinician:find_patient")).content.decode()


# --- The queue ------------------------------------------------------------------------------


def test_the_queue_shows_open_requests_overdue_first_then_by_deadline(world, client):
    later = flag(world)
    overdue = flag(world, world["depression"], element="", proposed="I have never been depressed")
    soon = flag(world, RecordEntry.objects.get(fhir_id="c3"), element="", proposed="Remove it please")
    today = timezone.localdate()
    CorrectionRequest.objects.filter(pk=later.pk).update(due_on=today + timedelta(days=20))
    CorrectionRequest.objects.filter(pk=overdue.pk).update(due_on=today - timedelta(days=3))
    CorrectionRequest.objects.filter(pk=soon.pk).update(due_on=today + timedelta(days=2))

    client.force_login(world["dr_gp"])
    page = client.get(QUEUE).content.decode()

    positions = [page.index(request_url(c)) for c in (overdue, soon, later)]
    assert positions == sorted(positions)
    assert "Overdue by 3 days" in page
    assert "2 days left" in page
    assert "20 days left" in page
    assert "Part </span>Condition</td>" in page  # staff words for the part, not the patient's
    assert "Hypertensive disorder" in page


def test_each_queue_row_names_the_patient_and_the_item(world, client):
    correction = flag(world)
    client.force_login(world["dr_gp"])
    page = main_text(client.get(QUEUE))
    row = next(r for r in page.split("<tr") if request_url(correction) in r)
    assert "<strong>OKAFOR, Ada</strong>" in row
    assert "Born 4 March 1971" in row
    assert "NHS number 943 476 5919" in row
    assert f'href="{request_url(correction)}">Hypertensive disorder' in row


def test_the_queue_reads_each_patients_details_through_the_policy_and_audits_it(world, client):
    """The names come from the copies the policy releases to the clinician, each read
    written to the trail; the record is opened once per patient on the page."""
    from audit.models import AuditEvent

    flag(world)
    flag(world, world["depression"], proposed="I never had depression")
    client.force_login(world["dr_gp"])
    before = AuditEvent.objects.count()
    main_text(client.get(QUEUE))
    reads = AuditEvent.objects.filter(seq__gt=0).order_by("-seq")[: AuditEvent.objects.count() - before]
    banner_reads = [e for e in reads if (e.detail or {}).get("purpose") == "patient banner"]
    assert len(banner_reads) == 1
    assert banner_reads[0].patient_id == world["patient"].pk
    assert banner_reads[0].actor_id == world["dr_gp"].pk


def test_the_request_page_shows_who_the_patient_is(world, client):
    correction = flag(world)
    client.force_login(world["dr_gp"])
    page = main_text(client.get(request_url(correction)))
    start = page.index('id="patient-banner"')
    banner = page[start : page.index("</section>", start)]
    assert "OKAFOR, Ada" in banner
    assert "4 March 1971" in banner
    assert "943 476 5919" in banner


def test_the_queue_filter_shows_decided_requests_apart(world, client):
    open_one = flag(world)
    decided = flag(world, world["depression"], element="", proposed="Not me")
    services.withdraw(actor=as_actor(world["ada"]), request_id=decided.pk, revision=decided.revision)
    client.force_login(world["dr_gp"])

    open_page = client.get(QUEUE).content.decode()
    assert request_url(open_one) in open_page
    assert request_url(decided) not in open_page
    decided_page = client.get(QUEUE, {"show": "decided"}).content.decode()
    assert request_url(decided) in decided_page
    assert request_url(open_one) not in decided_page
    all_page = client.get(QUEUE, {"show": "all"}).content.decode()
    assert all_page.index(request_url(open_one)) < all_page.index(request_url(decided))


def test_another_organisations_request_is_not_found_and_not_in_its_queue(world, client):
    correction = flag(world)
    client.force_login(world["dr_hosp"])
    assert request_url(correction) not in client.get(QUEUE).content.decode()
    assert client.get(request_url(correction)).status_code == 404
    assert post(client, correction, "start_review").status_code == 404
    assert client.get(reverse("workspace:request", kwargs={"request_id": uuid.uuid4()})).status_code == 404
    assert fresh(correction).business_status == BusinessStatus.QUEUED


# --- One request ------------------------------------------------------------------------------


def test_the_request_page_shows_the_change_side_by_side_with_history_and_offers_allowed_steps(world, client):
    correction = flag(world)
    client.force_login(world["dr_gp"])
    response = client.get(request_url(correction))
    page = main_text(response)
    assert response.status_code == 200
    assert "Hypertensive disorder" in page
    assert "Hypertension, resolved in 2025" in page
    assert "My blood pressure has been normal" in page
    assert "Version 1 (current)" in page
    assert "Request received" in page
    assert "by the patient" in page
    assert "ada@example.com" not in page
    # New: start review, but no decision before the review has started.
    assert act_url(correction, "start_review") in page
    assert act_url(correction, "accept") not in page
    assert act_url(correction, "deny") not in page
    assert act_url(correction, "extend") in page
    assert f'name="start_review-revision" value="{correction.revision}"' in page


def test_starting_the_review_through_the_page_assigns_it(world, client):
    correction = flag(world)
    client.force_login(world["dr_gp"])
    response = post(client, correction, "start_review")
    assert response.status_code == 302
    assert response["Location"] == request_url(correction)
    correction = fresh(correction)
    assert correction.business_status == BusinessStatus.IN_REVIEW
    assert correction.assigned_to == world["dr_gp"]
    page = main_text(client.get(request_url(correction)))
    assert "You have started reviewing this request." in page
    assert act_url(correction, "accept") in page
    assert act_url(correction, "deny") in page


def test_asking_for_information_waits_for_the_patient_and_threads_the_question(world, client):
    correction = in_review(world, flag(world))
    client.force_login(world["dr_gp"])
    short = post(client, correction, "ask_information", question="Why?")
    assert short.status_code == 200
    assert "Write your question to the patient" in main_text(short)
    assert fresh(correction).business_status == BusinessStatus.IN_REVIEW

    assert (
        post(client, correction, "ask_information", question="Which clinic measured it?").status_code == 302
    )
    assert fresh(correction).business_status == BusinessStatus.WAITING
    page = main_text(client.get(request_url(correction)))
    assert "Which clinic measured it?" in page
    assert "Resume the review" in page


def test_a_message_to_the_patient_joins_the_thread(world, client):
    correction = flag(world)
    client.force_login(world["dr_gp"])
    assert (
        post(
            client, correction, "message", body="We have your request and will look at it this week."
        ).status_code
        == 302
    )
    assert "We have your request and will look at it" in main_text(client.get(request_url(correction)))


def test_the_deadline_is_extended_once_and_a_second_time_is_refused(world, client):
    correction = flag(world)
    first_due = correction.due_on
    client.force_login(world["dr_gp"])
    page = main_text(client.get(request_url(correction)))
    latest = services.profile().latest_extension(first_due)
    assert f"{latest:%-d %B %Y} at the latest" in page

    assert (
        post(
            client, correction, "extend", reason="We need the hospital clinic's letter", until=""
        ).status_code
        == 302
    )
    correction = fresh(correction)
    assert correction.due_on == latest
    assert "We need the hospital clinic" in main_text(client.get(request_url(correction)))
    assert act_url(correction, "extend") not in client.get(request_url(correction)).content.decode()

    again = post(client, correction, "extend", reason="And more time again please", until="")
    assert again.status_code == 200
    assert "The deadline can be extended only once" in main_text(again)
    assert fresh(correction).due_on == latest


def test_an_extension_to_a_date_beyond_the_latest_is_refused_with_the_dates(world, client):
    correction = flag(world)
    client.force_login(world["dr_gp"])
    too_late = services.profile().latest_extension(correction.first_due_on) + timedelta(days=1)
    response = post(
        client, correction, "extend", reason="The clinic letter is slow", until=too_late.isoformat()
    )
    assert response.status_code == 200
    assert "no later than" in main_text(response)
    assert not fresh(correction).is_extended


def test_accepting_with_valid_fhir_amends_the_item_with_a_new_version(world, client):
    correction = in_review(world, flag(world))
    entry = world["hypertension"]
    client.force_login(world["dr_gp"])
    page = client.get(request_url(correction)).content.decode()
    assert "&quot;resourceType&quot;: &quot;Condition&quot;" in page  # the current item, prefilled
    assert 'name="accept-based_on_version" value="1"' in page

    amended = condition_json(entry, code={"text": "Hypertension, resolved"})
    response = post(
        client, correction, "accept", resource=amended, based_on_version=1, note="", outcome="accept"
    )
    assert response.status_code == 302

    correction = fresh(correction)
    assert correction.business_status == BusinessStatus.AMENDED
    version = EntryVersion.objects.get(entry=entry, number=2)
    assert version.source == EntryVersion.Source.CORRECTION
    assert version.produced_by == f"correction:{correction.pk.hex}"
    page = main_text(client.get(request_url(correction)))
    assert "Version 2 (current)" in page
    assert "Amended by Riverside Surgery after a correction request" in page
    assert "Hypertension, resolved" in page
    assert "We have corrected" in page  # the decision letter sent
    history = client.get(request_url(correction)).content.decode().split('id="versions"')[1]
    was = "High blood pressure (recorded as “Hypertensive disorder”)"
    assert f"The condition changed from {was} to Hypertension, resolved" in history
    assert act_url(correction, "accept") not in page


def test_accepting_in_part_needs_a_note(world, client):
    correction = in_review(world, flag(world))
    entry = world["hypertension"]
    client.force_login(world["dr_gp"])
    amended = condition_json(entry, code={"text": "Hypertension"})
    refused = post(
        client, correction, "accept", resource=amended, based_on_version=1, note="", outcome="in_part"
    )
    assert refused.status_code == 200
    assert "Say which part was corrected" in main_text(refused)
    done = post(
        client,
        correction,
        "accept",
        resource=amended,
        based_on_version=1,
        note="Renamed; it stays active as your last reading was high.",
        outcome="in_part",
    )
    assert done.status_code == 302
    assert fresh(correction).business_status == BusinessStatus.PARTIAL


def test_invalid_fhir_names_the_element_and_keeps_the_edited_text(world, client):
    correction = in_review(world, flag(world))
    client.force_login(world["dr_gp"])
    broken = condition_json(world["hypertension"], recordedDate="last Tuesday")
    response = post(
        client, correction, "accept", resource=broken, based_on_version=1, note="", outcome="accept"
    )
    page = main_text(response)
    assert response.status_code == 200
    assert "nhsuk-error-summary" in page
    assert "Condition.recordedDate" in page
    assert "last Tuesday" in page  # the clinician's text is still in the box
    assert 'href="#id_accept-resource"' in page
    assert fresh(correction).business_status == BusinessStatus.IN_REVIEW
    assert RecordEntry.objects.get(pk=world["hypertension"].pk).version == 1


def test_json_that_does_not_parse_is_refused_in_words(world, client):
    correction = in_review(world, flag(world))
    client.force_login(world["dr_gp"])
    response = post(
        client, correction, "accept", resource='{"resourceType": ', based_on_version=1, outcome="accept"
    )
    assert "not valid JSON" in main_text(response)


def test_an_amendment_of_a_stale_version_is_a_conflict_with_the_text_kept(world, client, gp):
    correction = in_review(world, flag(world))
    edited = condition_json(world["hypertension"], code={"text": "Hypertension, resolved"})
    # Meanwhile the practice's system sends a new version of the item.
    changed = json.loads(world["hypertension"].json)
    changed["note"] = [{"text": "Reviewed at the annual check"}]
    assert ingest_documents([("feed", changed)], organisation=gp).rejected == 0

    client.force_login(world["dr_gp"])
    response = post(
        client, correction, "accept", resource=edited, based_on_version=1, note="", outcome="accept"
    )
    page = main_text(response)
    assert response.status_code == 409
    assert "changed while you were editing" in page
    assert "Hypertension, resolved" in page  # kept, to copy from
    assert 'name="accept-based_on_version" value="2"' in page  # now based on what is shown
    # The form starts again from the current version: the old edit is not re-applied.
    amend_box = re.search(
        r'<textarea[^>]*name="accept-resource"[^>]*>(.*?)</textarea>', response.content.decode(), re.S
    )
    assert "Reviewed at the annual check" in amend_box.group(1)
    assert "Hypertension, resolved" not in amend_box.group(1)
    assert "Version 2 (current)" in page
    assert fresh(correction).business_status == BusinessStatus.IN_REVIEW


def test_two_clinicians_on_the_same_revision_the_second_is_told_what_happened(world, client):
    correction = flag(world)
    seen = correction.revision
    client.force_login(world["dr_gp"])
    assert post(client, correction, "start_review", revision=seen).status_code == 302

    client.force_login(world["dr_two"])
    response = post(
        client, correction, "ask_information", revision=seen, question="Which clinic measured it?"
    )
    page = main_text(response)
    assert response.status_code == 409
    assert "changed while you were looking at it: Review started by dr.gp@example.com" in page
    assert "Which clinic measured it?" in page  # the question is kept
    assert fresh(correction).business_status == BusinessStatus.IN_REVIEW


def test_a_decision_after_someone_else_decided_is_a_conflict_with_the_text_shown(world, client):
    correction = in_review(world, flag(world))
    seen = correction.revision
    services.deny(
        actor=as_actor(world["dr_two"]),
        request_id=correction.pk,
        revision=seen,
        code="accurate",
        text="It is right.",
    )
    client.force_login(world["dr_gp"])
    response = post(
        client, correction, "deny", revision=seen, code="accurate", text="My own careful explanation"
    )
    page = main_text(response)
    assert response.status_code == 409
    assert "Not corrected by dr.two@example.com" in page
    assert "My own careful explanation" in page
    assert act_url(correction, "deny") not in page


def test_deny_previews_then_sends_a_letter_naming_the_right_to_disagree_and_the_ico(world, client):
    correction = in_review(world, flag(world))
    client.force_login(world["dr_gp"])
    missing = post(client, correction, "deny", code="", text="")
    assert "Choose the reason for not correcting the item" in main_text(missing)

    preview = post(
        client, correction, "deny", code="clinical_opinion", text="It was diagnosed in 2019.", preview=True
    )
    page = main_text(preview)
    assert preview.status_code == 200
    assert "The letter the patient will receive" in page
    assert "It records a clinical opinion that was correct when it was made" in page
    assert fresh(correction).business_status == BusinessStatus.IN_REVIEW  # nothing saved

    sent = post(client, correction, "deny", code="clinical_opinion", text="It was diagnosed in 2019.")
    assert sent.status_code == 302
    assert fresh(correction).business_status == BusinessStatus.DENIED
    page = main_text(client.get(request_url(correction)))
    assert "statement of disagreement" in page
    assert "Information Commissioner" in page
    assert "It was diagnosed in 2019." in page


def test_assign_to_a_colleague_of_the_same_organisation_only(world, client):
    correction = flag(world)
    client.force_login(world["dr_gp"])
    page = client.get(request_url(correction)).content.decode()
    assert "dr.two@example.com" in page
    assert "dr.hosp@example.com" not in page

    refused = post(client, correction, "assign", colleague=world["dr_hosp"].pk)
    assert refused.status_code == 200
    assert "Choose a colleague" in main_text(refused)
    assert post(client, correction, "assign", colleague=world["dr_two"].pk).status_code == 302
    assert fresh(correction).assigned_to == world["dr_two"]


def test_withdraw_on_the_patients_behalf_needs_a_note(world, client):
    correction = flag(world)
    client.force_login(world["dr_gp"])
    assert "Say how the patient asked to withdraw" in main_text(
        post(client, correction, "withdraw", note="ok")
    )
    assert post(client, correction, "withdraw", note="By phone on 3 March to reception").status_code == 302
    assert fresh(correction).business_status == BusinessStatus.CANCELLED


def test_a_rebuttal_is_offered_after_a_disagreement_and_added_once(world, client):
    correction = in_review(world, flag(world))
    correction = services.deny(
        actor=as_actor(world["dr_gp"]),
        request_id=correction.pk,
        revision=correction.revision,
        code="accurate",
        text="Your readings in March were high.",
    )
    client.force_login(world["dr_gp"])
    assert act_url(correction, "rebuttal") not in client.get(request_url(correction)).content.decode()
    correction = services.log_disagreement(
        actor=as_actor(world["ada"]),
        request_id=correction.pk,
        revision=correction.revision,
        text="The March machine was faulty.",
    )
    page = main_text(client.get(request_url(correction)))
    assert "The March machine was faulty." in page
    assert act_url(correction, "rebuttal") in page

    assert post(client, correction, "rebuttal", text="We will recheck at your next visit.").status_code == 302
    page = main_text(client.get(request_url(correction)))
    assert "We will recheck at your next visit." in page
    assert act_url(correction, "rebuttal") not in page
    assert Statement.objects.filter(request=correction, kind="rebuttal").count() == 1


def test_a_forged_step_name_is_not_found(world, client):
    correction = flag(world)
    client.force_login(world["dr_gp"])
    assert client.post(act_url(correction, "delete_everything"), {}).status_code == 404


# --- Disputed items on the clinician record pages --------------------------------------------


def disputed_with_statements(world):
    correction = in_review(world, flag(world))
    correction = services.deny(
        actor=as_actor(world["dr_gp"]),
        request_id=correction.pk,
        revision=correction.revision,
        code="accurate",
        text="Your readings in March were high.",
    )
    correction = services.log_disagreement(
        actor=as_actor(world["ada"]),
        request_id=correction.pk,
        revision=correction.revision,
        text="The March machine was faulty.",
    )
    return services.add_rebuttal(
        actor=as_actor(world["dr_gp"]),
        request_id=correction.pk,
        revision=correction.revision,
        text="We will recheck at your next visit.",
    )


@pytest.mark.parametrize("who", ["dr_gp", "dr_hosp"])
def test_an_open_request_shows_the_item_under_dispute_to_every_clinician(world, client, who):
    flag(world)
    client.force_login(world[who])
    record = main_text(client.get(reverse("clinician:record", kwargs={"patient_id": world["patient"].pk})))
    assert record.count("Under dispute") == 1
    entry = client.get(
        reverse(
            "clinician:entry",
            kwargs={"patient_id": world["patient"].pk, "entry_id": world["hypertension"].pk},
        )
    )
    page = main_text(entry)
    assert "Under dispute" in page
    assert "is deciding their request" in page
    assert ("Open the correction request" in page) is (who == "dr_gp")


@pytest.mark.parametrize("who", ["dr_gp", "dr_hosp"])
def test_a_disagreement_and_its_rebuttal_stand_beside_the_item_for_every_clinician(world, client, who):
    disputed_with_statements(world)
    client.force_login(world[who])
    record = main_text(client.get(reverse("clinician:record", kwargs={"patient_id": world["patient"].pk})))
    assert "Under dispute" in record
    page = main_text(
        client.get(
            reverse(
                "clinician:entry",
                kwargs={"patient_id": world["patient"].pk, "entry_id": world["hypertension"].pk},
            )
        )
    )
    assert "Statement of disagreement from the patient" in page
    assert "The March machine was faulty." in page
    assert "Response from Riverside Surgery" in page
    assert "We will recheck at your next visit." in page


def test_an_undisputed_item_has_no_badge(world, client):
    client.force_login(world["dr_gp"])
    record = main_text(client.get(reverse("clinician:record", kwargs={"patient_id": world["patient"].pk})))
    assert "Under dispute" not in record


# --- Figures --------------------------------------------------------------------------------


def decided_mix(world):
    """At the GP: one corrected, one refused, one open and overdue. At the hospital: one open."""
    corrected = in_review(world, flag(world))
    services.accept(
        actor=as_actor(world["dr_gp"]),
        request_id=corrected.pk,
        revision=corrected.revision,
        resource_json=condition_json(world["hypertension"], code={"text": "Hypertension, resolved"}),
        based_on_version=1,
    )
    refused = in_review(world, flag(world, world["depression"], element="", proposed="Not me"))
    services.deny(
        actor=as_actor(world["dr_gp"]),
        request_id=refused.pk,
        revision=refused.revision,
        code="accurate",
        text="Diagnosed by the practice in 2023.",
    )
    overdue = flag(world, RecordEntry.objects.get(fhir_id="c3"), element="", proposed="Remove it please")
    CorrectionRequest.objects.filter(pk=overdue.pk).update(due_on=timezone.localdate() - timedelta(days=1))
    flag(world, world["wrist"], element="", proposed="It was my left wrist")


def test_the_figures_page_shows_the_organisations_own_numbers_as_chart_and_table(world, client):
    decided_mix(world)
    client.force_login(world["dr_gp"])
    page = main_text(client.get(FIGURES))
    chart = page[page.index('id="figures-chart"') : page.index('id="figures-table"')]
    assert re.search(r"Received</span>.*?workspace-chart__value\">3<", chart)
    assert re.search(r"Corrected</span>.*?workspace-chart__value\">1<", chart)
    assert re.search(r"Not corrected</span>.*?workspace-chart__value\">1<", chart)
    assert re.search(r"Overdue now</span>.*?workspace-chart__value\">1<", chart)
    assert 'width="33"' in chart  # the bar's share of the largest, as an SVG width
    assert "Median days to a decision" in page
    assert "Health problem: 1 corrected" in page
    assert "It was my left wrist" not in page


def test_the_ig_console_compares_every_organisation_without_clinical_content(world, client):
    decided_mix(world)
    client.force_login(world["ig"])
    response = client.get(reverse("ig:corrections"))
    page = main_text(response)
    assert response.status_code == 200
    assert "Corrections across the network" in page
    rows = {
        re.search(r"Organisation </span>([^<(]+)", row).group(1).strip(): re.findall(
            r"</span>([^<]*)</td>", row
        )
        for row in re.findall(r'<tr class="nhsuk-table__row network-row".*?</tr>', page)
    }
    assert rows["Riverside Surgery"][1:5] == ["3", "1", "0", "1"]
    assert rows["City Teaching Hospitals"][1:5] == ["1", "0", "0", "0"]
    assert "Health problem (1)" in page
    assert 'id="chart-received"' in page
    assert 'id="chart-overdue"' in page
    for clinical in ("Hypertensive", "Hypertension", "Depressive", "Not me", "left wrist", "Okafor", "2023"):
        assert clinical not in page
    assert reverse("ig:corrections") in client.get(reverse("ig:search")).content.decode()


def test_clinicians_do_not_reach_the_network_comparison(world, client):
    client.force_login(world["dr_gp"])
    assert client.get(reverse("ig:corrections")).status_code == 404
