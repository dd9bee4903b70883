"""The JSON API at /api/v1/: each caller's own data only, the same workflows as the web
pages (one consent choice through the API shows on "who can see my record"), field-named
400s, a 409 for a duplicate correction request, and 404 alike for missing and not yours."""

import re
import uuid

import pytest
from django.urls import reverse

from accounts.models import Notification
from accuracy import services
from accuracy.models import CorrectionRequest
from audit.models import AuditEvent
from consent.models import ConsentChoice
from consent.policy import actor_for
from phr.models import Organisation, OrganisationKind
from tests.feeds import one_problem
from tests.personas import ClinicianFactory, IGOfficerFactory, PatientUserFactory


@pytest.fixture
def net(gp, dr_gp, ig_officer):
    hospital = Organisation.objects.create(
        ods_code="RX100", name="City Hospital", kind=OrganisationKind.ACUTE_TRUST
    )
    ada = one_problem(gp)
    ben = one_problem(gp, pid="p2", nhs="9990000018", cid="c2", text="Gout")
    people = {
        "ada": PatientUserFactory(email="ada@example.com", patient=ada),
        "ben": PatientUserFactory(email="ben@example.com", patient=ben),
        "unlinked": PatientUserFactory(email="new@example.com", patient=None),
        "gp": dr_gp,
        "doctor": ClinicianFactory(email="dr.trust@example.com", organisation=hospital),
        "ig": ig_officer,
        "ig_no_mfa": IGOfficerFactory(email="ig2@example.com", second_factor=False),
    }
    return {
        "gp": gp,
        "hospital": hospital,
        "ada": ada,
        "ben": ben,
        "ada_item": ada.entries.get(resource_type="Condition"),
        "ben_item": ben.entries.get(resource_type="Condition"),
        "people": people,
    }


@pytest.fixture
def as_(client, net):
    def sign_in(who):
        client.logout()
        client.force_login(net["people"][who])
        return client

    return sign_in


def _correction(net, who="ada", item="ada_item"):
    return services.submit_correction(
        actor=actor_for(net["people"][who]),
        entry_id=net[item].pk,
        element="",
        proposed="It should say hay fever",
        reason="I have never had asthma",
        contact_preference="portal",
    )


# --- Who may call -------------------------------------------------------------------


def test_no_sign_in_is_a_json_401_with_a_bearer_challenge(client, net):
    response = client.get("/api/v1/notifications/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Sign in or send a valid bearer token"}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_bearer_token_is_a_401_invalid_token(client, net):
    response = client.get("/api/v1/consent/", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert "detail" in response.json()


def test_a_patients_app_token_reads_consent_but_cannot_change_it(client, net):
    from oauth2_provider.models import Application

    from api.oauth_server import issue_access_token

    app = Application.objects.create(
        name="My Health App",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://app.example/callback",
        client_secret="",
    )
    raw, _ = issue_access_token(
        application=app, user=net["people"]["ada"], scope="patient/*.read", minutes=5, issued_by="test"
    )
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get("/api/v1/consent/", **headers).status_code == 200
    refused = client.post(
        "/api/v1/consent/choices/",
        {"scope": "network", "decision": "deny"},
        content_type="application/json",
        **headers,
    )
    assert refused.status_code == 403
    assert "patient/Consent.write" in refused.json()["detail"]
    assert not ConsentChoice.objects.exists()


def test_staff_without_two_factor_authentication_are_refused(as_, net):
    response = as_("ig_no_mfa").get("/api/v1/audit/events/")
    assert response.status_code == 403
    assert "two-factor" in response.json()["detail"]


def test_a_patient_without_a_linked_record_is_told_to_link_it(as_, net):
    response = as_("unlinked").get("/api/v1/consent/")
    assert response.status_code == 403
    assert "Link your account" in response.json()["detail"]


# --- Notifications ------------------------------------------------------------------


def test_notifications_are_the_callers_own_and_marking_anothers_is_a_404(as_, net):
    mine = Notification.objects.create(user=net["people"]["ada"], title="Mine", body="For Ada")
    theirs = Notification.objects.create(user=net["people"]["ben"], title="Theirs", body="For Ben")
    client = as_("ada")
    listed = client.get("/api/v1/notifications/").json()
    assert [n["title"] for n in listed["results"]] == ["Mine"]
    assert listed["count"] == 1
    assert client.post(f"/api/v1/notifications/{theirs.pk}/read/").status_code == 404
    assert client.post("/api/v1/notifications/999999/read/").json() == {"detail": "Not found."}
    read = client.post(f"/api/v1/notifications/{mine.pk}/read/")
    assert read.status_code == 200
    assert read.json()["read_at"] is not None
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_a_notification_carries_the_address_of_the_page_it_is_about(as_, net, settings):
    settings.PORTAL_URL = "https://portal.example.nhs.uk"
    path = reverse("record:correction", kwargs={"request_id": uuid.uuid4()})
    Notification.objects.create(user=net["people"]["ada"], title="Answered", body="See it", link=path)
    Notification.objects.create(user=net["people"]["ada"], title="No page", body="Just words")
    listed = as_("ada").get("/api/v1/notifications/").json()["results"]
    by_title = {n["title"]: n for n in listed}
    assert by_title["Answered"]["link"] == f"https://portal.example.nhs.uk{path}"
    assert by_title["Answered"]["link_words"] == "Open your correction request"
    assert by_title["No page"]["link"] is None
    assert by_title["No page"]["link_words"] == ""


# --- Consent ------------------------------------------------------------------------


def test_consent_shows_each_organisation_in_the_words_of_the_web_page(as_, net):
    body = as_("ada").get("/api/v1/consent/").json()
    by_org = {row["organisation"]["ods_code"]: row for row in body["organisations"]}
    assert set(by_org) == {"A10001", "RX100"}
    assert by_org["A10001"]["holds_items"] is True
    assert body["choices"] == []
    assert body["default"]
    assert AuditEvent.objects.filter(action="consent.read", patient=net["ada"]).exists()


def test_a_choice_through_the_api_is_one_consent_choice_and_the_web_page_shows_it(as_, net):
    client = as_("ada")
    response = client.post(
        "/api/v1/consent/choices/",
        {"scope": "organisation", "decision": "deny", "organisation": "RX100", "reason": "Not them"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["sentence"] == "Do not share your record with City Hospital"
    assert ConsentChoice.objects.filter(patient=net["ada"]).count() == 1
    assert AuditEvent.objects.filter(action="consent.change", patient=net["ada"]).count() == 1
    page = client.get("/sharing/")
    assert page.status_code == 200
    assert "City Hospital cannot see your record." in page.content.decode()
    body = client.get("/api/v1/consent/").json()
    hospital = next(r for r in body["organisations"] if r["organisation"]["ods_code"] == "RX100")
    assert hospital["sentence"] == "City Hospital cannot see your record."
    assert hospital["because"] == ["Do not share your record with City Hospital"]
    history = client.get("/api/v1/consent/history/").json()
    assert [c["id"] for c in history["results"]] == [response.json()["id"]]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"decision": "deny"}, "scope"),
        ({"scope": "everyone", "decision": "deny"}, "scope"),
        ({"scope": "organisation", "decision": "deny"}, "organisation"),
        ({"scope": "network", "decision": "deny", "organisation": "RX100"}, "organisation"),
        ({"scope": "organisation", "decision": "deny", "organisation": "ZZZ"}, "organisation"),
        ({"scope": "category", "decision": "deny"}, "category"),
        ({"scope": "network", "decision": "deny", "until": "2001-01-01"}, "until"),
        ({"scope": "network", "decision": "maybe"}, "decision"),
        ({"scope": "network", "decision": "deny", "until": "9999-12-31"}, "until"),
    ],
)
def test_a_wrong_choice_is_a_400_naming_the_field(as_, net, payload, field):
    response = as_("ada").post("/api/v1/consent/choices/", payload, content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field
    assert body["detail"]
    assert not ConsentChoice.objects.exists()


def test_consent_is_for_patients_only(as_, net):
    for who in ("gp", "ig"):
        assert as_(who).get("/api/v1/consent/").status_code == 403
        assert (
            as_(who)
            .post(
                "/api/v1/consent/choices/",
                {"scope": "network", "decision": "deny"},
                content_type="application/json",
            )
            .status_code
            == 403
        )


# --- Corrections --------------------------------------------------------------------


def test_a_patient_submits_a_correction_and_a_duplicate_is_a_409_naming_the_first(as_, net):
    client = as_("ada")
    payload = {
        "entry": str(net["ada_item"].pk),
        "proposed": "Hay fever",
        "reason": "I have never had asthma",
        "contact_preference": "email",
    }
    created = client.post("/api/v1/corrections/", payload, content_type="application/json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["owner"]["ods_code"] == "A10001"
    assert body["timeline"][0]["words"] == "You sent your request"
    again = client.post("/api/v1/corrections/", payload, content_type="application/json")
    assert again.status_code == 409
    assert again.json()["existing"] == body["id"]
    assert CorrectionRequest.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"reason": "no"}, "reason"),
        ({"element": "not.a.part"}, "element"),
        ({"contact_preference": "pigeon"}, "contact_preference"),
        ({"entry": "not-a-uuid"}, "entry"),
    ],
)
def test_a_wrong_correction_is_a_400_naming_the_field(as_, net, change, field):
    payload = {
        "entry": str(net["ada_item"].pk),
        "proposed": "Hay fever",
        "reason": "I have never had asthma",
        "contact_preference": "email",
        **change,
    }
    response = as_("ada").post("/api/v1/corrections/", payload, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert not CorrectionRequest.objects.exists()


def test_another_patients_item_is_refused_as_a_missing_one(as_, net):
    client = as_("ada")
    answers = [
        client.post(
            "/api/v1/corrections/",
            {
                "entry": str(item),
                "proposed": "Hay fever",
                "reason": "Never had it",
                "contact_preference": "email",
            },
            content_type="application/json",
        )
        for item in (net["ben_item"].pk, uuid.uuid4())
    ]
    assert [a.status_code for a in answers] == [400, 400]
    assert answers[0].json() == answers[1].json()


def test_only_patients_submit_corrections(as_, net):
    response = as_("gp").post(
        "/api/v1/corrections/",
        {"entry": str(net["ada_item"].pk), "proposed": "x", "reason": "y", "contact_preference": "email"},
        content_type="application/json",
    )
    assert response.status_code == 403


def test_another_patients_correction_is_a_404_identical_to_a_random_id(as_, net):
    bens = _correction(net, "ben", "ben_item")
    client = as_("ada")
    theirs = client.get(f"/api/v1/corrections/{bens.pk}/")
    missing = client.get(f"/api/v1/corrections/{uuid.uuid4()}/")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.content == missing.content
    assert client.get("/api/v1/corrections/").json()["count"] == 0


def test_the_owners_clinician_sees_the_queue_and_the_request_others_do_not(as_, net):
    request = _correction(net)
    queue = as_("gp").get("/api/v1/corrections/").json()
    assert [r["id"] for r in queue["results"]] == [str(request.pk)]
    detail = as_("gp").get(f"/api/v1/corrections/{request.pk}/").json()
    assert detail["timeline"][0]["by"] == "the patient"
    assert as_("doctor").get("/api/v1/corrections/").json()["count"] == 0
    assert as_("doctor").get(f"/api/v1/corrections/{request.pk}/").status_code == 404
    assert as_("ig").get("/api/v1/corrections/").status_code == 403


def test_a_patient_reads_their_own_request_with_its_timeline(as_, net):
    request = _correction(net)
    body = as_("ada").get(f"/api/v1/corrections/{request.pk}/").json()
    assert body["id"] == str(request.pk)
    assert body["state"] == "Waiting for review"
    assert [step["words"] for step in body["timeline"]] == ["You sent your request"]


# --- Audit --------------------------------------------------------------------------


def test_ig_searches_the_trail_with_filters_and_the_search_is_audited(as_, net):
    _correction(net)
    client = as_("ig")
    everything = client.get("/api/v1/audit/events/").json()
    assert everything["log"] == "audit-trail"
    assert everything["count"] > 0
    unknown = client.get(f"/api/v1/audit/events/?patient={net['ada'].pk}&action=correction.nonsense")
    assert unknown.status_code == 400  # not an action the search offers
    assert unknown.json()["field"] == "action"
    asked = client.get(f"/api/v1/audit/events/?patient={net['ada'].pk}&action=correction.submit").json()
    assert asked["count"] == 1
    assert asked["results"][0]["action"] == "correction.submit"
    reads = client.get(f"/api/v1/audit/events/?patient={net['ada'].pk}&action=record.*&outcome=permit").json()
    assert reads["count"] >= 1
    assert {e["patient_id"] for e in reads["results"]} == {str(net["ada"].pk)}
    assert AuditEvent.objects.filter(action="audit.search", actor=net["people"]["ig"]).exists()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("patient=not-a-uuid", "patient"),
        (f"patient={uuid.UUID(int=1)}", "patient"),
        ("actor=999999", "actor"),
        ("organisation=NOPE", "organisation"),
        ("date_from=2026-02-02&date_to=2026-01-01", "date_to"),
        ("date_from=yesterday", "date_from"),
        ("date_to=9999-12-31", "date_to"),  # the day after it does not exist
    ],
)
def test_a_wrong_audit_filter_is_a_400_naming_it(as_, net, query, field):
    response = as_("ig").get(f"/api/v1/audit/events/?{query}")
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_clinicians_cannot_read_the_audit_trail(as_, net):
    assert as_("gp").get("/api/v1/audit/events/").status_code == 403
    assert as_("gp").get("/api/v1/access-log/").status_code == 403
    assert as_("ig").get("/api/v1/access-log/").status_code == 403


def test_a_patient_reads_who_looked_at_their_own_record_only(as_, net):
    gp_actor = actor_for(net["people"]["gp"])
    from consent.policy import open_record

    open_record(gp_actor, net["ada"].pk).read()
    open_record(gp_actor, net["ben"].pk).read()
    client = as_("ada")
    log = client.get("/api/v1/access-log/").json()
    assert log["log"] == "access-log"
    assert log["count"] == 1
    look = log["results"][0]
    assert look["organisation"]["ods_code"] == "A10001"
    assert look["what"]
    assert {i["id"] for i in look["items"]} >= {str(net["ada_item"].pk)}
    alias = client.get("/api/v1/audit/events/").json()
    assert alias["log"] == "access-log"
    assert alias["count"] == 1
    # The patient's filters are their own log's; another patient's id changes nothing.
    assert client.get(f"/api/v1/audit/events/?patient={net['ben'].pk}").json()["count"] == 1
    assert client.get("/api/v1/access-log/?organisation=RX100").json()["count"] == 0
    assert client.get("/api/v1/access-log/?date_to=9999-12-31").json()["field"] == "date_to"


# --- The schema ---------------------------------------------------------------------


def test_the_schema_and_the_docs_page_are_served_without_a_cdn(client, db):
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/consent/choices/" in paths
    assert "/api/v1/corrections/{request_id}/" in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "swagger-ui" in page
    # Every script and stylesheet comes from this server: no absolute URL in a src or
    # href (a random CSRF token in the page may spell "cdn", so look at the URLs only).
    assets = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', page)
    assert assets, "the docs page loads no assets"
    assert not [url for url in assets if re.match(r"(?:[a-z]+:)?//", url, re.I)], assets


def test_an_organisations_system_reads_its_own_queue_with_a_token_and_nothing_of_patients(client, net):
    from oauth2_provider.models import Application

    from api.models import SystemClient
    from api.oauth_server import issue_access_token

    request = _correction(net)
    app = Application.objects.create(
        name="GP system",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret="system-secret-for-tests-only",
    )
    SystemClient.objects.create(application=app, organisation=net["gp"])
    raw, _ = issue_access_token(
        application=app, user=None, scope="system/*.read", minutes=5, issued_by="test"
    )
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    queue = client.get("/api/v1/corrections/", **headers).json()
    assert [r["id"] for r in queue["results"]] == [str(request.pk)]
    assert client.get(f"/api/v1/corrections/{request.pk}/", **headers).status_code == 200
    for path in ("consent/", "notifications/", "audit/events/", "access-log/"):
        path = f"/api/v1/{path}"
        assert client.get(path, **headers).status_code == 403, path
