"""consent_resource: a patient's choices in force as one FHIR R4 Consent that validates."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from fhir.resources.R4B.consent import Consent

from accounts.models import User
from consent.fhir import consent_resource
from consent.policy import actor_for
from consent.services import change_consent
from phr.models import Patient
from tests.personas import PatientUserFactory

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def patient(db):
    return Patient.objects.create(nhs_number="9990000018", given_names="Ada", family_name="Okafor")


@pytest.fixture
def choose(patient):
    """Record one choice as the patient themself, the only person who may."""
    user = PatientUserFactory(email="ada@example.com", patient=patient)
    user = User.objects.get(pk=user.pk)

    def choose(scope, decision, *, organisation=None, category="", until=None):
        return change_consent(
            actor=actor_for(user),
            patient_id=patient.pk,
            scope=scope,
            decision=decision,
            organisation=organisation,
            category=category,
            until=until,
        )

    return choose


def exported(patient, **kwargs) -> dict:
    resource = consent_resource(patient, **kwargs)
    Consent.model_validate(resource)
    return resource


def nested(resource) -> list[dict]:
    """The patient's own choices: the nested provisions with a period (the deployment's
    categories kept to their holder have none)."""
    return [p for p in resource["provision"].get("provision", []) if "period" in p]


def kept_by_deployment(resource) -> list[dict]:
    return [p for p in resource["provision"].get("provision", []) if "period" not in p]


def ods_codes(provision) -> list[str]:
    return [a["reference"]["identifier"]["value"] for a in provision.get("actor", [])]


def labels(provision) -> list[str]:
    return [label["code"] for label in provision.get("securityLabel", [])]


def categories(provision) -> list[str]:
    return [c["coding"][0]["code"] for c in provision.get("code", [])]


def test_a_patient_without_choices_gets_the_deployment_default(patient, settings):
    settings.CONSENT_MODEL = "opt-out"
    with time_machine.travel(START, tick=False):
        resource = exported(patient)
    assert resource["resourceType"] == "Consent"
    assert resource["status"] == "active"
    assert resource["scope"]["coding"][0]["code"] == "patient-privacy"
    assert resource["category"][0]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "59284-0",
        "display": "Patient Consent",
    }
    assert resource["patient"] == {"reference": f"Patient/{patient.pk}"}
    assert resource["dateTime"] == "2025-03-01T09:00:00+00:00"
    assert resource["policyRule"]["coding"][0]["code"] == "OPTOUT"
    assert resource["provision"]["type"] == "permit"
    assert resource["provision"]["purpose"][0]["code"] == "TREAT"
    assert nested(resource) == []
    # The categories kept to their holder are exceptions to the default: denied until the
    # patient shares them by name.
    kept = kept_by_deployment(resource)
    assert [(p["type"], categories(p)[0], labels(p)) for p in kept] == [
        ("deny", "sexual_health", ["SEX"]),
        ("deny", "safeguarding", ["SDV"]),
        ("deny", "assisted_conception", ["SEX"]),
        ("deny", "gender_identity", ["SEX"]),
    ]


def test_an_opt_in_deployment_lists_no_kept_categories_as_everything_is_denied(patient, settings):
    settings.CONSENT_MODEL = "opt-in"
    assert kept_by_deployment(exported(patient)) == []


def test_the_top_level_provision_follows_the_consent_model(patient, choose, hospital, settings):
    choose("organisation", "permit", organisation=hospital)
    settings.CONSENT_MODEL = "opt-in"
    opt_in = exported(patient)
    settings.CONSENT_MODEL = "opt-out"
    opt_out = exported(patient)
    assert (opt_in["provision"]["type"], opt_in["policyRule"]["coding"][0]["code"]) == ("deny", "OPTIN")
    assert (opt_out["provision"]["type"], opt_out["policyRule"]["coding"][0]["code"]) == ("permit", "OPTOUT")
    assert nested(opt_in) == nested(opt_out)


def test_each_choice_in_force_is_one_nested_provision(patient, choose, gp, hospital, mental_health_trust):
    until = START + timedelta(days=30)
    with time_machine.travel(START, tick=False):
        choose("network", "permit")
        choose("category", "deny", category="mental_health")
        choose("organisation", "deny", organisation=hospital, until=until)
        choose("organisation_category", "permit", organisation=mental_health_trust, category="mental_health")
        choose("organisation_category", "deny", organisation=gp, category="general")
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        resource = exported(patient)

    # Least specific first; at equal specificity by ODS code.
    network, mental_health, at_hospital, general_at_gp, at_mind = nested(resource)
    assert (network["type"], ods_codes(network), labels(network), categories(network)) == (
        "permit",
        [],
        [],
        [],
    )
    assert (mental_health["type"], ods_codes(mental_health)) == ("deny", [])
    assert (labels(mental_health), categories(mental_health)) == (["PSY"], ["mental_health"])
    assert (at_hospital["type"], ods_codes(at_hospital), labels(at_hospital)) == ("deny", ["RX100"], [])
    assert at_hospital["period"]["end"] == "2025-03-31T09:00:00+00:00"
    assert "end" not in network["period"]
    assert (at_mind["type"], ods_codes(at_mind), labels(at_mind)) == ("permit", ["RX200"], ["PSY"])
    assert (general_at_gp["type"], ods_codes(general_at_gp)) == ("deny", ["A10001"])
    assert (labels(general_at_gp), categories(general_at_gp)) == ([], ["general"])

    actor = at_hospital["actor"][0]
    assert actor["role"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
        "code": "IRCP",
        "display": "information recipient",
    }
    assert actor["reference"] == {
        "type": "Organization",
        "identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RX100"},
        "display": "City Teaching Hospitals",
    }
    assert resource["dateTime"] == "2025-03-01T09:00:00+00:00"


@pytest.mark.parametrize(
    ("category", "label"),
    [
        ("general", None),
        ("mental_health", "PSY"),
        ("sexual_health", "SEX"),
        ("social_care", "SOC"),
        ("safeguarding", "SDV"),
    ],
)
def test_each_category_has_its_security_label(patient, choose, category, label):
    choose("category", "deny", category=category)
    (provision,) = nested(exported(patient))
    assert labels(provision) == ([label] if label else [])
    assert categories(provision) == [category]
    if label:
        assert provision["securityLabel"][0]["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def test_withdrawn_choices_are_not_exported(patient, choose, hospital):
    with time_machine.travel(START, tick=False):
        choose("organisation", "deny", organisation=hospital)
        choose("category", "deny", category="sexual_health")
    with time_machine.travel(START + timedelta(days=1), tick=False):
        choose("organisation", "default", organisation=hospital)
    with time_machine.travel(START + timedelta(days=2), tick=False):
        resource = exported(patient)
    (provision,) = nested(resource)
    assert (ods_codes(provision), labels(provision)) == ([], ["SEX"])
    # The withdrawal is the latest change the patient made.
    assert resource["dateTime"] == "2025-03-02T09:00:00+00:00"


def test_lapsed_choices_are_not_exported(patient, choose, hospital):
    with time_machine.travel(START, tick=False):
        choose("organisation", "permit", organisation=hospital, until=START + timedelta(days=7))
        choose("network", "deny")
        assert [p["type"] for p in nested(exported(patient))] == ["deny", "permit"]
    with time_machine.travel(START + timedelta(days=8), tick=False):
        assert [ods_codes(p) for p in nested(exported(patient))] == [[]]
    assert [ods_codes(p) for p in nested(exported(patient, now=START + timedelta(days=1)))] == [[], ["RX100"]]


def test_a_later_choice_for_the_same_scope_replaces_the_earlier(patient, choose, hospital):
    with time_machine.travel(START, tick=False):
        choose("organisation", "deny", organisation=hospital)
    with time_machine.travel(START + timedelta(minutes=5), tick=False):
        choose("organisation", "permit", organisation=hospital)
        (provision,) = nested(exported(patient))
    assert provision["type"] == "permit"
    assert provision["period"]["start"] == "2025-03-01T09:05:00+00:00"
