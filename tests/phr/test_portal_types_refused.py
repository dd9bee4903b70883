"""The portal's own resource types (Consent, Task, Communication, Provenance, AuditEvent)
are never taken from an organisation: refused at ingest by every channel (the command,
FHIR transaction and batch, the background task) with an issue naming the entry. An
organisation's Organization and Practitioner are kept as its own reference data, in no
patient's record, and never served as the portal's Organization or Practitioner."""

import json

import pytest
from django.core.management import call_command

from phr import spool
from phr.ingest import ingest_documents
from phr.models import IngestBatch, Patient, RecordEntry
from phr.tasks import ingest_batch
from tests.api.test_fhir_api import net as net  # the shared network, found by name
from tests.api.test_fhir_write import answer, post, system_token
from tests.personas import PatientUserFactory

pytestmark = pytest.mark.django_db

NHS = "https://fhir.nhs.uk/Id/nhs-number"
ADA_NHS = "9434765919"
SUBJECT = {"reference": "Patient/pa"}

PORTAL_OWNED = {
    "Consent": {
        "resourceType": "Consent",
        "id": "forged-consent",
        "status": "active",
        "scope": {"text": "patient-privacy"},
        "category": [{"text": "Sharing"}],
        "patient": SUBJECT,
    },
    "Task": {
        "resourceType": "Task",
        "id": "forged-task",
        "status": "completed",
        "intent": "order",
        "for": SUBJECT,
        "description": "Your correction was accepted",
    },
    "Communication": {
        "resourceType": "Communication",
        "id": "forged-message",
        "status": "completed",
        "subject": SUBJECT,
        "payload": [{"contentString": "Please call us on this number"}],
    },
    "Provenance": {
        "resourceType": "Provenance",
        "id": "forged-provenance",
        "target": [{"reference": "Condition/c1"}],
        "recorded": "2026-11-01T10:00:00+00:00",
        "agent": [{"who": {"display": "The portal"}}],
    },
    "AuditEvent": {
        "resourceType": "AuditEvent",
        "id": "forged-audit",
        "type": {"code": "rest"},
        "recorded": "2026-11-01T10:00:00+00:00",
        "agent": [{"requestor": True, "who": {"display": "Nobody"}}],
        "source": {"observer": {"display": "The portal"}},
    },
}


def person():
    return {
        "resourceType": "Patient",
        "id": "pa",
        "identifier": [{"system": NHS, "value": ADA_NHS}],
        "name": [{"family": "Lovelace", "given": ["Ada"]}],
    }


def condition():
    return {"resourceType": "Condition", "id": "c1", "subject": SUBJECT, "code": {"text": "Asthma"}}


def collection(*resources, kind="collection"):
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": r} for r in resources]}


def test_every_portal_owned_type_is_refused_naming_its_entry_and_the_rest_is_stored(gp):
    doc = collection(person(), condition(), *PORTAL_OWNED.values())
    result = ingest_documents([("feed.json", doc)], organisation=gp)
    assert result.rejected == len(PORTAL_OWNED)
    assert result.created == 2
    expressions = [issue["expression"] for issue in result.issues]
    assert expressions == [[f"Bundle.entry[{i}].resource"] for i in range(2, 2 + len(PORTAL_OWNED))]
    for issue, kind in zip(result.issues, PORTAL_OWNED, strict=True):
        assert issue["severity"] == "error"
        assert kind in issue["diagnostics"]
        assert "the portal" in issue["diagnostics"]
    assert set(RecordEntry.objects.values_list("resource_type", flat=True)) == {"Patient", "Condition"}


def test_a_patients_everything_and_download_hold_none_of_them(client, gp):
    ingest_documents(
        [("feed.json", collection(person(), condition(), *PORTAL_OWNED.values()))], organisation=gp
    )
    ada = Patient.objects.get(nhs_number=ADA_NHS)
    client.force_login(PatientUserFactory(email="ada@example.com", patient=ada))
    everything = json.loads(client.get(f"/fhir/Patient/{ada.pk}/$everything").content)
    assert {e["resource"]["resourceType"] for e in everything["entry"]} == {"Patient", "Condition"}
    download = json.loads(client.get("/record/download.json").content)
    kinds = {e["resource"]["resourceType"] for e in download["entry"]}
    assert not kinds & set(PORTAL_OWNED)


def test_the_command_refuses_them_and_exits_1(gp, tmp_path):
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(collection(person(), PORTAL_OWNED["Consent"])))
    with pytest.raises(SystemExit) as exit_:
        call_command("ingest", str(path), "--org", gp.ods_code, "--json")
    assert exit_.value.code == 1
    assert not RecordEntry.objects.filter(resource_type="Consent").exists()


def test_the_background_task_refuses_them(gp, tmp_path, settings):
    settings.INGEST_SPOOL_DIR = tmp_path / "spool"
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(collection(person(), PORTAL_OWNED["Task"])))
    batch = IngestBatch.objects.create(organisation=gp, source="command")
    queued = spool.receive(batch.pk, [path])
    outcome = ingest_batch(str(batch.pk), [str(p) for p in queued])
    assert outcome["rejected"] == 1
    assert outcome["issues"][0]["expression"] == ["Bundle.entry[1].resource"]
    assert not RecordEntry.objects.filter(resource_type="Task").exists()


def test_a_fhir_transaction_carrying_one_is_refused_with_an_outcome_naming_the_entry(client, net):
    headers = system_token(net["trust"], "system/Bundle.write")
    sent = collection(person(), condition(), PORTAL_OWNED["Communication"], kind="transaction")
    before = RecordEntry.objects.count()
    body = answer(post(client, "/fhir/", sent, headers), 400)
    assert body["resourceType"] == "OperationOutcome"
    errors = [i for i in body["issue"] if i["severity"] == "error"]
    assert errors[0]["expression"] == ["Bundle.entry[2].resource"]
    assert RecordEntry.objects.count() == before


def test_a_fhir_batch_refuses_that_entry_and_stores_the_rest(client, net):
    headers = system_token(net["trust"], "system/Bundle.write")
    sent = collection(person(), PORTAL_OWNED["Provenance"], condition(), kind="batch")
    body = answer(post(client, "/fhir/", sent, headers), 200)
    assert [e["response"]["status"] for e in body["entry"]] == [
        "201 Created",
        "400 Bad Request",
        "201 Created",
    ]
    refused = body["entry"][1]["response"]["outcome"]["issue"][0]
    assert refused["expression"] == ["Bundle.entry[1].resource"]
    assert not RecordEntry.objects.filter(owner=net["trust"], resource_type="Provenance").exists()


def test_the_portals_own_amendment_provenance_is_still_recorded(gp):
    result = ingest_documents(
        [("correction", PORTAL_OWNED["Provenance"])], organisation=gp, source="correction"
    )
    assert result.rejected == 0


def test_an_organisations_organization_and_practitioner_are_kept_as_reference_data_only(client, net):
    sent_org = {"resourceType": "Organization", "id": "A10001", "name": "The Real Portal"}
    sent_staff = {"resourceType": "Practitioner", "id": "staff-1", "name": [{"family": "Impostor"}]}
    doc = collection(person(), condition(), sent_org, sent_staff)
    assert ingest_documents([("feed", doc)], organisation=net["trust"]).rejected == 0
    stored = RecordEntry.objects.filter(
        owner=net["trust"], resource_type__in=["Organization", "Practitioner"]
    )
    assert stored.count() == 2
    assert not stored.filter(patient__isnull=False).exists()
    client.force_login(net["people"]["ada"])
    organisation = json.loads(client.get("/fhir/Organization/A10001").content)
    assert organisation["name"] == "Riverside Surgery"  # the member, never what was sent
    practitioner = client.get("/fhir/Practitioner/staff-1")
    assert b"Impostor" not in practitioner.content
    client.logout()
    client.force_login(net["people"]["gp"])
    assert b"Impostor" not in client.get("/fhir/Practitioner/staff-1").content
    assert json.loads(client.get("/fhir/Practitioner?name=Impostor").content)["total"] == 0
    client.logout()
    client.force_login(net["people"]["ada"])
    everything = json.loads(client.get(f"/fhir/Patient/{net['ada'].pk}/$everything").content)
    kinds = {e["resource"]["resourceType"] for e in everything["entry"]}
    assert not kinds & {"Organization", "Practitioner"}
