"""Probe 12 M3: the patient sees, on "Who has looked at my record", what the people
acting for them did (their reads, sharing changes, corrections, apps, refused tries), by
email and relationship; and is told when one of them connects an app."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Notification
from consent.proxies import Rights
from phr.models import Patient, RecordEntry
from tests.api.test_proxy_apps import app, connect, health_app
from tests.personas import PatientUserFactory
from tests.sharing.test_proxies import acting, ben, grant, mia, mia_user

__all__ = ["app", "ben", "health_app", "mia", "mia_user"]  # fixtures shared with the proxy tests

pytestmark = pytest.mark.django_db

LOG = reverse("sharing:access_log")
CHOSEN = "Someone the patient chose to act for them"


def section(page: str) -> str:
    """The page's "What people acting for you did" section, or "" when there is none."""
    start = page.find('id="acting-for-you"')
    return page[start : page.find('id="refused"')] if start >= 0 else ""


@pytest.fixture
def ben_acted(client, mia_user, ben, gp):
    """Ben, acting for Mia with every right, reads her problems and stops her GP seeing her record."""
    made = grant(mia_user, Rights(see=True, correct=True, share=True))
    acting(client, ben, made.pk)
    assert client.get(reverse("record:kind", kwargs={"kind": "problems"})).status_code == 200
    saved = client.post(
        reverse("sharing:confirm"),
        {"scope": "organisation", "organisation": gp.pk, "decision": "deny", "step": "save"},
    )
    assert saved.status_code == 302
    client.logout()
    return made


def test_the_patient_sees_what_someone_acting_for_them_read_and_changed(client, mia_user, ben_acted):
    client.force_login(mia_user)
    response = client.get(LOG)
    assert response.status_code == 200
    people = response.context["people_acting"]
    assert [(p.email, p.relationship) for p in people] == [("ben@example.com", CHOSEN)]
    words = [act.words for act in people[0].acts]
    assert words[0] == "Changed your sharing choices"  # newest first
    assert "Opened your record" in words
    read = next(act for act in people[0].acts if act.look is not None and act.look.items)
    assert "Asthma" in [item.display for item in read.look.items]
    shown = section(response.content.decode())
    assert "What people acting for you did" in shown
    assert "ben@example.com" in shown
    assert CHOSEN in shown
    assert "Changed your sharing choices" in shown
    assert "Asthma" in shown
    for internal in ("record.read", "consent.change", "acting for the patient", f">{ben_acted.pk}<"):
        assert internal not in shown, internal
    # Their acts are not an organisation's looks, and the patient's own visits stay out.
    assert all(look.event.actor_id != ben_acted.proxy_id for look in response.context["looks"])
    assert "mia@example.com" not in shown


def test_an_organisations_look_still_appears_as_before(client, mia_user, mia, ben_acted, dr_gp):
    from consent.policy import actor_for, open_record

    open_record(actor_for(dr_gp), mia.pk).read()
    client.force_login(mia_user)
    response = client.get(LOG)
    looks = response.context["looks"]
    assert [look.person for look in looks] == ["dr.gp@example.com"]
    assert looks[0].event.organisation == dr_gp.memberships.get().organisation
    assert response.context["people_acting"]
    # A filter on an organisation shows that organisation's looks, not what proxies did.
    filtered = client.get(LOG, {"organisation": looks[0].event.organisation.pk})
    assert len(filtered.context["looks"]) == 1
    assert filtered.context["people_acting"] == []
    assert 'id="acting-for-you"' not in filtered.content.decode()
    # A date filter applies to what they did too.
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert client.get(LOG, {"date_from": tomorrow}).context["people_acting"] == []
    today = timezone.localdate().isoformat()
    assert client.get(LOG, {"date_from": today}).context["people_acting"]


def test_a_refused_try_is_listed_as_refused(client, mia_user, ben):
    made = grant(mia_user, Rights(see=True))
    acting(client, ben, made.pk)
    sensitive = RecordEntry.objects.get(fhir_id="sex")
    assert client.get(reverse("record:item", kwargs={"entry_id": sensitive.pk})).status_code == 404
    client.force_login(mia_user)
    response = client.get(LOG)
    acts = response.context["people_acting"][0].acts
    refused = [act for act in acts if act.refused]
    assert refused
    shown = section(response.content.decode())
    assert "Refused" in shown
    assert "Nothing was shown or changed" in shown
    assert "Chlamydia" not in shown


def test_nothing_done_for_the_patient_means_no_section(client, mia_user):
    client.force_login(mia_user)
    response = client.get(LOG)
    assert response.context["people_acting"] == []
    assert "What people acting for you did" not in response.content.decode()


def test_the_proxy_does_not_see_the_page(client, mia_user, ben_acted, ben):
    acting(client, ben, ben_acted.pk)
    assert client.get(LOG).status_code == 404


def test_another_patient_does_not_see_these_acts(client, ben_acted):
    other = Patient.objects.create(nhs_number="9434765870", family_name="Other", given_names="Olu")
    olu = PatientUserFactory(email="olu@example.com", patient=other)
    client.force_login(olu)
    response = client.get(LOG)
    assert response.status_code == 200
    assert response.context["people_acting"] == []
    assert "ben@example.com" not in response.content.decode()


def test_the_list_is_capped_and_says_so(client, mia_user, ben, monkeypatch):
    from consent import access_log

    monkeypatch.setattr(access_log, "PROXY_ACTS_SHOWN", 2)
    acting(client, ben, grant(mia_user).pk)
    for _ in range(3):
        assert client.get(reverse("record:kind", kwargs={"kind": "problems"})).status_code == 200
    client.force_login(mia_user)
    response = client.get(LOG)
    assert sum(len(p.acts) for p in response.context["people_acting"]) == 2
    assert "Only the newest 2 things they did are listed here" in response.content.decode()


def test_the_patient_is_told_when_someone_acting_for_them_connects_an_app(client, mia_user, ben, app):
    made = grant(mia_user)
    connect(client, ben, app, str(made.pk))
    told = Notification.objects.get(user=mia_user)
    assert told.title == "Someone acting for you connected an app"
    assert "ben@example.com" in told.body
    assert "My Health App" in told.body
    assert told.link == reverse("oauth:apps")
    for clinical in ("Asthma", "Chlamydia"):
        assert clinical not in told.title + told.body
    assert not Notification.objects.filter(user=ben, title=told.title).exists()
    # And the log lists the app they connected.
    client.force_login(mia_user)
    acts = client.get(LOG).context["people_acting"][0].acts
    assert any(act.words == "Connected an app to your record" and act.app == "My Health App" for act in acts)


def test_connecting_an_app_to_ones_own_record_tells_no_one_else(client, mia_user, app):
    connect(client, mia_user, app, None)
    assert not Notification.objects.filter(title="Someone acting for you connected an app").exists()


def test_the_json_access_log_lists_what_someone_acting_for_them_did(client, mia_user, ben_acted):
    """Left out of issue 12: the JSON API's access log had only the organisations' looks."""
    client.force_login(mia_user)
    log = client.get("/api/v1/access-log/").json()
    [person] = log["people_acting"]
    assert (person["email"], person["relationship"]) == ("ben@example.com", CHOSEN)
    assert person["acts"][0]["what"] == "Changed your sharing choices"  # newest first
    read = next(act for act in person["acts"] if act["items"])
    assert "Asthma" in [item["display"] for item in read["items"]]
    assert log["people_acting_more"] is False
    assert "acting for the patient" not in json.dumps(log)
