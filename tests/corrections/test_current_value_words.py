"""What each part of an item says now, on the patient's "Report something wrong" page, in
the copy a correction request keeps of it, and on the staff pages: words from the one
rendering layer, never JSON, ISO dates, UCUM codes or FHIR paths."""

import re

import pytest
from django.urls import reverse

from accuracy import elements, services
from accuracy.models import CorrectionRequest
from consent.policy import actor_for
from demo.network import build_network
from phr.columns import display_text
from phr.models import Patient, RecordEntry
from tests.feeds import send
from tests.personas import PatientUserFactory
from tests.phr.test_render_samples import _sample_resources
from web.patient.correction_forms import current_values

ADA_NHS = "9434765919"
NHS = "https://fhir.nhs.uk/Id/nhs-number"

FORBIDDEN = {
    "a code system URL": re.compile(r"https?://|urn:"),
    "a raw UCUM code": re.compile(r"\bCel\b|mm\[Hg\]|kg/m2|\[degF\]|10\*\d|(?:^|\s)/min\b"),
    "curly braces (JSON or a UCUM annotation)": re.compile(r"[{}]"),
    "JSON": re.compile(r'":'),
    "an ISO date": re.compile(r"\d{4}-\d{2}-\d{2}"),
    "a FHIR element path": re.compile(r"\w+\[\d+\]\.|valueQuantity|dosageInstruction|resourceType"),
}

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [{"system": NHS, "value": ADA_NHS}],
    "name": [{"use": "official", "family": "Patel", "given": ["Fatima"]}],
    "birthDate": "1949-11-20",
    "address": [
        {"use": "home", "line": ["134 Station Road"], "city": "Northbridge", "postalCode": "NB2 8RA"}
    ],
    "telecom": [{"system": "phone", "value": "07700 900982"}],
}
TEMPERATURE = {
    "resourceType": "Observation",
    "id": "t1",
    "status": "final",
    "subject": {"reference": "Patient/p1"},
    "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5", "display": "Body temperature"}]},
    "effectiveDateTime": "2025-01-09T10:40:00Z",
    "valueQuantity": {"value": 37.4, "unit": "Cel", "system": "http://unitsofmeasure.org", "code": "Cel"},
}
POTASSIUM = {
    "resourceType": "Observation",
    "id": "k1",
    "status": "final",
    "subject": {"reference": "Patient/p1"},
    "code": {
        "coding": [
            {
                "system": "http://loinc.org",
                "code": "2823-3",
                "display": "Potassium [Moles/volume] in Serum or Plasma",
            }
        ]
    },
    "valueQuantity": {
        "value": 4.1,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    },
}
VISIT = {
    "resourceType": "Encounter",
    "id": "e1",
    "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
    "subject": {"reference": "Patient/p1"},
    "type": [{"text": "Emergency room admission"}],
    "period": {"start": "2025-01-04T12:50:00Z", "end": "2025-01-04T13:50:00Z"},
}


def _problems(resource: dict) -> list[str]:
    kind = resource["resourceType"]
    said = current_values(kind, resource, display_text(resource))
    return [
        f"{kind} {resource.get('id')} {path or 'whole item'} shows {what}: {text!r}"
        for path, text in said.items()
        for what, pattern in FORBIDDEN.items()
        if pattern.search(text)
    ]


def _offered(resources) -> list[dict]:
    return [r for r in resources if r.get("resourceType") in elements.PARTS]


def test_every_part_of_every_demo_item_says_now_in_words():
    resources = _offered(build_network().resources())
    assert {r["resourceType"] for r in resources} >= {"Patient", "Encounter", "Observation"}
    assert [p for r in resources for p in _problems(r)] == []


def test_every_part_of_every_sample_item_says_now_in_words(samples):
    resources = _offered(_sample_resources(samples))
    assert len(resources) > 1000
    assert [p for r in resources for p in _problems(r)] == []


def test_the_checks_catch_what_the_old_words_showed():
    """Each pattern fails on text the form used to show, so the sweeps above can fail."""
    for shown in (
        '{"end": "2025-01-04T13:50:00Z"}',
        "37.4 Cel",
        "164 10*9/L",
        "23 /min",
        "1949-11-20",
        "http://loinc.org",
    ):
        assert any(p.search(shown) for p in FORBIDDEN.values()), shown


@pytest.mark.parametrize(
    ("resource", "path", "words"),
    [
        (PATIENT, "name", "Fatima Patel"),
        (PATIENT, "address", "134 Station Road, Northbridge, NB2 8RA"),
        (PATIENT, "birthDate", "20 November 1949"),
        (PATIENT, "telecom", "07700 900982"),
        (TEMPERATURE, "valueQuantity", "37.4°C"),
        (TEMPERATURE, "effectiveDateTime", "9 January 2025 at 10:40am"),
        (VISIT, "period", "4 January 2025 at 12:50pm to 1:50pm"),
        (VISIT, "type", "Emergency room admission"),
        (POTASSIUM, "code", "Potassium (recorded as “Potassium [Moles/volume] in Serum or Plasma”)"),
        (
            {**POTASSIUM, "valueQuantity": {"value": 23, "unit": "/min", "code": "/min"}},
            "valueQuantity",
            "23 per minute",
        ),
    ],
)
def test_each_part_is_said_by_the_rendering_layer(resource, path, words):
    assert elements.says(resource, path) == words


def test_the_whole_item_is_named_as_a_patient_calls_it_and_as_recorded():
    said = current_values("Observation", POTASSIUM, "Potassium [Moles/volume] in Serum or Plasma")
    assert said[""] == "Potassium (recorded as “Potassium [Moles/volume] in Serum or Plasma”)"


@pytest.fixture
def ada_flags(gp, hospital, dr_gp):
    send(gp, PATIENT)
    send(hospital, {**PATIENT, "telecom": []}, TEMPERATURE, VISIT)
    ada = PatientUserFactory(email="ada@example.com", patient=Patient.objects.get(nhs_number=ADA_NHS))

    def flag(fhir_id: str, element: str) -> CorrectionRequest:
        entry = RecordEntry.objects.get(
            owner=gp if fhir_id == "p1-gp" else hospital, fhir_id=fhir_id.split("-")[0]
        )
        return services.submit_correction(
            actor=actor_for(ada),
            entry_id=entry.pk,
            element=element,
            proposed="It should say something else",
            reason="It is not what I told the receptionist",
            contact_preference="portal",
        )

    return {"ada": ada, "flag": flag, "doctor": dr_gp}


def test_the_form_hints_say_what_each_part_says_in_words(client, ada_flags, gp):
    client.force_login(ada_flags["ada"])
    entry = RecordEntry.objects.get(owner=gp, fhir_id="p1")
    page = client.get(reverse("record:correct", kwargs={"entry_id": entry.pk})).content.decode()
    assert "It says now: 134 Station Road, Northbridge, NB2 8RA" in page
    assert "It says now: 20 November 1949" in page
    assert '"family"' not in page
    assert "&quot;family&quot;" not in page


def test_the_request_keeps_what_it_said_in_words(client, ada_flags):
    address = ada_flags["flag"]("p1-gp", "address")
    assert address.current_text == "134 Station Road, Northbridge, NB2 8RA"
    client.force_login(ada_flags["ada"])
    page = client.get(reverse("record:correction", kwargs={"request_id": address.pk})).content.decode()
    assert "134 Station Road, Northbridge, NB2 8RA" in page
    assert "postalCode" not in page


def test_staff_see_the_part_in_their_words_without_its_fhir_path(client, ada_flags):
    address = ada_flags["flag"]("p1-gp", "address")
    client.force_login(ada_flags["doctor"])
    queue = client.get(reverse("workspace:queue")).content.decode()
    request = client.get(reverse("workspace:request", kwargs={"request_id": address.pk})).content.decode()
    row = next(r for r in queue.split("<tr") if str(address.pk) in r)
    assert "Part </span>Address</td>" in row
    assert "Said when asked: 134 Station Road, Northbridge, NB2 8RA" in row
    assert "Part: Address</p>" in request
    for page in (row, request):
        assert "Your address" not in page
        assert "(<code>address</code>)" not in page
        assert not re.search(r"Part:? ?(</span>)?[^<]*\(\s*(<code>)?\w+", page)


def test_staff_words_for_a_result_value_are_not_its_fhir_path(client, ada_flags, hospital):
    from tests.personas import ClinicianFactory

    result = ada_flags["flag"]("t1", "valueQuantity")
    assert result.current_text == "37.4°C"
    client.force_login(ClinicianFactory(email="dr.trust@example.com", organisation=hospital))
    request = client.get(reverse("workspace:request", kwargs={"request_id": result.pk})).content.decode()
    assert "Part: Result value</p>" in request
    assert "valueQuantity" not in request.split('id="proposed-change"')[1].split("</div>")[0]


def test_every_offered_part_has_words_for_staff():
    for kind, parts in elements.PARTS.items():
        for part in parts:
            label = elements.staff_label(kind, part.path)
            assert label, (kind, part.path)
            assert not re.search(r"[()\[\].]|[a-z][A-Z]", label), (kind, part.path)
            assert not label.startswith(("Your", "The ")), (kind, part.path)
    assert elements.staff_label("Condition", "") == "Whole item"
    assert elements.staff_label("Condition", "gone[0].text", "The thing") == "The thing"
