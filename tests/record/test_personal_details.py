"""The patient's personal details as each organisation holds them, side by side, with the
disagreements marked and a way to ask each holder to correct its copy."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from phr.models import Patient, RecordEntry
from tests.feeds import NHS, send
from tests.personas import PatientUserFactory

ADA = "9434765919"


def ada_as(pid: str, **details) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": NHS, "value": ADA}],
        "name": [{"use": "official", "given": ["Ada"], "family": "Lovelace"}],
        "birthDate": "1970-03-01",
        "gender": "female",
        **details,
    }


@pytest.fixture
def ada(client, gp, hospital):
    send(gp, ada_as("g1", address=[{"line": ["1 High Street"], "city": "Leeds", "postalCode": "LS1 1AA"}]))
    send(
        hospital,
        ada_as(
            "h1",
            address=[{"line": ["9 Old Road"], "city": "Leeds", "postalCode": "LS9 9ZZ"}],
            telecom=[{"system": "phone", "value": "0113 496 0000"}],
        ),
    )
    send(gp, {"resourceType": "Patient", "id": "g2", "identifier": [{"system": NHS, "value": "9990000018"}]})
    user = PatientUserFactory(patient=Patient.objects.get(nhs_number=ADA))
    client.force_login(user)
    return user


def test_each_holders_copy_side_by_side_with_the_differences_marked(client, ada):
    page = client.get(reverse("record:details"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Riverside Surgery" in html
    assert "City Teaching Hospitals" in html
    assert "1 High Street, Leeds, LS1 1AA" in html
    assert "9 Old Road, Leeds, LS9 9ZZ" in html
    assert "1 March 1970" in html
    assert html.count("Not the same everywhere") == 2  # the address, and the phone one holds
    assert 'id="details-differ"' in html
    for entry in RecordEntry.objects.filter(resource_type="Patient", patient=ada.patient_link.patient):
        assert reverse("record:correct", kwargs={"entry_id": entry.pk}) in html
    read = AuditEvent.objects.filter(actor=ada, action="record.read").last()
    assert len(read.entries) == 2


def test_another_patients_details_never_show(client, ada):
    html = client.get(reverse("record:details")).content.decode()
    assert "9990000018" not in html
    assert html.count('<th class="nhsuk-table__header" scope="col">') == 3  # the detail, two holders


def test_an_account_with_no_record_is_told_so(client, db):
    client.force_login(PatientUserFactory(patient=None))
    page = client.get(reverse("record:details"))
    assert page.status_code == 200
    assert "Riverside" not in page.content.decode()
