"""A proxy's app asking for what stays the patient's alone over FHIR (probe 12, L3): who
has looked at the record (AuditEvent) is refused with the OperationOutcome a forbidden
request gets (403 on a search, 404 on a read), never an empty log an app would show as
"nobody has looked", and the refusal is audited against the record; nor does the app
list who else acts for the patient (RelatedPerson?_tag=proxy)."""

import uuid

import pytest

from accounts.models import ProxyAccess
from audit.models import AuditEvent
from consent.proxies import Rights
from tests.api.test_proxy_apps import app, connect, health_app
from tests.consent.test_proxy_rules import world
from tests.sharing.test_proxies import ben, grant, mia, mia_user

__all__ = ["app", "ben", "health_app", "mia", "mia_user", "world"]  # fixtures

pytestmark = pytest.mark.django_db


def bearer(token: dict) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token['access_token']}"}


@pytest.fixture
def proxy_app(client, mia_user, ben, app) -> dict:
    """Ben's app, connected to Mia's record under a grant with every right."""
    access = grant(mia_user, Rights(see=True, correct=True, share=True))
    return bearer(connect(client, ben, app, str(access.pk)))


@pytest.fixture
def looked_at(client, mia, mia_user, dr_gp) -> str:
    """The FHIR id of a look at Mia's record by her practice, as her own log shows it."""
    client.force_login(dr_gp)
    assert client.get(f"/fhir/Condition?patient={mia.pk}").status_code == 200
    client.force_login(mia_user)
    log = client.get("/fhir/AuditEvent").json()
    client.logout()
    assert log["total"] >= 1
    return log["entry"][0]["resource"]["id"]


def refusals(ben, mia) -> int:
    return AuditEvent.objects.filter(actor=ben, patient=mia, action="audit.read", outcome="deny").count()


@pytest.mark.parametrize("query", ["", "?_summary=count", "?patient={mia}", "?_sort=-date&_count=5"])
def test_a_proxys_app_is_refused_the_access_log_not_shown_an_empty_one(
    client, mia, ben, proxy_app, looked_at, query
):
    before = refusals(ben, mia)
    answer = client.get(f"/fhir/AuditEvent{query.format(mia=mia.pk)}", **proxy_app)
    assert answer.status_code == 403
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "forbidden"
    assert "Only the patient themself" in outcome["issue"][0]["diagnostics"]
    assert refusals(ben, mia) == before + 1


def test_a_posted_search_is_refused_the_same(client, mia, ben, proxy_app, looked_at):
    answer = client.post(
        "/fhir/AuditEvent/_search", data="", content_type="application/x-www-form-urlencoded", **proxy_app
    )
    assert answer.status_code == 403
    assert answer.json()["issue"][0]["code"] == "forbidden"


def test_a_proxys_app_reads_no_audit_event_and_the_try_is_audited(client, mia, ben, proxy_app, looked_at):
    before = refusals(ben, mia)
    refused = client.get(f"/fhir/AuditEvent/{looked_at}", **proxy_app)
    absent = client.get(f"/fhir/AuditEvent/{uuid.uuid4()}", **proxy_app)
    assert refused.status_code == absent.status_code == 404
    assert refused.content == absent.content
    assert refused.json()["issue"][0]["code"] == "not-found"
    assert refusals(ben, mia) == before + 2


def test_the_patient_still_reads_her_own_log(client, mia_user, looked_at):
    client.force_login(mia_user)
    assert client.get(f"/fhir/AuditEvent/{looked_at}").status_code == 200
    assert client.get("/fhir/AuditEvent").json()["total"] >= 1


def test_a_proxys_app_lists_no_one_who_acts_for_the_patient(client, mia, mia_user, ben, proxy_app):
    access = ProxyAccess.objects.get(patient=mia, proxy=ben)
    for url in ("/fhir/RelatedPerson?_tag=proxy", f"/fhir/RelatedPerson?_tag=proxy&patient={mia.pk}"):
        answer = client.get(url, **proxy_app)
        assert "ben@example.com" not in answer.content.decode()
        assert not answer.json().get("entry")
    denied = AuditEvent.objects.filter(actor=ben, patient=mia, action="consent.read", outcome="deny")
    assert denied.count() >= 2
    assert client.get(f"/fhir/RelatedPerson/{access.pk}", **proxy_app).status_code == 404


# --- The practice's grant form, worded for its reader (probe 12, L5) -----------------------
# (consent/proxies.py's rules; kept here as the one new test file for this round of the probe.)


def _practice_gives(world, relationship: str, days: int):
    from consent import proxies
    from consent.policy import actor_for
    from tests.consent.test_proxy_rules import until

    return proxies.grant_by_practice(
        actor=actor_for(world["dr_gp"]),
        patient_id=world["patient"].pk,
        email="ben@example.com",
        relationship=relationship,
        rights=Rights(),
        until=until(days),
        reason="Parent, identity checked at reception",
    )


def test_a_practice_choosing_the_wrong_relationship_for_a_child_is_told_what_to_choose(world):
    from consent.proxies import ProxyProblem
    from tests.consent.test_proxy_rules import born

    world["patient"].birth_date = born(8)
    world["patient"].save()
    with pytest.raises(ProxyProblem) as problem:
        _practice_gives(world, "lasting_power", 30)
    assert problem.value.field == "relationship"
    assert "choose parent or guardian" in str(problem.value)
    assert "through their practice" not in str(problem.value)


def test_a_childs_end_date_past_both_limits_names_their_birthday(world):
    from consent.proxies import ProxyProblem
    from tests.consent.test_proxy_rules import born

    world["patient"].birth_date = born(10)
    world["patient"].save()
    with pytest.raises(ProxyProblem) as problem:
        _practice_gives(world, "child", 3 * 366 + 30)
    assert problem.value.field == "until"
    assert "ends by their 11th birthday" in str(problem.value)
