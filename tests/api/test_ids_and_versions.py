"""Reads by id that another organisation cannot block, and the audit trail naming the
version a read actually disclosed.

Ids are the data owner's and unique only per owner. A read by id answers, among the
entries the caller may see, the caller's own organisation's entry (staff), else the entry
that has been in its record longest: a sender reusing an id it does not hold never
displaces an item already there, and its own item stays readable by its entry UUID."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from phr.ingest import ingest_documents
from phr.models import RecordEntry
from tests.api.test_fhir_api import ADA_NHS, as_user, fhir
from tests.api.test_fhir_api import net as net  # the shared network, found by name

pytestmark = pytest.mark.django_db
NHS = "https://fhir.nhs.uk/Id/nhs-number"


def later(days: int):
    return time_machine.travel(timezone.now() + timedelta(days=days), tick=True)


def trust_sends_into_adas_record(net, *items, patient_id="tp"):
    """The trust sends its own Patient for Ada (by her NHS number) and the items given."""
    person = {"resourceType": "Patient", "id": patient_id, "identifier": [{"system": NHS, "value": ADA_NHS}]}
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in (person, *items)],
    }
    assert ingest_documents([("trust", bundle)], organisation=net["trust"]).rejected == 0


def impostor(cid="c1", subject="Patient/tp"):
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": subject},
        "code": {"text": "Something the trust never diagnosed"},
    }


def code_of(resource) -> str:
    return resource["code"]["coding"][0]["code"] if "coding" in resource["code"] else resource["code"]["text"]


# --- Reads by id --------------------------------------------------------------------------


def test_another_organisation_reusing_an_id_in_the_patients_record_cannot_block_her_read(client, net):
    with later(1):
        trust_sends_into_adas_record(net, impostor())
    as_user(client, net, "ada")
    assert code_of(fhir(client, "/fhir/Condition/c1")) == "38341003"  # the GP's, there first
    theirs = RecordEntry.objects.get(owner=net["trust"], resource_type="Condition", fhir_id="c1")
    assert (
        fhir(client, f"/fhir/Condition/{theirs.pk}")["code"]["text"] == "Something the trust never diagnosed"
    )


def test_an_old_entry_moved_or_linked_into_the_record_later_does_not_displace_the_one_there(client, net):
    # Long before, the trust sent a c1 about someone else and an orphan c1 about a patient
    # it had not sent yet; later it moves one into Ada's record and links the other there.
    with later(-30):
        ingest_documents(
            [
                (
                    "old",
                    {
                        "resourceType": "Bundle",
                        "type": "collection",
                        "entry": [
                            {
                                "resource": {
                                    "resourceType": "Patient",
                                    "id": "other",
                                    "identifier": [{"system": NHS, "value": "9990000018"}],
                                }
                            },
                            {"resource": impostor("c1", "Patient/other")},
                            {"resource": impostor("c2", "Patient/not-yet")},
                        ],
                    },
                )
            ],
            organisation=net["trust"],
        )
    with later(1):
        trust_sends_into_adas_record(net, {**impostor("c1", "Patient/tp"), "note": [{"text": "moved"}]})
        trust_sends_into_adas_record(net, patient_id="not-yet")
    assert (
        RecordEntry.objects.filter(patient=net["ada"], owner=net["trust"], resource_type="Condition").count()
        == 2
    )
    as_user(client, net, "ada")
    assert code_of(fhir(client, "/fhir/Condition/c1")) == "38341003"
    assert code_of(fhir(client, "/fhir/Condition/c2")) == "195967001"


def test_staff_read_their_own_organisations_entry_by_its_id(client, net):
    with later(1):
        trust_sends_into_adas_record(net, impostor())
    as_user(client, net, "trust")
    assert fhir(client, "/fhir/Condition/c1")["code"]["text"] == "Something the trust never diagnosed"
    client.logout()
    as_user(client, net, "gp")
    assert code_of(fhir(client, "/fhir/Condition/c1")) == "38341003"


def test_a_staff_read_is_not_blocked_by_the_same_id_in_another_patients_record(client, net, settings):
    settings.CONSENT_MODEL = "opt-out"
    as_user(client, net, "trust")
    first = fhir(client, "/fhir/Condition/c1")
    assert first["subject"]["reference"] == f"Patient/{net['ada'].pk}"  # Ada's, in her record first
    bens = RecordEntry.objects.get(resource_type="Condition", fhir_id="c1", patient=net["ben"])
    assert fhir(client, f"/fhir/Condition/{bens.pk}")["subject"]["reference"] == f"Patient/{net['ben'].pk}"


# --- The versions a read discloses --------------------------------------------------------


def send_a_new_dose(net):
    entry = RecordEntry.objects.get(resource_type="MedicationStatement", fhir_id="m1")
    changed = {**json.loads(entry.json), "dosage": [{"text": "5mg once daily"}]}
    assert ingest_documents([("gp", changed)], organisation=net["gp"]).updated == 1
    return entry


def last_event():
    return AuditEvent.objects.order_by("-seq").first()


def test_a_read_of_an_old_version_is_audited_as_that_version(client, net):
    entry = send_a_new_dose(net)
    as_user(client, net, "ada")
    assert fhir(client, "/fhir/MedicationStatement/m1/_history/1")["dosage"][0]["text"] == "50mg once daily"
    event = last_event()
    assert (event.action, event.outcome) == ("record.read", "permit")
    assert event.entries == [f"{entry.pk.hex}:1"]
    fhir(client, "/fhir/MedicationStatement/m1/_history/2")
    assert last_event().entries == [f"{entry.pk.hex}:2"]


def test_a_version_not_released_is_audited_as_a_refusal_and_discloses_nothing(client, net):
    send_a_new_dose(net)
    as_user(client, net, "ada")
    assert client.get("/fhir/MedicationStatement/m1/_history/7").status_code == 404
    event = last_event()
    assert (event.action, event.outcome, event.entries) == ("record.read", "deny", [])


def test_the_item_page_is_audited_with_every_version_it_shows(client, net):
    entry = send_a_new_dose(net)
    as_user(client, net, "ada")
    page = client.get(reverse("record:item", kwargs={"entry_id": entry.pk}))
    assert page.status_code == 200
    assert page.context["version_count"] == 2
    event = last_event()
    assert event.entries == [f"{entry.pk.hex}:1", f"{entry.pk.hex}:2"]
    assert event.detail.get("history") is True
