"""The correction loop: flag, route to the owner, review, ask, extend, decide, disagree,
rebut, notify those who read the old version; and every refusal on the way."""

import json
import threading
from datetime import date, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection, connections

from accounts.models import Notification, User
from accuracy import services
from accuracy.figures import figures_for, network_figures
from accuracy.models import (
    BusinessStatus,
    CorrectionRequest,
    DownstreamNotice,
    Status,
    SweepMark,
    TimelineEvent,
)
from accuracy.tasks import deadline_sweep
from audit.models import AuditEvent
from consent.policy import NotFound, actor_for, open_record
from phr.ingest import ingest_documents
from phr.models import EntryVersion, Organisation, OrganisationKind, Patient, RecordEntry
from tests.feeds import NHS, patient_resource, send
from tests.personas import ClinicianFactory, PatientUserFactory


def medication(dose="50mg once daily"):
    return {
        "resourceType": "MedicationStatement",
        "id": "amlodipine",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"},
        "dosage": [{"text": dose}],
    }


@pytest.fixture
def net(gp, dr_gp, ig_officer):
    trust = Organisation.objects.create(
        ods_code="RX100", name="City Hospital", kind=OrganisationKind.ACUTE_TRUST
    )
    other = Organisation.objects.create(
        ods_code="RX900", name="Far Away Trust", kind=OrganisationKind.ACUTE_TRUST
    )
    send(gp, patient_resource("p1", "9434765919"), medication())
    person = Patient.objects.get()
    people = {
        "patient": PatientUserFactory(email="ada@example.com", patient=person),
        "gp": dr_gp,
        "gp2": ClinicianFactory(email="dr.two@example.com", organisation=gp),
        "trust": ClinicianFactory(email="dr.trust@example.com", organisation=trust),
        "far": ClinicianFactory(email="dr.far@example.com", organisation=other),
        "ig": ig_officer,
    }
    entry = RecordEntry.objects.get(resource_type="MedicationStatement")
    return {"gp": gp, "trust": trust, "patient": person, "entry": entry, "people": people}


def actor(net, who):
    return actor_for(User.objects.get(pk=net["people"][who].pk))


def flag(net, element="dosage[0].text", proposed="5mg once daily"):
    return services.submit_correction(
        actor=actor(net, "patient"),
        entry_id=net["entry"].pk,
        element=element,
        proposed=proposed,
        reason="My GP changed it to 5mg in March",
        contact_preference="portal",
    )


def fresh(request):
    return CorrectionRequest.objects.get(pk=request.pk)


def amended_json(dose="5mg once daily"):
    return json.dumps(medication(dose))


# --- Flagging and routing ---------------------------------------------------------------


def test_a_flag_goes_to_the_owner_of_the_stored_item_with_a_deadline(net):
    with time_machine.travel(date(2026, 1, 31)):
        request = flag(net)
    assert request.owner == net["gp"]
    assert (request.status, request.business_status) == (Status.READY, BusinessStatus.QUEUED)
    assert request.due_on == date(2026, 2, 28)
    assert request.current_text == "50mg once daily"
    assert request.element_label == "The dose"
    assert Notification.objects.filter(user=net["people"]["gp"], kind="correction").exists()
    assert AuditEvent.objects.filter(action="correction.submit", patient=net["patient"]).exists()


def test_an_open_request_on_the_same_item_is_shown_instead_of_a_duplicate(net):
    first = flag(net)
    with pytest.raises(services.DuplicateRequest) as duplicate:
        flag(net, element="", proposed="Remove it")
    assert duplicate.value.existing == first


def test_a_patient_cannot_flag_another_patients_item_or_a_missing_one(net):
    other = Organisation.objects.create(ods_code="RZ1", name="Z", kind="other")
    doc = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "p9",
                    "identifier": [{"system": NHS, "value": "9990000018"}],
                }
            },
            {"resource": {**medication(), "id": "theirs", "subject": {"reference": "Patient/p9"}}},
        ],
    }
    ingest_documents([("z", doc)], organisation=other)
    theirs = RecordEntry.objects.get(fhir_id="theirs")
    for entry_id in (theirs.pk, "6f1c5c1e-0000-4000-8000-000000000000"):
        with pytest.raises(NotFound):
            services.submit_correction(
                actor=actor(net, "patient"),
                entry_id=entry_id,
                element="",
                proposed="x y",
                reason="not mine at all",
                contact_preference="portal",
            )


def test_a_clinician_cannot_see_or_act_on_another_organisations_request(net):
    request = flag(net)
    for who in ("trust", "ig"):
        with pytest.raises(NotFound):
            services.request_for(actor(net, who), request.pk)
        with pytest.raises(NotFound):
            services.start_review(actor=actor(net, who), request_id=request.pk, revision=request.revision)


def test_invalid_input_names_the_field(net):
    with pytest.raises(services.InvalidStep) as bad:
        flag(net, element="not.an.element")
    assert bad.value.field == "element"


# --- The whole loop -----------------------------------------------------------------------


def test_review_ask_reply_accept_amends_with_provenance_and_notifies_readers(net):
    request = flag(net)
    # The hospital read version 1 of the item before it was corrected.
    open_record(actor(net, "trust"), net["patient"].pk).read()

    request = services.start_review(actor=actor(net, "gp"), request_id=request.pk, revision=request.revision)
    assert request.business_status == BusinessStatus.IN_REVIEW
    request = services.ask_information(
        actor=actor(net, "gp"),
        request_id=request.pk,
        revision=request.revision,
        question="Which clinic changed the dose?",
    )
    assert request.business_status == BusinessStatus.WAITING
    request = services.patient_reply(
        actor=actor(net, "patient"),
        request_id=request.pk,
        revision=request.revision,
        body="The hypertension clinic in March",
    )
    assert request.business_status == BusinessStatus.IN_REVIEW

    request = services.accept(
        actor=actor(net, "gp"),
        request_id=request.pk,
        revision=request.revision,
        resource_json=amended_json(),
        based_on_version=1,
    )

    assert (request.status, request.business_status) == (Status.COMPLETED, BusinessStatus.AMENDED)
    entry = RecordEntry.objects.get(pk=net["entry"].pk)
    assert entry.version == 2
    assert json.loads(entry.json)["dosage"][0]["text"] == "5mg once daily"
    old, new = EntryVersion.objects.filter(entry=entry).order_by("number")
    assert json.loads(old.json)["dosage"][0]["text"] == "50mg once daily"
    assert (new.source, new.produced_by) == ("correction", f"correction:{request.pk.hex}")
    provenance = RecordEntry.objects.get(resource_type="Provenance")
    assert str(request.pk) in provenance.json
    assert "_history/2" in provenance.json
    (notice,) = DownstreamNotice.objects.filter(request=request)
    assert (notice.organisation, notice.versions_read) == (net["trust"], "1")
    assert json.loads(notice.communication)["resourceType"] == "Communication"
    assert Notification.objects.filter(user=net["people"]["trust"], title__contains="corrected").exists()
    assert not DownstreamNotice.objects.filter(organisation=net["gp"]).exists()  # the owner is not told
    kinds = list(TimelineEvent.objects.filter(request=request).values_list("kind", flat=True))
    assert kinds == ["submitted", "start_review", "ask_information", "patient_reply", "accept", "notice"]
    assert {m.from_patient for m in request.messages.all()} == {True, False}


def test_deny_then_disagreement_then_rebuttal_stand_beside_the_item(net, django_capture_on_commit_callbacks):
    request = flag(net)
    request = services.start_review(actor=actor(net, "gp"), request_id=request.pk, revision=request.revision)
    with django_capture_on_commit_callbacks(execute=True):
        request = services.deny(
            actor=actor(net, "gp"),
            request_id=request.pk,
            revision=request.revision,
            code="accurate",
            text="The clinic letter of 3 March says 50mg.",
        )
    letter = services.decision_letter(request)
    assert "statement of disagreement" in letter
    assert "Information Commissioner" in letter
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]  # the patient is emailed that there is news
    assert "50mg" not in mail.outbox[0].body  # the detail stays behind sign-in
    assert services.disputed_entry_ids([net["entry"].pk]) == set()

    request = services.log_disagreement(
        actor=actor(net, "patient"),
        request_id=request.pk,
        revision=request.revision,
        text="I take 5mg: see the clinic's own record.",
    )
    assert request.business_status == BusinessStatus.DISAGREEMENT
    assert services.disputed_entry_ids([net["entry"].pk]) == {net["entry"].pk}
    request = services.add_rebuttal(
        actor=actor(net, "gp"),
        request_id=request.pk,
        revision=request.revision,
        text="We will review at your next appointment.",
    )
    assert [s.kind for s in request.statements.all()] == ["disagreement", "rebuttal"]
    with pytest.raises(services.Conflict):
        services.add_rebuttal(
            actor=actor(net, "gp"), request_id=request.pk, revision=request.revision, text="A second response"
        )


def test_an_open_request_makes_the_item_disputed_until_it_is_decided(net):
    request = flag(net)
    assert services.disputed_entry_ids([net["entry"].pk]) == {net["entry"].pk}
    services.withdraw(actor=actor(net, "patient"), request_id=request.pk, revision=request.revision)
    assert services.disputed_entry_ids([net["entry"].pk]) == set()


# --- State rules, concurrency and staleness ---------------------------------------------------


def test_no_step_skips_a_state_the_guide_does_not_allow(net):
    request = flag(net)
    with pytest.raises(services.Conflict, match="cannot be corrected"):
        services.accept(
            actor=actor(net, "gp"),
            request_id=request.pk,
            revision=request.revision,
            resource_json=amended_json(),
            based_on_version=1,
        )
    with pytest.raises(services.Conflict):
        services.log_disagreement(
            actor=actor(net, "patient"),
            request_id=request.pk,
            revision=request.revision,
            text="I disagree with this",
        )
    assert RecordEntry.objects.get(pk=net["entry"].pk).version == 1


def test_a_form_based_on_an_old_revision_is_told_what_happened(net):
    request = flag(net)
    services.start_review(actor=actor(net, "gp"), request_id=request.pk, revision=request.revision)
    with pytest.raises(services.Conflict, match=r"Review started by dr\.gp@example\.com"):
        services.start_review(actor=actor(net, "gp2"), request_id=request.pk, revision=request.revision)


def test_an_amendment_based_on_a_stale_version_is_refused_not_merged(net):
    request = flag(net)
    request = services.start_review(actor=actor(net, "gp"), request_id=request.pk, revision=request.revision)
    # The GP system sends a new version meanwhile.
    ingest_documents([("feed", medication("10mg once daily"))], organisation=net["gp"])
    with pytest.raises(services.Conflict, match="changed while you were editing"):
        services.accept(
            actor=actor(net, "gp"),
            request_id=request.pk,
            revision=request.revision,
            resource_json=amended_json(),
            based_on_version=1,
        )
    assert RecordEntry.objects.get(pk=net["entry"].pk).version == 2
    assert fresh(request).business_status == BusinessStatus.IN_REVIEW


def test_an_invalid_amendment_names_the_element_and_changes_nothing(net):
    request = flag(net)
    request = services.start_review(actor=actor(net, "gp"), request_id=request.pk, revision=request.revision)
    bad = medication()
    bad["dosage"][0]["text"] = 42
    with pytest.raises(services.InvalidStep, match=r"MedicationStatement\.dosage\[0\]\.text"):
        services.accept(
            actor=actor(net, "gp"),
            request_id=request.pk,
            revision=request.revision,
            resource_json=json.dumps(bad),
            based_on_version=1,
        )
    assert fresh(request).business_status == BusinessStatus.IN_REVIEW
    assert RecordEntry.objects.get(pk=net["entry"].pk).version == 1


@pytest.mark.django_db(transaction=True)
def test_two_clinicians_deciding_at_once_exactly_one_wins(net):
    if connection.vendor != "postgresql":
        pytest.skip("the race is run on PostgreSQL (SQLite's in-memory test database cannot share a lock)")
    request = flag(net)
    request = services.start_review(actor=actor(net, "gp"), request_id=request.pk, revision=request.revision)
    outcomes, barrier = [], threading.Barrier(2)

    def decide(who, how):
        try:
            barrier.wait()
            if how == "accept":
                services.accept(
                    actor=actor(net, who),
                    request_id=request.pk,
                    revision=request.revision,
                    resource_json=amended_json(),
                    based_on_version=1,
                )
            else:
                services.deny(
                    actor=actor(net, who),
                    request_id=request.pk,
                    revision=request.revision,
                    code="accurate",
                    text="It is right as it is.",
                )
            outcomes.append("won")
        except services.Conflict as conflict:
            outcomes.append(str(conflict))
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=decide, args=("gp", "accept")),
        threading.Thread(target=decide, args=("gp2", "deny")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("won") == 1
    assert any("changed while you were looking" in o for o in outcomes if o != "won")
    assert fresh(request).status == Status.COMPLETED


# --- Deadlines --------------------------------------------------------------------------------


def test_the_deadline_can_be_extended_once_before_it_passes_and_the_patient_is_told(net):
    with time_machine.travel(date(2026, 1, 31)):
        request = flag(net)
        request = services.extend_deadline(
            actor=actor(net, "gp"),
            request_id=request.pk,
            revision=request.revision,
            reason="We need the hospital clinic's letter",
        )
        assert request.due_on == date(2026, 4, 28)
        assert request.first_due_on == date(2026, 2, 28)
        assert Notification.objects.filter(
            user=net["people"]["patient"], title__contains="more time"
        ).exists()
        with pytest.raises(services.InvalidStep, match="only once"):
            services.extend_deadline(
                actor=actor(net, "gp"),
                request_id=request.pk,
                revision=request.revision,
                reason="And again please",
            )


def test_no_extension_after_the_first_deadline_or_beyond_two_months(net):
    with time_machine.travel(date(2026, 1, 10)):
        request = flag(net)
        with pytest.raises(services.InvalidStep, match="no later than"):
            services.extend_deadline(
                actor=actor(net, "gp"),
                request_id=request.pk,
                revision=request.revision,
                reason="Need more time",
                until=date(2026, 4, 11),
            )
    with (
        time_machine.travel(date(2026, 2, 11)),
        pytest.raises(services.InvalidStep, match="before it has passed"),
    ):
        services.extend_deadline(
            actor=actor(net, "gp"),
            request_id=request.pk,
            revision=request.revision,
            reason="Need more time",
        )


def test_the_sweep_reminds_at_7_and_1_days_escalates_when_overdue_and_never_twice(net):
    with time_machine.travel(date(2026, 3, 1)):
        request = flag(net)  # due 1 April
    assert deadline_sweep(today="2026-03-20") == {"reminders": 0, "escalations": 0}
    assert deadline_sweep(today="2026-03-25") == {"reminders": 1, "escalations": 0}
    assert deadline_sweep(today="2026-03-25") == {"reminders": 0, "escalations": 0}
    assert deadline_sweep(today="2026-03-31") == {"reminders": 1, "escalations": 0}
    assert deadline_sweep(today="2026-04-02") == {"reminders": 0, "escalations": 1}
    assert deadline_sweep(today="2026-04-03") == {"reminders": 0, "escalations": 0}
    kinds = sorted(SweepMark.objects.filter(request=request).values_list("kind", flat=True))
    assert kinds == ["escalate", "remind-1", "remind-7"]
    assert Notification.objects.filter(user=net["people"]["ig"], title__contains="overdue").count() == 1
    assert Notification.objects.filter(user=net["people"]["gp"], title__contains="due soon").count() == 2


def test_a_decided_request_gets_no_reminders(net):
    with time_machine.travel(date(2026, 3, 1)):
        request = flag(net)
        services.withdraw(actor=actor(net, "patient"), request_id=request.pk, revision=request.revision)
    assert deadline_sweep(today="2026-04-05") == {"reminders": 0, "escalations": 0}


def test_days_left(net):
    request = flag(net)
    assert services.days_left(request, request.due_on - timedelta(days=3)) == 3


def test_a_request_is_a_valid_fhir_task_with_its_communications(net):
    from fhir.resources.R4B.communication import Communication
    from fhir.resources.R4B.task import Task

    from accuracy.fhir import communication_resource, task_resource
    from accuracy.selectors import release_copies

    request = flag(net)
    request = services.start_review(actor=actor(net, "gp"), request_id=request.pk, revision=request.revision)
    request = services.ask_information(
        actor=actor(net, "gp"),
        request_id=request.pk,
        revision=request.revision,
        question="Which clinic changed it?",
    )
    copies = release_copies(actor(net, "gp"), [request], thread=True)[request.pk]
    task = task_resource(request, copies)
    Task.model_validate(task)
    assert (task["status"], task["businessStatus"]["coding"][0]["code"]) == (
        "in-progress",
        "waiting-for-information",
    )
    assert task["owner"]["identifier"]["value"] == "A10001"
    assert copies.messages
    for message, text in copies.messages:
        Communication.model_validate(communication_resource(message, text))


# --- Feedback figures ---------------------------------------------------------------------


def test_figures_count_decisions_days_overdue_and_kinds(net):
    with time_machine.travel(date(2026, 1, 5)):
        first = flag(net)
        first = services.start_review(actor=actor(net, "gp"), request_id=first.pk, revision=first.revision)
    with time_machine.travel(date(2026, 1, 15)):
        services.accept(
            actor=actor(net, "gp"),
            request_id=first.pk,
            revision=first.revision,
            resource_json=amended_json(),
            based_on_version=1,
        )
    with time_machine.travel(date(2026, 1, 20)):
        flag(net, element="", proposed="Remove this medicine")
    with time_machine.travel(date(2026, 3, 1)):
        figures = figures_for(net["gp"])
        assert (figures.received, figures.accepted, figures.denied, figures.open_now) == (2, 1, 0, 1)
        assert figures.overdue_now == 1  # due 20 February
        assert figures.median_days_to_decision == 10
        assert figures.most_corrected == [("MedicationStatement", 1)]
        network = {f.organisation.ods_code: f for f in network_figures()}
        assert network["A10001"].received == 2
        assert network["RX100"].received == 0


def test_the_sweep_command_runs_the_same_sweep_once(net, capsys):
    from django.core.management import call_command

    with time_machine.travel(date(2026, 3, 1)):
        flag(net)
    call_command("deadline_sweep", today="2026-03-31")
    call_command("deadline_sweep", today="2026-03-31")
    out = capsys.readouterr().out.splitlines()
    assert out == ["reminders sent: 1, escalations sent: 0", "reminders sent: 0, escalations sent: 0"]
