"""Being told who looked (EHDS Art. 9): each time an organisation looks (at most once an
hour per organisation), a daily list, or only emergency access (the default); never the
patient's own looks, a share link's, or information governance's; never an item's name."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

import audit
from accounts.models import AccessAlertPreference, Notification
from audit.models import AuditEvent
from consent.access_alerts import choose_alerts
from consent.policy import Actor, actor_for, open_record, system_actor
from consent.share_links import create_share_link, open_shared_record
from consent.tasks import access_alert_scan, daily_access_digest
from tests.clinician.network import build_record
from tests.personas import ClinicianFactory, IGOfficerFactory, PatientUserFactory

pytestmark = pytest.mark.django_db

Mode = AccessAlertPreference.Mode
LOG = reverse("sharing:access_log")
# Item names on Ada's record (tests/clinician/network.py): none may reach a message.
ITEM_NAMES = ("Hypertension", "Depression", "Asthma", "Fracture", "wrist")
# 10:00 in London (GMT in December).
MORNING = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@pytest.fixture
def ada(gp, hospital):
    return build_record(gp, hospital)


@pytest.fixture
def ada_user(ada):
    return PatientUserFactory(email="ada@example.com", patient=ada)


@pytest.fixture
def doctor(hospital):
    return ClinicianFactory(email="dr.hale@hospital.example", organisation=hospital)


@pytest.fixture
def gp_doctor(gp):
    return ClinicianFactory(email="dr.gp@gp.example", organisation=gp)


def choose(user, mode: str) -> bool:
    return choose_alerts(actor=actor_for(user), mode=mode)


def read(user_or_actor, patient) -> None:
    actor = user_or_actor if isinstance(user_or_actor, Actor) else actor_for(user_or_actor)
    open_record(actor, patient.pk).read()


def alerts(user) -> list[Notification]:
    return list(Notification.objects.filter(user=user, kind=Notification.Kind.ACCESS).order_by("pk"))


def scan() -> dict:
    return access_alert_scan.delay().get()


# --- The default: emergency access only ---------------------------------------------------


def test_by_default_an_ordinary_read_tells_the_patient_nothing(ada, ada_user, doctor):
    read(doctor, ada)
    assert scan()["alerts"] == 0
    assert alerts(ada_user) == []
    assert not AccessAlertPreference.objects.exists()


# --- Each time ------------------------------------------------------------------------------


def test_each_time_tells_of_each_organisation_once_an_hour(ada, ada_user, doctor, gp_doctor):
    with time_machine.travel(MORNING - timedelta(minutes=5), tick=False):
        choose(ada_user, Mode.EACH_TIME)
    with time_machine.travel(MORNING, tick=False) as clock:
        for _ in range(10):  # a clinician opening ten pages
            read(doctor, ada)
            clock.shift(timedelta(minutes=1))
        read(gp_doctor, ada)
        assert scan() == {"looks": 11, "alerts": 2}
        clock.shift(timedelta(minutes=30))  # 10:40: still within the hour of the first
        read(doctor, ada)
        assert scan()["alerts"] == 0
        clock.shift(timedelta(minutes=21))  # 11:01: an hour after 10:00
        read(doctor, ada)
        assert scan()["alerts"] == 1
    notes = alerts(ada_user)
    assert [n.body.splitlines()[0] for n in notes] == [
        "City Teaching Hospitals looked at your record on 7 December 2026 at 10am.",
        "Riverside Surgery looked at your record on 7 December 2026 at 10:10am.",
        "City Teaching Hospitals looked at your record on 7 December 2026 at 11:01am.",
    ]
    assert {n.title for n in notes} == {"An organisation looked at your record"}
    assert {n.link for n in notes} == {LOG + "#looks"}
    assert notes[0].link_words == "See who has looked at your record"


def test_an_organisations_system_counts_as_the_organisation(ada, ada_user, hospital):
    choose(ada_user, Mode.EACH_TIME)
    read(system_actor(hospital, "hospital-pas"), ada)
    scan()
    assert [n.body.split(" looked")[0] for n in alerts(ada_user)] == ["City Teaching Hospitals"]


def test_looks_before_the_patient_asked_are_not_told(ada, ada_user, doctor):
    with time_machine.travel(MORNING, tick=False):
        read(doctor, ada)
    with time_machine.travel(MORNING + timedelta(minutes=5), tick=False):
        choose(ada_user, Mode.EACH_TIME)
        scan()
    assert alerts(ada_user) == []


def test_the_patients_own_reads_share_links_and_governance_never_alert(ada, ada_user, ig_officer):
    choose(ada_user, Mode.EACH_TIME)
    read(ada_user, ada)
    created = create_share_link(
        actor=actor_for(ada_user), label="Holiday", scope="full", days=7, passcode="holiday-pass"
    )
    open_shared_record(link=created.link, source_address="203.0.113.5").read()
    audit.record(
        "audit.read", actor=ig_officer, actor_label=ig_officer.email, patient=ada, purpose="governance"
    )
    # Even a read written for an IG officer is not an organisation's look.
    audit.record(
        "record.read", actor=ig_officer, actor_label=ig_officer.email, patient=ada, purpose="governance"
    )
    assert AuditEvent.objects.filter(patient=ada, action="record.read", purpose="share-link").exists()
    assert scan() == {"looks": 0, "alerts": 0}
    assert alerts(ada_user) == []


def test_running_the_scan_twice_tells_nothing_twice(ada, ada_user, doctor):
    choose(ada_user, Mode.EACH_TIME)
    read(doctor, ada)
    assert scan()["alerts"] == 1
    assert scan() == {"looks": 0, "alerts": 0}
    assert len(alerts(ada_user)) == 1


def test_a_backlog_drains_over_several_scans_without_repeats(ada, ada_user, doctor, gp_doctor):
    """A scan reads whole sealed blocks, at least one, up to its limit of events."""
    from audit.ledger import seal
    from consent import access_alerts

    choose(ada_user, Mode.EACH_TIME)
    assert access_alerts.scan() == {"looks": 0, "alerts": 0}  # what the fixtures wrote
    read(doctor, ada)
    assert seal().size == 1
    read(gp_doctor, ada)
    assert seal().size == 1
    assert access_alerts.scan(limit=1) == {"looks": 1, "alerts": 1}
    assert access_alerts.scan(limit=1) == {"looks": 1, "alerts": 1}
    assert access_alerts.scan(limit=1) == {"looks": 0, "alerts": 0}
    assert len(alerts(ada_user)) == 2


def test_another_patients_record_tells_this_patient_nothing(ada, ada_user, doctor, gp):
    from tests.personas import PatientFactory

    choose(ada_user, Mode.EACH_TIME)
    read(doctor, PatientFactory())
    scan()
    assert alerts(ada_user) == []


# --- Once a day -----------------------------------------------------------------------------


def test_the_daily_message_lists_who_looked_yesterday_with_counts(ada, ada_user, doctor, gp_doctor, settings):
    settings.ACCESS_DIGEST_HOUR = 7
    choose(ada_user, Mode.DAILY)
    with time_machine.travel(MORNING, tick=False):
        for _ in range(3):
            read(doctor, ada)
        read(gp_doctor, ada)
    with time_machine.travel(MORNING + timedelta(hours=20), tick=False):  # 6am the next day
        assert daily_access_digest.delay().get() is None  # not yet
        assert scan()["alerts"] == 0  # "each time" only
    with time_machine.travel(MORNING + timedelta(hours=21, minutes=5), tick=False):  # 7:05am
        assert daily_access_digest.delay().get() == {"digests": 1}
        assert daily_access_digest.delay().get() is None  # once a day
    (note,) = alerts(ada_user)
    assert note.title == "Who looked at your record on 7 December 2026"
    assert note.body == (
        "These organisations looked at your record on 7 December 2026:\n"
        "City Teaching Hospitals: 3 times\n"
        "Riverside Surgery: once"
    )
    assert not any(name.lower() in note.body.lower() for name in ITEM_NAMES)


def test_the_daily_message_is_sent_once_even_if_the_day_is_run_again(ada, ada_user, doctor):
    from consent import access_alerts

    choose(ada_user, Mode.DAILY)
    with time_machine.travel(MORNING, tick=False):
        read(doctor, ada)
    assert access_alerts.digest(MORNING.date()) == {"digests": 1}
    assert access_alerts.digest(MORNING.date()) == {"digests": 0}
    assert len(alerts(ada_user)) == 1


def test_no_daily_message_on_a_day_nobody_looked_or_for_other_choices(ada, ada_user, doctor, settings):
    from consent import access_alerts

    with time_machine.travel(MORNING, tick=False):
        read(doctor, ada)
    assert access_alerts.digest(MORNING.date()) == {"digests": 0}  # emergency only
    choose(ada_user, Mode.DAILY)
    assert access_alerts.digest(MORNING.date() - timedelta(days=1)) == {"digests": 0}
    assert alerts(ada_user) == []


# --- Emails -----------------------------------------------------------------------------------


def test_emails_name_neither_items_nor_organisations(
    ada, ada_user, doctor, django_capture_on_commit_callbacks
):
    choose(ada_user, Mode.EACH_TIME)
    read(doctor, ada)
    with django_capture_on_commit_callbacks(execute=True):
        scan()
    (email,) = mail.outbox
    sent = f"{email.subject}\n{email.body}"
    assert "An organisation looked at your record" in email.subject
    assert not any(name.lower() in sent.lower() for name in ITEM_NAMES)
    assert "City Teaching Hospitals" not in sent


# --- The choice on the "Who has looked" page --------------------------------------------------


def test_the_page_shows_the_default_and_saves_a_new_choice_audited(client, ada, ada_user):
    client.force_login(ada_user)
    page = client.get(LOG)
    body = page.content.decode()
    assert page.context["alerts_form"]["mode"].value() == Mode.EMERGENCY_ONLY
    assert "Tell me each time an organisation looks at my record" in body
    assert "Send me one message a day listing who looked" in body
    assert "Only tell me about emergency access (recommended)" in body
    assert 'class="nhsuk-radios__input"' in body

    saved = client.post(LOG, {"alerts-mode": Mode.DAILY}, follow=True)
    assert saved.redirect_chain[-1][0] == LOG + "#alerts"
    assert "We will send you one message a day listing who looked." in saved.content.decode()
    assert AccessAlertPreference.objects.get(patient=ada).mode == Mode.DAILY
    (event,) = AuditEvent.objects.filter(action="consent.alerts")
    assert event.patient_id == ada.pk
    assert event.actor_id == ada_user.pk
    assert event.detail == {"mode": Mode.DAILY, "was": Mode.EMERGENCY_ONLY}

    client.post(LOG, {"alerts-mode": Mode.DAILY})  # the same again: nothing to audit
    assert AuditEvent.objects.filter(action="consent.alerts").count() == 1


def test_an_empty_or_unknown_choice_is_named_and_nothing_saved(client, ada, ada_user):
    client.force_login(ada_user)
    for data in ({}, {"alerts-mode": "always"}):
        response = client.post(LOG, data)
        assert response.status_code == 200
        body = response.content.decode()
        assert "There is a problem" in body
        assert "Choose when we should tell you" in body
    assert not AccessAlertPreference.objects.exists()
    assert not AuditEvent.objects.filter(action="consent.alerts").exists()


def test_staff_cannot_choose_for_a_patient(client, ada, doctor):
    client.force_login(doctor)
    client.post(LOG, {"alerts-mode": Mode.EACH_TIME})
    assert not AccessAlertPreference.objects.exists()
    ig = IGOfficerFactory(email="ig2@example.com")
    client.force_login(ig)
    client.post(LOG, {"alerts-mode": Mode.EACH_TIME})
    assert not AccessAlertPreference.objects.exists()
