"""Share links: a patient makes a time-limited, passcode-protected link to their record;
whoever holds it sees the patient's own view (summary or whole), each view audited and
listed in the patient's "who has looked" page; dead links all look the same."""

import hashlib
import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.hashers import check_password
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from consent.policy import actor_for
from consent.services import withhold_from_patient
from consent.share_links import create_share_link, revoke_share_link
from consent.share_models import ShareLink
from phr.ingest import ingest_documents
from tests.clinician.network import NHS_NUMBER, build_record
from tests.personas import ClinicianFactory, PatientUserFactory

pytestmark = pytest.mark.django_db

LINKS = reverse("share:links")
NEW = reverse("share:new")
PASSCODE = "holiday-2026"
# What the page ticks by default: every category but those kept to their holder.
DEFAULT_CATEGORIES = ["general", "mental_health", "social_care"]


@pytest.fixture
def ada(gp, hospital):
    patient = build_record(gp, hospital)
    ingest_documents(
        [
            (
                "gp.json",
                {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [
                        {
                            "resource": {
                                "resourceType": "AllergyIntolerance",
                                "id": "a1",
                                "patient": {"reference": "Patient/p1"},
                                "code": {"text": "Penicillin"},
                                "recordedDate": "2020-01-01",
                            }
                        },
                        {
                            "resource": {
                                "resourceType": "Encounter",
                                "id": "e1",
                                "status": "finished",
                                "class": {"code": "AMB", "display": "ambulatory"},
                                "subject": {"reference": "Patient/p1"},
                                "type": [{"text": "Annual review at the surgery"}],
                                "period": {"start": "2024-02-02"},
                            }
                        },
                    ],
                },
            )
        ],
        organisation=gp,
    )
    patient.given_names, patient.family_name = "Ada", "Okafor"
    patient.save()
    return patient


@pytest.fixture
def ada_user(ada):
    user = PatientUserFactory(email="ada@example.com", patient=ada)
    user.first_name, user.last_name = "Ada", "Okafor"
    user.save()
    return user


@pytest.fixture
def as_ada(client, ada_user):
    client.force_login(ada_user)
    return client


def make(user, scope="summary", days=7, passcode=PASSCODE, label="For my holiday"):
    return create_share_link(actor=actor_for(user), label=label, scope=scope, days=days, passcode=passcode)


def url(created) -> str:
    return reverse("share:view", kwargs={"token": created.token})


def unlock(client, created, passcode=PASSCODE):
    return client.post(url(created), {"passcode": passcode})


def shared_items(response) -> str:
    return response.content.decode()


# --- Making, listing and revoking ---------------------------------------------------------


def test_a_patient_makes_a_link_and_sees_it_once_with_a_qr_code(as_ada, ada):
    response = as_ada.post(
        NEW,
        {
            "label": "For my holiday",
            "scope": "full",
            "days": "10",
            "passcode": "",
            "categories": DEFAULT_CATEGORIES,
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    link = ShareLink.objects.get()
    assert link.patient == ada
    assert link.scope == "full"
    assert timedelta(days=9, hours=23) < link.expires_at - link.created_at <= timedelta(days=10)
    token = re.search(r"/share/v/([A-Za-z0-9_-]+)/", body).group(1)
    assert len(token) >= 43  # 32 random bytes
    assert '<svg role="img" aria-label="QR code of the link"' in body
    passcode = response.context["passcode"]
    assert len(passcode) == 8
    assert passcode in body
    assert check_password(passcode, link.passcode_hash)
    assert response["Cache-Control"] == "no-store"
    assert AuditEvent.objects.filter(action="share.create", detail__share_link=link.pk).count() == 1


def test_the_token_and_passcode_are_stored_only_as_hashes(ada_user):
    created = make(ada_user)
    link = created.link
    assert link.token_hash == hashlib.sha256(created.token.encode()).hexdigest()
    stored = " ".join(str(v) for v in ShareLink.objects.values().get().values())
    assert created.token not in stored
    assert PASSCODE not in stored
    assert created.passcode is None  # the patient chose it: nothing is shown back
    events = " ".join(str(e.detail) + e.actor_label for e in AuditEvent.objects.all())
    assert created.token not in events


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"label": "", "scope": "summary", "days": "7"}, "label"),
        ({"label": "x", "scope": "summary", "days": "31"}, "days"),
        ({"label": "x", "scope": "summary", "days": "0"}, "days"),
        ({"label": "x", "scope": "everything", "days": "7"}, "scope"),
        ({"label": "x", "scope": "summary", "days": "7", "passcode": "12345"}, "passcode"),
    ],
)
def test_bad_choices_are_explained_and_nothing_is_made(as_ada, data, field):
    response = as_ada.post(NEW, data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert "There is a problem" in response.content.decode()
    assert not ShareLink.objects.exists()


def test_the_list_shows_each_link_with_views_and_status(as_ada, ada_user):
    live = make(ada_user, label="For my holiday")
    revoke_share_link(actor=actor_for(ada_user), link_id=make(ada_user, label="Old one").link.pk)
    response = as_ada.get(LINKS)
    body = response.content.decode()
    assert "For my holiday" in body
    assert "Old one" in body
    assert "Revoked" in body
    assert body.count("Revoke now") == 1
    assert live.token not in body


def test_revoking_stops_the_link_at_once(client, as_ada, ada_user):
    created = make(ada_user)
    viewer = type(client)()
    unlock(viewer, created)
    assert viewer.get(url(created)).status_code == 200
    response = as_ada.post(reverse("share:revoke", kwargs={"link_id": created.link.pk}))
    assert response.status_code == 302
    assert viewer.get(url(created)).status_code == 404
    assert AuditEvent.objects.filter(action="share.revoke", detail__share_link=created.link.pk).exists()


def test_a_patient_cannot_revoke_another_patients_link(client, ada_user, gp):
    created = make(ada_user)
    other = PatientUserFactory(email="ben@example.com", patient=build_other(gp))
    client.force_login(other)
    assert client.post(reverse("share:revoke", kwargs={"link_id": created.link.pk})).status_code == 404
    assert ShareLink.objects.get().revoked_at is None


def build_other(gp):
    from phr.models import Patient

    ingest_documents(
        [
            (
                "b.json",
                {
                    "resourceType": "Patient",
                    "id": "pb",
                    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}],
                },
            )
        ],
        organisation=gp,
    )
    return Patient.objects.get(nhs_number="9990000018")


def test_staff_and_unlinked_accounts_get_a_friendly_page(client, gp):
    client.force_login(ClinicianFactory(email="dr@gp.example", organisation=gp))
    response = client.get(LINKS)
    assert response.status_code == 200
    assert "staff account" in response.content.decode()
    assert client.get(NEW).status_code == 200
    assert not ShareLink.objects.exists()


def test_anonymous_visitors_are_sent_to_sign_in(client):
    assert client.get(LINKS).status_code == 302
    assert client.get(NEW).status_code == 302


# --- Opening a link -----------------------------------------------------------------------


def test_the_passcode_opens_the_record_and_the_session_remembers_it(client, ada_user):
    created = make(ada_user)
    first = client.get(url(created))
    assert first.status_code == 200
    assert "Enter the passcode" in first.content.decode()
    assert "Okafor" not in first.content.decode()  # nothing about the patient before the passcode
    response = unlock(client, created)
    assert response.status_code == 302
    page = client.get(url(created))
    body = page.content.decode()
    assert page.status_code == 200
    assert "Shared by Ada Okafor" in body
    assert created.link.expires_at.strftime("%Y") in body
    assert page["Referrer-Policy"] == "same-origin"
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert "Enter the passcode" in client.get(url(created)).content.decode()


def test_a_wrong_passcode_is_refused_and_the_fifth_locks_the_link(client, ada_user):
    created = make(ada_user)
    for left in (4, 3, 2, 1):
        response = unlock(client, created, "wrong-one")
        assert response.status_code == 400
        assert f"try {left} more time" in response.content.decode()
    locked = unlock(client, created, "wrong-one")
    assert locked.status_code == 404
    link = ShareLink.objects.get()
    assert link.locked_at is not None
    assert link.failed_attempts == 5
    # Locked for good: even the right passcode no longer opens it.
    assert unlock(client, created).status_code == 404
    assert AuditEvent.objects.filter(action="share.lock", detail__share_link=link.pk).count() == 1


def test_one_address_gets_20_wrong_passcodes_an_hour_across_links(client, ada_user):
    links = [make(ada_user, label=f"Link {n}") for n in range(5)]
    for n in range(20):
        assert unlock(client, links[n // 4], "wrong-one").status_code == 400
    fresh = make(ada_user, label="Fresh")
    response = unlock(client, fresh)
    assert response.status_code == 429
    assert "Too many wrong passcodes" in response.content.decode()
    assert ShareLink.objects.get(pk=fresh.link.pk).failed_attempts == 0


def test_a_link_stops_working_when_it_expires(client, ada_user):
    created = make(ada_user, days=30)
    unlock(client, created)
    with time_machine.travel(timezone.now() + timedelta(days=29, hours=23)):
        assert client.get(url(created)).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=30, minutes=1)):
        assert client.get(url(created)).status_code == 404
        assert unlock(type(client)(), created).status_code == 404


def test_unknown_expired_revoked_and_locked_links_look_identical(client, ada_user):
    expired = make(ada_user, days=1, label="a")
    revoked = make(ada_user, label="b")
    locked = make(ada_user, label="c")
    revoke_share_link(actor=actor_for(ada_user), link_id=revoked.link.pk)
    ShareLink.objects.filter(pk=locked.link.pk).update(locked_at=timezone.now(), failed_attempts=5)
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        paths = [url(expired), url(revoked), url(locked), reverse("share:view", kwargs={"token": "x" * 43})]
        responses = [client.get(path) for path in paths] + [
            client.post(path, {"passcode": PASSCODE}) for path in paths
        ]
    assert {r.status_code for r in responses} == {404}
    bodies = {r.content for r in responses}
    assert len(bodies) == 1
    assert b"This link does not work" in bodies.pop()


def test_a_summary_shows_the_essentials_and_a_full_link_everything(client, ada_user):
    summary, full = make(ada_user, scope="summary", label="s"), make(ada_user, scope="full", label="f")
    unlock(client, summary)
    unlock(client, full)
    small = client.get(url(summary)).content.decode()
    whole = client.get(url(full)).content.decode()
    for text in ("Hypertensive disorder", "Penicillin", "Serum potassium", "Vaccinations", "None recorded"):
        assert text in small
    assert "Annual review at the surgery" not in small  # appointments are not in a summary
    assert "Asthma" not in small  # entered in error: not part of the current record
    for text in (
        "Hypertensive disorder",
        "Penicillin",
        "Serum potassium",
        "Annual review at the surgery",
        "Asthma",
    ):
        assert text in whole
    assert "4.1 mmol/L" in whole  # the details a clinician needs


def test_items_withheld_from_the_patient_stay_hidden(client, ada, ada_user, gp):
    doctor = ClinicianFactory(email="dr@gp.example", organisation=gp)
    held = ada.entries.get(resource_type="Condition", display__icontains="Depressive")
    withhold_from_patient(actor=actor_for(doctor), entry=held, reason="Would cause harm if seen unexplained")
    created = make(ada_user, scope="full")
    unlock(client, created)
    body = client.get(url(created)).content.decode()
    assert "Hypertensive disorder" in body
    assert "Depressive" not in body
    assert str(held.pk) not in body


def test_a_closed_patient_account_closes_its_links(client, ada_user):
    created = make(ada_user)
    unlock(client, created)
    ada_user.is_active = False
    ada_user.save()
    assert client.get(url(created)).status_code == 404


def test_each_view_is_audited_as_the_link_with_the_items_shown(client, ada, ada_user):
    created = make(ada_user, scope="full")
    unlock(client, created)
    client.get(url(created))
    client.get(url(created))
    events = AuditEvent.objects.filter(action="record.read", purpose="share-link").order_by("seq")
    assert events.count() == 2
    event = events.last()
    assert event.actor_id is None
    assert event.actor_label == "Shared link: For my holiday"
    assert event.detail["share_link"] == created.link.pk
    assert event.detail["label"] == "For my holiday"
    assert event.patient_id == ada.pk
    assert event.source_address == "127.0.0.1"
    assert len(event.entries) == ada.entries.exclude(resource_type="Patient").count()
    assert ShareLink.objects.get().view_count == 2


def test_views_appear_in_the_patients_access_log(client, as_ada, ada_user):
    created = make(ada_user)
    viewer = type(client)()
    unlock(viewer, created)
    viewer.get(url(created))
    response = as_ada.get(reverse("sharing:access_log"))
    people = [look.person for look in response.context["looks"]]
    assert people == ["Shared link: For my holiday"]
    assert "Shared link: For my holiday" in response.content.decode()


def test_no_nhs_number_or_record_id_in_any_share_address(as_ada, ada, ada_user):
    response = as_ada.post(
        NEW,
        {
            "label": "x",
            "scope": "summary",
            "days": "3",
            "passcode": PASSCODE,
            "categories": DEFAULT_CATEGORIES,
        },
    )
    addresses = re.findall(r'(?:href|action)="([^"]+)"', response.content.decode())
    addresses += re.findall(r'(?:href|action)="([^"]+)"', as_ada.get(LINKS).content.decode())
    for address in addresses:
        assert NHS_NUMBER not in address
        assert str(ada.pk) not in address
        assert ada.pk.hex not in address
