"""How the searches of the portal's own resources (Consent, AuditEvent, Provenance, Task,
Communication) answer, as the record's searches do: _summary=count (the total alone,
audited as the search is, never counting what the caller may not see), _elements (the
elements asked for, the mandatory ones, tagged SUBSETTED) and _sort by their dates."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accuracy import services
from audit.models import AuditEvent
from consent import access_log, ig_queries
from consent.policy import actor_for
from phr.ingest import ingest_documents
from phr.models import RecordEntry
from tests.api.test_fhir_api import as_user, fhir, flag_the_dose, ids
from tests.api.test_fhir_api import net as net  # the shared network, found by name
from tests.api.test_fhir_reads import SUBSETTED, posted, resources

PORTAL_TYPES = ("Consent", "AuditEvent", "Provenance", "Task", "Communication")
SUBSETTED_TAG = {"system": SUBSETTED, "code": "SUBSETTED", "display": "subsetted"}


def later(minutes: int):
    """A moment some minutes from now (within a session's idle time), time standing still."""
    return time_machine.travel(timezone.now() + timedelta(minutes=minutes), tick=False)


def counted(client, url) -> int:
    """The total of a _summary=count answer, which names no entries and links to itself."""
    bundle = fhir(client, url)
    assert bundle["type"] == "searchset"
    assert "entry" not in bundle
    assert [link["relation"] for link in bundle["link"]] == ["self"]
    return bundle["total"]


def refused(client, url) -> list[str]:
    """The parameters a 400 OperationOutcome names."""
    return fhir(client, url, status=400)["issue"][0]["expression"]


def events_since(seq: int):
    return AuditEvent.objects.filter(seq__gt=seq).order_by("seq")


def last_seq() -> int:
    return AuditEvent.objects.values_list("seq", flat=True).last() or 0


def ask(net, who: str, fhir_id: str, element: str, proposed: str):
    """A patient asks for one item of their record to be corrected."""
    return services.submit_correction(
        actor=actor_for(net["people"][who]),
        entry_id=RecordEntry.objects.get(fhir_id=fhir_id, patient=net[who]).pk,
        element=element,
        proposed=proposed,
        reason="It is not right",
        contact_preference="portal",
    )


def refuse(net, request):
    gp = actor_for(net["people"]["gp"])
    request = services.start_review(actor=gp, request_id=request.pk, revision=request.revision)
    return services.deny(
        actor=gp, request_id=request.pk, revision=request.revision, code="accurate", text="It was right then"
    )


def provenance(organisation, fhir_id: str, target: str, recorded: str):
    """A Provenance the portal records about one of an organisation's items (as an
    amendment does: an organisation's system may not send one)."""
    sent = {
        "resourceType": "Provenance",
        "id": fhir_id,
        "target": [{"reference": target}],
        "recorded": recorded,
        "agent": [{"who": {"display": "Records team"}}],
    }
    assert ingest_documents([("prov", sent)], organisation=organisation, source="correction").rejected == 0


@pytest.fixture
def looked_at(client, net):
    """The trust's clinician looks at Ada's record three times, minutes apart, and at Ben's
    once: (Ada's looks in the order they happened)."""
    as_user(client, net, "trust")
    for minutes in (5, 10, 15):
        with later(minutes):
            fhir(client, f"/fhir/Condition?patient={net['ada'].pk}")
    fhir(client, f"/fhir/Condition?patient={net['ben'].pk}")
    client.logout()
    looks = access_log.looks(net["ada"], viewer=net["people"]["ada"], filters=access_log.LogFilters())
    return list(looks.order_by("occurred_at"))


@pytest.fixture
def two_tasks(net):
    """Ada asks about her dose, then minutes later about her diabetes; later still the GP
    refuses the first: (first, second)."""
    first = flag_the_dose(net)
    with later(5):
        second = ask(net, "ada", "c3", "code", "Pre-diabetes")
    with later(10):
        first = refuse(net, first)
    return first, second


@pytest.fixture
def conversation(net):
    """The GP writes twice on Ada's request, minutes apart: the request."""
    request = flag_the_dose(net)
    gp = actor_for(net["people"]["gp"])
    for minutes, body in ((5, "We are looking at it"), (10, "Could you say which dose?")):
        with later(minutes):
            request = services.post_message(
                actor=gp, request_id=request.pk, revision=request.revision, body=body
            )
    return request


@pytest.fixture
def provenances(net):
    """A Provenance about Ada's allergy (the GP's) recorded in 2025, then one recorded in
    2024 (stored last); one about Ben's c1 (Ben's GP's)."""
    provenance(net["gp"], "prov-late", "AllergyIntolerance/a1", "2025-06-01T10:00:00+00:00")
    with later(5):
        provenance(net["gp"], "prov-early", "AllergyIntolerance/a1/_history/1", "2024-01-01T10:00:00+00:00")
    bens_gp = RecordEntry.objects.get(fhir_id="b1").owner
    provenance(bens_gp, "prov-ben", "Condition/c1", "2025-01-01T10:00:00+00:00")


# --- _summary=count ------------------------------------------------------------------------


def test_a_consent_count_is_one_for_the_patient_and_nothing_for_another(client, net):
    as_user(client, net, "ada")
    seq = last_seq()
    assert counted(client, "/fhir/Consent?_summary=count") == 1
    (event,) = events_since(seq)
    assert (event.action, event.patient_id, event.outcome) == ("consent.read", net["ada"].pk, "permit")
    assert counted(client, f"/fhir/Consent?patient={net['ben'].pk}&_summary=count") == 0
    assert ids(fhir(client, "/fhir/Consent?_summary=false")) == [f"Consent/{net['ada'].pk}"]


def test_an_audit_count_is_the_patients_looks_alone_and_is_audited(client, net, looked_at):
    assert AuditEvent.objects.filter(patient=net["ben"], action="record.search", outcome="permit").exists()
    as_user(client, net, "ada")
    seq = last_seq()
    assert counted(client, "/fhir/AuditEvent?_summary=count") == len(looked_at) == 3
    (event,) = events_since(seq)
    assert (event.action, event.patient_id, event.entries) == ("audit.search", net["ada"].pk, [])
    assert "_summary=count" in event.detail["query"]
    assert counted(client, f"/fhir/AuditEvent?patient={net['ben'].pk}&_summary=count") == 0
    client.logout()
    as_user(client, net, "ig")
    everything = AuditEvent.objects.count()
    assert counted(client, "/fhir/AuditEvent?_summary=count") == everything
    about_ben = AuditEvent.objects.filter(patient=net["ben"]).count()
    assert counted(client, f"/fhir/AuditEvent?patient={net['ben'].pk}&_summary=count") == about_ben


def test_a_provenance_count_is_the_policys_and_discloses_no_entry(client, net, provenances):
    as_user(client, net, "ada")
    seq = last_seq()
    assert counted(client, "/fhir/Provenance?target=AllergyIntolerance/a1&_summary=count") == 2
    (event,) = events_since(seq)
    assert (event.action, event.patient_id, event.outcome, event.entries) == (
        "record.search",
        net["ada"].pk,
        "permit",
        [],
    )
    assert event.detail["summary"] == "count"
    # Ben's c1 has a Provenance; Ada's c1 has none, and hers is all she is counted.
    assert counted(client, "/fhir/Provenance?target=Condition/c1&_summary=count") == 0
    client.logout()
    as_user(client, net, "ben")
    assert counted(client, "/fhir/Provenance?target=Condition/c1&_summary=count") == 1
    assert counted(client, "/fhir/Provenance?target=AllergyIntolerance/a1&_summary=count") == 0


def test_a_task_count_is_the_callers_requests_alone(client, net, two_tasks):
    ask(net, "ben", "b1", "code", "Not hypertension")
    as_user(client, net, "ada")
    assert counted(client, "/fhir/Task?_summary=count") == 2
    assert counted(client, f"/fhir/Task?patient={net['ben'].pk}&_summary=count") == 0
    client.logout()
    as_user(client, net, "gp")  # Ben's item is Hillside's: not in Riverside's queue
    assert counted(client, "/fhir/Task?owner=A10001&_summary=count") == 2
    client.logout()
    as_user(client, net, "ben")
    assert counted(client, "/fhir/Task?_summary=count") == 1


def test_a_communication_count_is_the_conversation_of_a_request_the_caller_may_see(client, net, conversation):
    as_user(client, net, "ada")
    url = f"/fhir/Communication?part-of=Task/{conversation.pk}"
    assert counted(client, f"{url}&_summary=count") == fhir(client, url)["total"] == 2
    client.logout()
    as_user(client, net, "ben")
    assert counted(client, f"{url}&_summary=count") == 0


# --- _elements -----------------------------------------------------------------------------


def test_elements_keep_what_is_asked_and_what_fhir_requires_and_are_tagged(
    client, net, looked_at, conversation, provenances
):
    as_user(client, net, "ada")
    request = conversation
    asked = {
        "/fhir/Consent?_elements=dateTime": {"dateTime", "status", "scope", "category"},
        "/fhir/AuditEvent?_elements=outcome": {"outcome", "type", "recorded", "agent", "source"},
        "/fhir/Provenance?target=AllergyIntolerance/a1&_elements=recorded": {"recorded", "target", "agent"},
        "/fhir/Task?_elements=focus,authoredOn": {"focus", "authoredOn", "status", "intent"},
        f"/fhir/Communication?part-of=Task/{request.pk}&_elements=sent": {"sent", "status"},
    }
    for url, kept in asked.items():
        found = resources(fhir(client, url))
        assert found, url
        for resource in found:
            assert set(resource) == {"resourceType", "id", "meta"} | kept, url
            assert SUBSETTED_TAG in resource["meta"]["tag"], url


def test_a_task_keeps_its_version_beside_the_subsetted_tag(client, net, two_tasks):
    as_user(client, net, "ada")
    tasks = resources(fhir(client, "/fhir/Task?_elements=status&_summary=false"))
    assert {task["meta"]["versionId"] for task in tasks} == {str(r.revision) for r in two_tasks}
    assert all("input" not in task for task in tasks)
    assert all("input" in task for task in resources(fhir(client, "/fhir/Task")))


# --- _sort ---------------------------------------------------------------------------------


def test_audit_events_sort_by_when_they_were_recorded_either_way(client, net, looked_at):
    as_user(client, net, "ada")
    oldest_first = [f"AuditEvent/{ig_queries.fhir_id(event)}" for event in looked_at]
    assert ids(fhir(client, "/fhir/AuditEvent?_sort=date")) == oldest_first
    assert ids(fhir(client, "/fhir/AuditEvent?_sort=-date")) == oldest_first[::-1]
    first = fhir(client, "/fhir/AuditEvent?_sort=date&_count=2")
    assert ids(first) == oldest_first[:2]
    (following,) = [link["url"] for link in first["link"] if link["relation"] == "next"]
    assert "_sort=date" in following
    assert ids(fhir(client, following)) == oldest_first[2:]


def test_tasks_sort_by_authored_or_last_modified_either_way(client, net, two_tasks):
    first, second = (f"Task/{request.pk}" for request in two_tasks)
    as_user(client, net, "ada")
    assert ids(fhir(client, "/fhir/Task?_sort=date")) == [first, second]
    assert ids(fhir(client, "/fhir/Task?_sort=-date")) == [second, first]
    # The first was refused after the second was asked: it was modified last.
    assert ids(fhir(client, "/fhir/Task?_sort=_lastUpdated")) == [second, first]
    assert ids(fhir(client, "/fhir/Task?_sort=-_lastUpdated")) == [first, second]
    paged = fhir(client, "/fhir/Task?_sort=-date&_count=1&_offset=1")
    assert (ids(paged), paged["total"]) == ([first], 2)


def test_a_conversation_sorts_by_when_each_was_sent_either_way(client, net, conversation):
    as_user(client, net, "ada")
    url = f"/fhir/Communication?part-of=Task/{conversation.pk}"
    written = resources(fhir(client, url))
    assert [c["payload"][0]["contentString"] for c in written][-1] == "Could you say which dose?"
    assert resources(fhir(client, f"{url}&_sort=date")) == written
    assert resources(fhir(client, f"{url}&_sort=-date")) == written[::-1]
    assert resources(fhir(client, f"{url}&_sort=-date&_count=1")) == written[-1:]


def test_provenance_sorts_by_recorded_or_by_when_it_was_stored(client, net, provenances):
    as_user(client, net, "ada")
    url = "/fhir/Provenance?target=AllergyIntolerance/a1"
    assert ids(fhir(client, f"{url}&_sort=date")) == ["Provenance/prov-early", "Provenance/prov-late"]
    assert ids(fhir(client, f"{url}&_sort=-date")) == ["Provenance/prov-late", "Provenance/prov-early"]
    assert ids(fhir(client, f"{url}&_sort=_lastUpdated")) == ["Provenance/prov-late", "Provenance/prov-early"]
    assert ids(fhir(client, f"{url}&_sort=-_lastUpdated")) == [
        "Provenance/prov-early",
        "Provenance/prov-late",
    ]
    paged = fhir(client, f"{url}&_sort=date&_count=1&_offset=1&_elements=recorded")
    assert (ids(paged), paged["total"]) == (["Provenance/prov-late"], 2)


def test_consent_sorts_by_its_date_either_way(client, net):
    as_user(client, net, "ada")
    for key in ("date", "-date", "_lastUpdated", "-_lastUpdated"):
        assert ids(fhir(client, f"/fhir/Consent?_sort={key}")) == [f"Consent/{net['ada'].pk}"], key


# --- Refusals ------------------------------------------------------------------------------


def test_what_a_portal_search_cannot_do_is_a_400_naming_the_parameter(client, net):
    request = flag_the_dose(net)
    as_user(client, net, "ada")
    searches = (
        "/fhir/Consent?",
        "/fhir/AuditEvent?",
        "/fhir/Provenance?target=MedicationStatement/m1&",
        "/fhir/Task?",
        f"/fhir/Communication?part-of=Task/{request.pk}&",
    )
    for search in searches:
        assert refused(client, f"{search}_sort=code") == ["_sort"], search
        assert refused(client, f"{search}_sort=") == ["_sort"], search
        assert refused(client, f"{search}_summary=true") == ["_summary"], search
        assert refused(client, f"{search}_elements=meta.tag") == ["_elements"], search
        assert refused(client, f"{search}_total=accurate") == ["_total"], search
    # Only the dates each one has: an event has no _lastUpdated, a message none either.
    assert refused(client, "/fhir/AuditEvent?_sort=_lastUpdated") == ["_sort"]
    assert refused(client, f"/fhir/Communication?part-of=Task/{request.pk}&_sort=-_lastUpdated") == ["_sort"]
    assert "date or -date" in fhir(client, "/fhir/AuditEvent?_sort=x", status=400)["issue"][0]["diagnostics"]


# --- The CapabilityStatement ----------------------------------------------------------------


def test_the_capability_statement_lists_sort_summary_and_elements_for_the_portals_searches(client, db):
    body = fhir(client, "/fhir/metadata")
    by_type = {r["type"]: r for r in body["rest"][0]["resource"]}
    for kind in PORTAL_TYPES:
        params = {p["name"]: p for p in by_type[kind]["searchParam"]}
        assert {"_sort", "_summary", "_elements", "_count", "_offset"} <= set(params), kind
        assert "date" in params["_sort"]["documentation"], kind
    assert (
        "_lastUpdated"
        not in {p["name"]: p for p in by_type["AuditEvent"]["searchParam"]}["_sort"]["documentation"]
    )


def test_a_posted_portal_search_sorts_and_counts_the_same(client, net, two_tasks):
    as_user(client, net, "ada")
    sorted_tasks = posted(client, "/fhir/Task/_search", {"_sort": "-date"})
    assert ids(sorted_tasks) == [f"Task/{r.pk}" for r in reversed(two_tasks)]
    assert posted(client, "/fhir/Task/_search", {"_summary": "count"})["total"] == 2
