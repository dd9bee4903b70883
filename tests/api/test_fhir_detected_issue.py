"""Issue 13: what the accuracy checks found, as FHIR R4 DetectedIssue, shown only by
accuracy.findings' rule: the patient's app (or a proxy's) sees the Metformin case, another
patient's sees nothing; the GP's and the hospital's systems see it while the patient shares
both copies with them, an unrelated organisation's never; every disclosure is audited."""

from datetime import timedelta

import pytest
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class
from oauth2_provider.models import Application

from accuracy import findings
from accuracy.checks.engine import run_checks
from accuracy.models import Finding, FindingResponse
from api import scopes as smart
from api.models import SystemClient
from api.oauth_server import issue_access_token
from audit.models import AuditEvent
from consent import proxies
from consent.models import ConsentChoice
from consent.policy import actor_for
from consent.proxies import Rights
from phr.models import Patient, RecordEntry
from tests.accuracy.test_checks_engine import NHS, metformin
from tests.api.test_oauth import health_app as health_app  # the shared app, found by name
from tests.api.test_proxy_apps import connect
from tests.feeds import person, send
from tests.personas import PatientUserFactory

pytestmark = pytest.mark.django_db

CHECK_SYSTEM = "https://patient-record-portal.example/CodeSystem/accuracy-check"


def validate(resource: dict) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    for entry in resource.get("entry", []):
        get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])


@pytest.fixture
def jones(gp, hospital):
    """The Metformin case: the GP says once daily, the hospital twice daily."""
    send(gp, person("p", NHS, "Jones"), metformin("m1", "500mg once daily"))
    send(hospital, person("p", NHS, "Jones"), metformin("h1", "500mg twice daily with meals"))
    patient = Patient.objects.get(nhs_number=NHS)
    patient.birth_date = timezone.localdate().replace(year=1970)
    patient.save()
    run_checks(patient.pk)
    return PatientUserFactory(email="jones@example.com", patient=patient)


@pytest.fixture
def finding(jones) -> Finding:
    return Finding.objects.get(rule="medicine-dose-disagrees")


def system_of(organisation, name: str) -> Application:
    application = Application.objects.create(
        name=name,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret="system-secret-for-tests-only",
    )
    SystemClient.objects.create(application=application, organisation=organisation)
    return application


def headers(application, user=None, scope="patient/*.read") -> dict:
    raw, _ = issue_access_token(application=application, user=user, scope=scope, minutes=5, issued_by="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def patient_headers(user, app, scope="launch/patient patient/*.read") -> dict:
    return headers(app, user, scope)


def system_headers(organisation, scope="system/*.read") -> dict:
    return headers(system_of(organisation, f"{organisation.name} system"), None, scope)


def get(client, url, auth) -> dict:
    response = client.get(url, **auth)
    assert response.status_code == 200, response.content.decode()[:500]
    body = response.json()
    validate(body)
    return body


def issues(bundle) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", [])]


# --- The patient's side ---------------------------------------------------------------------


def test_the_patients_app_sees_the_metformin_case_valid_r4_naming_both_items(
    client, jones, finding, health_app
):
    auth = patient_headers(jones, health_app)
    bundle = get(client, f"/fhir/DetectedIssue?patient={jones.patient_link.patient_id}", auth)
    assert bundle["total"] == 1
    (issue,) = issues(bundle)
    assert issue["id"] == str(finding.pk)
    assert issue["status"] == "final"
    assert issue["severity"] == "high"
    assert issue["code"]["coding"] == [
        {
            "system": CHECK_SYSTEM,
            "code": "medicine-dose-disagrees",
            "display": "A medicine is recorded with different doses",
        }
    ]
    assert issue["patient"] == {"reference": f"Patient/{jones.patient_link.patient_id}"}
    m1, h1 = RecordEntry.objects.get(fhir_id="m1"), RecordEntry.objects.get(fhir_id="h1")
    refs = {i["reference"]: i["display"] for i in issue["implicated"]}
    assert refs == {
        f"MedicationRequest/m1/_history/{m1.version}": "Riverside Surgery's prescription: 500mg once daily",
        f"MedicationRequest/h1/_history/{h1.version}": (
            "City Teaching Hospitals's prescription: 500mg twice daily with meals"
        ),
    }
    assert "record Metformin 500mg tablets differently" in issue["detail"]
    assert "Riverside Surgery's record says: 500mg once daily." in issue["detail"]
    assert "mitigation" not in issue
    # Without patient= a patient's app searches its own record; the read gives the same.
    assert issues(get(client, "/fhir/DetectedIssue", auth)) == [issue]
    read = get(client, f"/fhir/DetectedIssue/{finding.pk}", auth)
    assert read == issue


def test_the_search_takes_code_count_and_elements(client, jones, finding, health_app):
    auth = patient_headers(jones, health_app)
    assert get(client, "/fhir/DetectedIssue?code=medicine-dose-disagrees", auth)["total"] == 1
    assert get(client, f"/fhir/DetectedIssue?code={CHECK_SYSTEM}|medicine-dose-disagrees", auth)["total"] == 1
    assert get(client, "/fhir/DetectedIssue?code=other-system|medicine-dose-disagrees", auth)["total"] == 0
    assert get(client, "/fhir/DetectedIssue?code=no-such-rule", auth)["total"] == 0
    counted = get(client, "/fhir/DetectedIssue?_summary=count", auth)
    assert counted["total"] == 1
    assert "entry" not in counted
    paged = get(client, "/fhir/DetectedIssue?_count=1&_sort=-date", auth)
    assert len(issues(paged)) == 1
    refused = client.get("/fhir/DetectedIssue?subject=x", **auth)
    assert refused.status_code == 400
    assert refused.json()["resourceType"] == "OperationOutcome"


def test_the_search_and_the_read_are_audited_as_looks_at_both_items(client, jones, finding, health_app):
    auth = patient_headers(jones, health_app)
    get(client, "/fhir/DetectedIssue", auth)
    event = AuditEvent.objects.filter(action="record.search").order_by("-seq").first()
    assert event.detail["type"] == "DetectedIssue"
    assert event.detail["findings"] == [str(finding.pk)]
    implicated = {f"{row.entry_id.hex}:{row.version}" for row in finding.implicated.all()}
    assert set(event.entries) == implicated
    get(client, f"/fhir/DetectedIssue/{finding.pk}", auth)
    event = AuditEvent.objects.filter(action="record.read").order_by("-seq").first()
    assert set(event.entries) == implicated
    assert event.outcome == "permit"


def test_an_answered_finding_is_still_served_with_its_answer_as_a_mitigation(
    client, jones, finding, health_app
):
    access_actor = actor_for(jones)
    FindingResponse.objects.create(
        finding=finding,
        outcome="right",
        by=jones,
        by_label=access_actor.label,
        note="Once a day",
        at=timezone.now(),
    )
    assert not findings.for_patient(access_actor, finding.patient_id).exists()  # the page's list: unchanged
    (issue,) = issues(get(client, "/fhir/DetectedIssue", patient_headers(jones, health_app)))
    (mitigation,) = issue["mitigation"]
    assert mitigation["action"]["text"] == "This is right: Once a day"
    assert mitigation["author"] == {"display": "The patient"}
    assert "jones@example.com" not in str(issue)


def test_a_resolved_finding_is_amended_with_a_mitigation_saying_so(
    client, jones, finding, hospital, health_app
):
    send(hospital, person("p", NHS, "Jones"), metformin("h1", "500mg once daily with breakfast"))
    run_checks(finding.patient_id)
    bundle = get(client, "/fhir/DetectedIssue", patient_headers(jones, health_app))
    (issue,) = issues(bundle)
    assert issue["status"] == "amended"
    assert issue["mitigation"][-1]["action"]["text"] == "Resolved by a later version"


def test_another_patient_sees_none_and_is_refused_the_read(client, jones, finding, health_app):
    other = PatientUserFactory(email="other@example.com")
    auth = patient_headers(other, health_app)
    assert get(client, "/fhir/DetectedIssue", auth)["total"] == 0
    assert get(client, f"/fhir/DetectedIssue?patient={finding.patient_id}", auth)["total"] == 0
    response = client.get(f"/fhir/DetectedIssue/{finding.pk}", **auth)
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "Metformin" not in response.content.decode()


def test_a_proxys_app_sees_it_for_the_patient_it_acts_for(client, jones, finding, health_app):
    helper = PatientUserFactory(email="helper@example.com", patient=None)
    grant = proxies.grant_by_patient(
        actor=actor_for(jones),
        email="helper@example.com",
        rights=Rights(),
        until=timezone.now() + timedelta(days=30),
        reason="My helper reads my record with me",
    )
    token = connect(client, helper, health_app, str(grant.pk), scope="launch/patient patient/*.read")
    bundle = get(client, "/fhir/DetectedIssue", {"HTTP_AUTHORIZATION": f"Bearer {token['access_token']}"})
    assert [i["id"] for i in issues(bundle)] == [str(finding.pk)]


# --- Holders' systems -----------------------------------------------------------------------


def test_the_gps_system_sees_it_and_an_unrelated_organisations_sees_none(
    client, jones, finding, gp, mental_health_trust
):
    gp_auth = system_headers(gp)
    bundle = get(client, "/fhir/DetectedIssue", gp_auth)
    assert [i["id"] for i in issues(bundle)] == [str(finding.pk)]
    assert get(client, f"/fhir/DetectedIssue?patient={finding.patient_id}", gp_auth)["total"] == 1
    assert get(client, f"/fhir/DetectedIssue/{finding.pk}", gp_auth)["id"] == str(finding.pk)
    other = system_headers(mental_health_trust)
    assert get(client, "/fhir/DetectedIssue", other)["total"] == 0
    assert get(client, f"/fhir/DetectedIssue?patient={finding.patient_id}", other)["total"] == 0
    assert client.get(f"/fhir/DetectedIssue/{finding.pk}", **other).status_code == 404
    history = client.get(f"/fhir/DetectedIssue/{finding.pk}/_history/1", **gp_auth)
    assert history.status_code == 404
    assert "keeps no version history of DetectedIssue" in history.content.decode()


def test_once_the_patient_withholds_the_record_from_the_hospital_its_system_sees_it_no_more(
    client, jones, finding, hospital
):
    auth = system_headers(hospital)
    assert get(client, "/fhir/DetectedIssue", auth)["total"] == 1
    ConsentChoice.objects.create(
        patient=jones.patient_link.patient, scope="organisation", organisation=hospital, decision="deny"
    )
    assert get(client, "/fhir/DetectedIssue", auth)["total"] == 0
    assert client.get(f"/fhir/DetectedIssue/{finding.pk}", **auth).status_code == 404


# --- Scopes and the CapabilityStatement -----------------------------------------------------


def test_a_token_without_detected_issue_scope_is_refused_the_type(client, jones, finding, gp, health_app):
    patient_auth = patient_headers(jones, health_app, scope="launch/patient patient/Condition.read")
    for url in ("/fhir/DetectedIssue", f"/fhir/DetectedIssue/{finding.pk}"):
        response = client.get(url, **patient_auth)
        assert response.status_code == 403
        assert "patient/DetectedIssue.read" in response.json()["issue"][0]["diagnostics"]
    system_auth = system_headers(gp, scope="system/Condition.read")
    assert client.get("/fhir/DetectedIssue", **system_auth).status_code == 403
    # The type's own scope is enough.
    only = patient_headers(jones, health_app, scope="launch/patient patient/DetectedIssue.read")
    assert get(client, "/fhir/DetectedIssue", only)["total"] == 1
    assert get(client, "/fhir/DetectedIssue", system_headers(gp, "system/DetectedIssue.read"))["total"] == 1


def test_the_scope_is_described_in_plain_words():
    assert smart.PATIENT_SCOPES["patient/DetectedIssue.read"] == (
        "see what the portal's accuracy checks found in your record"
    )
    assert "accuracy checks" in smart.describe(["patient/*.read"])[0]
    assert "system/DetectedIssue.read" in smart.SYSTEM_SCOPES


def test_the_capability_statement_declares_detected_issue(client):
    statement = client.get("/fhir/metadata").json()
    (resource,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "DetectedIssue"]
    assert {i["code"] for i in resource["interaction"]} == {"read", "search-type"}
    assert {"patient", "code", "_count"} <= {p["name"] for p in resource["searchParam"]}
    validate(statement)
