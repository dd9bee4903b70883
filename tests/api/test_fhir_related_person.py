"""Issue 12 part 4, FHIR: the people who can act for a patient, as RelatedPerson
(api/fhir/proxies.py), shown to the patient themself alone."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.access import PROXY_SESSION_KEY
from accounts.models import ProxyAccess
from api.fhir.proxies import RIGHTS_EXTENSION, ROLE_CODE
from audit.models import AuditEvent
from tests.api.test_fhir_api import _token, as_user, fhir, ids, validate
from tests.api.test_fhir_api import net as net  # the shared network, found by name
from tests.api.test_fhir_reads import same_404
from tests.personas import PatientUserFactory


def _grant(patient, proxy, granted_by, relationship, **fields) -> ProxyAccess:
    now = timezone.now()
    return ProxyAccess.objects.create(
        patient=patient,
        proxy=proxy,
        relationship=relationship,
        reason="Helps with appointments",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=30),
        granted_by=granted_by,
        **fields,
    )


@pytest.fixture
def carers(net):
    """Ada's husband (chosen, may see and ask for corrections) and her attorney (ended
    yesterday); Ben's daughter acts for Ben."""
    ada_user, ben_user = net["people"]["ada"], net["people"]["ben"]
    husband = PatientUserFactory(
        email="sam@example.com", first_name="Sam", last_name="Lovelace", patient=None
    )
    attorney = PatientUserFactory(email="attorney@example.com", patient=None)
    daughter = PatientUserFactory(email="daughter@example.com", patient=None)
    chosen = _grant(net["ada"], husband, ada_user, ProxyAccess.Relationship.CHOSEN, may_correct=True)
    ended = _grant(
        net["ada"],
        attorney,
        net["people"]["gp"],
        ProxyAccess.Relationship.LASTING_POWER,
        granted_by_organisation=net["gp"],
        may_share=True,
    )
    ended.ended_at = timezone.now() - timedelta(hours=2)
    ended.save()
    bens = _grant(net["ben"], daughter, ben_user, ProxyAccess.Relationship.CHOSEN)
    return {"chosen": chosen, "ended": ended, "bens": bens, "husband": husband}


def by_id(bundle) -> dict[str, dict]:
    return {e["resource"]["id"]: e["resource"] for e in bundle.get("entry", [])}


def test_a_patient_finds_everyone_who_can_act_for_them_as_valid_related_persons(client, net, carers):
    as_user(client, net, "ada")
    found = fhir(
        client, f"/fhir/RelatedPerson?_tag=proxy&patient={net['ada'].pk}"
    )  # R4B-valid, each entry too
    assert by_id(fhir(client, "/fhir/RelatedPerson?_tag=proxy")) == by_id(found)  # their own without ?patient
    chosen, ended = carers["chosen"], carers["ended"]
    assert sorted(ids(found)) == sorted([f"RelatedPerson/{chosen.pk}", f"RelatedPerson/{ended.pk}"])
    husband = by_id(found)[str(chosen.pk)]
    assert husband["active"] is True
    assert husband["patient"] == {"reference": f"Patient/{net['ada'].pk}"}
    assert husband["name"] == [{"text": "Sam Lovelace"}]
    assert husband["telecom"] == [{"system": "email", "value": "sam@example.com"}]
    assert husband["relationship"] == [{"text": "Someone the patient chose to act for them"}]
    assert [(x["url"], x["valueCode"]) for x in husband["extension"]] == [
        (RIGHTS_EXTENSION, "see"),
        (RIGHTS_EXTENSION, "correct"),
    ]
    assert husband["period"]["start"] == chosen.starts_at.isoformat(timespec="seconds")


def test_an_ended_grant_is_inactive_ends_when_it_was_ended_and_names_the_attorney_by_role_code(
    client, net, carers
):
    as_user(client, net, "ada")
    ended = carers["ended"]
    attorney = fhir(client, f"/fhir/RelatedPerson/{ended.pk}")
    validate(attorney)
    assert attorney["active"] is False
    assert attorney["period"]["end"] == ended.ended_at.isoformat(timespec="seconds")
    assert attorney["name"] == [{"text": "attorney@example.com"}]  # no name: the email
    (relationship,) = attorney["relationship"]
    assert relationship["coding"] == [
        {"system": ROLE_CODE, "code": "HPOWATT", "display": "healthcare power of attorney"}
    ]
    assert [x["valueCode"] for x in attorney["extension"]] == ["see", "share"]


def test_a_parent_is_coded_as_a_parent(client, net, carers):
    child = _grant(net["ada"], carers["husband"], net["people"]["gp"], ProxyAccess.Relationship.YOUNG_PERSON)
    as_user(client, net, "ada")
    (relationship,) = fhir(client, f"/fhir/RelatedPerson/{child.pk}")["relationship"]
    assert relationship["coding"][0]["code"] == "PRN"
    assert relationship["text"].startswith("Parent or guardian")


def test_reads_and_searches_are_audited_as_consent_reads(client, net, carers):
    as_user(client, net, "ada")
    before = AuditEvent.objects.filter(action="consent.read", outcome="permit").count()
    fhir(client, "/fhir/RelatedPerson?_tag=proxy")
    fhir(client, f"/fhir/RelatedPerson/{carers['chosen'].pk}")
    events = AuditEvent.objects.filter(action="consent.read", outcome="permit").order_by("seq")
    assert events.count() == before + 2
    assert events.last().detail == {"api": "fhir", "resource": "RelatedPerson"}
    assert events.last().patient_id == net["ada"].pk


def test_another_patients_grants_are_not_found_and_look_missing(client, net, carers):
    as_user(client, net, "ada")
    bens = carers["bens"].pk
    same_404(client, f"/fhir/RelatedPerson/{bens}", "/fhir/RelatedPerson/999999")
    same_404(client, f"/fhir/RelatedPerson/{bens}", "/fhir/RelatedPerson/not-a-grant")
    assert fhir(client, f"/fhir/RelatedPerson?_tag=proxy&patient={net['ben'].pk}")["total"] == 0
    refused = AuditEvent.objects.filter(action="consent.read", outcome="deny", actor=net["people"]["ada"])
    assert refused.filter(patient=net["ben"]).count() == 1  # the search named Ben


def test_someone_acting_for_the_patient_sees_none_of_their_proxies(client, net, carers):
    carers["chosen"].may_share = True  # even one who manages her sharing choices
    carers["chosen"].save()
    client.force_login(carers["husband"])
    session = client.session
    session[PROXY_SESSION_KEY] = carers["chosen"].pk
    session.save()
    # Acting for Ada, the husband reads her record ...
    assert fhir(client, "/fhir/Condition")["total"] > 0
    # ... but not who else may act for her, nor his own grant.
    assert fhir(client, "/fhir/RelatedPerson?_tag=proxy")["total"] == 0
    assert fhir(client, f"/fhir/RelatedPerson?_tag=proxy&patient={net['ada'].pk}")["total"] == 0
    same_404(client, f"/fhir/RelatedPerson/{carers['chosen'].pk}", "/fhir/RelatedPerson/999999")
    same_404(client, f"/fhir/RelatedPerson/{carers['ended'].pk}", "/fhir/RelatedPerson/999999")


@pytest.mark.parametrize("who", ["gp", "trust", "ig"])
def test_staff_and_ig_see_no_ones_proxies(client, net, carers, who):
    as_user(client, net, who)
    assert fhir(client, f"/fhir/RelatedPerson?_tag=proxy&patient={net['ada'].pk}")["total"] == 0
    same_404(client, f"/fhir/RelatedPerson/{carers['chosen'].pk}", "/fhir/RelatedPerson/999999")


def test_an_organisation_system_sees_no_ones_proxies(client, net, carers):
    headers = _token(net, "system/*.read", system=True)
    answer = client.get(f"/fhir/RelatedPerson?_tag=proxy&patient={net['ada'].pk}", **headers)
    assert answer.status_code == 200
    assert answer.json()["total"] == 0
    assert client.get(f"/fhir/RelatedPerson/{carers['chosen'].pk}", **headers).status_code == 404


def test_a_patients_app_needs_the_related_person_scope(client, net, carers):
    narrow = _token(net, "patient/Condition.read")
    for url in ("/fhir/RelatedPerson", f"/fhir/RelatedPerson/{carers['chosen'].pk}"):
        refused = client.get(url, **narrow)
        assert refused.status_code == 403
        assert refused.json()["issue"][0]["code"] == "forbidden"
        assert "patient/RelatedPerson.read" in refused.json()["issue"][0]["diagnostics"]
    for scope in ("patient/RelatedPerson.read", "patient/*.read"):
        headers = _token(net, scope)
        bundle = client.get("/fhir/RelatedPerson?_tag=proxy", **headers).json()
        validate(bundle)
        assert bundle["total"] == 2, scope
        assert client.get(f"/fhir/RelatedPerson/{carers['chosen'].pk}", **headers).status_code == 200


def test_a_huge_id_is_not_found_rather_than_an_error(client, net, carers):
    as_user(client, net, "ada")
    same_404(client, f"/fhir/RelatedPerson/{'9' * 64}", "/fhir/RelatedPerson/999999")


def test_a_posted_search_and_a_count_answer_the_same(client, net, carers):
    as_user(client, net, "ada")
    assert fhir(client, "/fhir/RelatedPerson?_tag=proxy&_summary=count")["total"] == 2
    posted = client.post(
        "/fhir/RelatedPerson/_search", data="_tag=proxy", content_type="application/x-www-form-urlencoded"
    )
    assert posted.status_code == 200
    assert posted.json()["total"] == 2


def test_the_capability_statement_and_the_scopes_list_related_person(client, db):
    from api import scopes

    statement = fhir(client, "/fhir/metadata")
    (related,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "RelatedPerson"]
    assert {i["code"] for i in related["interaction"]} == {"read", "search-type"}
    assert "patient" in {p["name"] for p in related["searchParam"]}
    assert scopes.PATIENT_SCOPES["patient/RelatedPerson.read"] == "see the people who can act for you"


def test_a_relatedperson_an_organisation_sent_is_served_by_the_record_search_beside_the_grants(
    client, net, carers, gp
):
    """A next of kin the GP sent is part of the record; the proxy grants are the portal's."""
    from tests.feeds import send

    send(
        gp,
        {
            "resourceType": "RelatedPerson",
            "id": "kin-1",
            "patient": {"reference": "Patient/p1"},
            "name": [{"family": "Okafor", "given": ["Chidi"]}],
            "relationship": [{"text": "Next of kin"}],
        },
    )
    as_user(client, net, "ada")
    sent = fhir(client, f"/fhir/RelatedPerson?patient={net['ada'].pk}")
    names = [e["resource"]["name"][0].get("family") for e in sent.get("entry", [])]
    assert names == ["Okafor"]
    kin_id = sent["entry"][0]["resource"]["id"]
    assert fhir(client, f"/fhir/RelatedPerson/{kin_id}")["name"][0]["family"] == "Okafor"
    grants = fhir(client, "/fhir/RelatedPerson?_tag=proxy")
    assert grants["total"] == 2
    assert all(e["resource"]["meta"]["tag"][0]["code"] == "proxy" for e in grants["entry"])
