"""Issue 12 part 4, the rules: who may give proxy access, what a proxy may do and see,
and when access ends by itself (consent.proxies, consent.policy)."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from accounts.models import Notification, ProxyAccess
from accuracy import services as corrections
from audit.models import AuditEvent
from consent import proxies
from consent.policy import Action, NotFound, actor_for, authorise, open_record
from consent.proxies import ProxyProblem, Rights
from consent.share_links import create_share_link
from phr.models import Patient, RecordEntry
from tests.feeds import labelled_problem as condition
from tests.feeds import patient_resource, send
from tests.personas import ClinicianFactory, PatientUserFactory

pytestmark = pytest.mark.django_db

NHS = "9990000018"


def born(years: int) -> date:
    """A birth date ``years`` and a few days ago (any day of the year, 29 February too)."""
    return proxies.birthday(timezone.localdate() - timedelta(days=3), -years)


@pytest.fixture
def world(gp, hospital):
    send(gp, patient_resource("p", NHS), condition("plain", "Asthma"), condition("sex", "Chlamydia", "SEX"))
    patient = Patient.objects.get(nhs_number=NHS)
    return {
        "patient": patient,
        "ada": PatientUserFactory(email="ada@example.com", patient=patient),
        "ben": PatientUserFactory(email="ben@example.com"),
        "dr_gp": ClinicianFactory(email="dr.gp@example.com", organisation=gp),
        "dr_hospital": ClinicianFactory(email="dr.h@example.com", organisation=hospital),
    }


def until(days: int = 30):
    return timezone.now() + timedelta(days=days)


SEE_ONLY = Rights()


def chosen(world, rights=SEE_ONLY) -> ProxyAccess:
    world["patient"].birth_date = born(40)
    world["patient"].save()
    return proxies.grant_by_patient(
        actor=actor_for(world["ada"]),
        email="ben@example.com",
        rights=rights,
        until=until(),
        reason="My husband helps",
    )


def as_proxy(world, grant):
    return actor_for(world["ben"], proxy_grant=grant.pk)


def test_a_proxy_sees_the_record_but_never_its_sensitive_items_and_is_audited_as_such(world):
    grant = chosen(world)
    actor = as_proxy(world, grant)
    seen = {e.fhir_id for e in open_record(actor, world["patient"].pk).read() if e.resource_type != "Patient"}
    assert seen == {"plain"}
    own = {e.fhir_id for e in open_record(actor_for(world["ada"]), world["patient"].pk).read()}
    assert "sex" in own
    event = AuditEvent.objects.filter(action="record.read", actor=world["ben"]).last()
    assert event.patient_id == world["patient"].pk
    assert (
        event.actor_label
        == "ben@example.com, acting for the patient (someone the patient chose to act for them)"
    )


def test_a_proxy_does_only_what_the_grant_names(world):
    actor = as_proxy(world, chosen(world, Rights(see=True)))
    with pytest.raises(NotFound):
        authorise(actor, Action.CHANGE_CONSENT, world["patient"].pk)
    entry = RecordEntry.objects.get(fhir_id="plain")
    with pytest.raises(NotFound):
        corrections.submit_correction(
            actor=actor,
            entry_id=entry.pk,
            element="",
            proposed="Not asthma",
            reason="It was a chest infection",
            contact_preference="portal",
        )
    with pytest.raises(NotFound):
        create_share_link(actor=actor, label="x", scope="full", days=1)
    with pytest.raises(NotFound):  # a proxy never gives anyone else access
        proxies.grant_by_patient(
            actor=actor, email="ada@example.com", rights=Rights(), until=until(), reason="Me too please"
        )


def test_a_proxy_with_the_right_may_ask_for_a_correction_and_manage_sharing(world):
    actor = as_proxy(world, chosen(world, Rights(see=True, correct=True, share=True)))
    authorise(actor, Action.CHANGE_CONSENT, world["patient"].pk)
    entry = RecordEntry.objects.get(fhir_id="plain")
    request = corrections.submit_correction(
        actor=actor,
        entry_id=entry.pk,
        element="",
        proposed="Not asthma",
        reason="It was a chest infection",
        contact_preference="portal",
    )
    assert request.requested_by == world["ben"]


def test_an_ended_or_lapsed_grant_acts_for_nobody(world):
    grant = chosen(world)
    proxies.end_grant(actor=actor_for(world["ada"]), grant_id=grant.pk)
    assert as_proxy(world, grant).proxy is None  # back to themselves
    later = chosen(world)
    ProxyAccess.objects.filter(pk=later.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    assert as_proxy(world, later).proxy is None
    assert AuditEvent.objects.filter(action="proxy.end").count() == 1


def test_only_the_patient_their_practice_or_the_proxy_ends_a_grant(world):
    grant = chosen(world)
    for stranger in (world["dr_hospital"], PatientUserFactory(email="eve@example.com")):
        with pytest.raises(NotFound):
            proxies.end_grant(actor=actor_for(stranger), grant_id=grant.pk)
    proxies.end_grant(actor=actor_for(world["ben"]), grant_id=grant.pk)  # the proxy, their own
    assert ProxyAccess.objects.get(pk=grant.pk).ended_at is not None


@pytest.mark.parametrize(
    ("age", "relationship", "field"),
    [
        (5, "child", None),
        (13, "young_person", None),
        (13, "child", "relationship"),
        (20, "child", "relationship"),
        (45, "lasting_power", None),
        (45, "chosen", "relationship"),  # the patient chooses, not the practice
    ],
)
def test_the_practice_gives_access_by_the_relationship_the_age_allows(world, age, relationship, field):
    world["patient"].birth_date = born(age)
    world["patient"].save()
    give = lambda: proxies.grant_by_practice(  # noqa: E731
        actor=actor_for(world["dr_gp"]),
        patient_id=world["patient"].pk,
        email="ben@example.com",
        relationship=relationship,
        rights=Rights(),
        until=until(),
        reason="Parent, identity checked at reception",
    )
    if field is None:
        assert give().granted_by_organisation.ods_code == "A10001"
    else:
        with pytest.raises(ProxyProblem) as problem:
            give()
        assert problem.value.field == field


def test_a_practice_that_does_not_hold_the_record_cannot_give_access(world):
    with pytest.raises(NotFound):
        proxies.practice_of(actor_for(world["dr_hospital"]), world["patient"].pk)


def test_access_for_a_child_cannot_outlast_their_eleventh_birthday(world):
    world["patient"].birth_date = born(10)
    world["patient"].save()
    with pytest.raises(ProxyProblem, match="ends by their 11th birthday"):
        proxies.grant_by_practice(
            actor=actor_for(world["dr_gp"]),
            patient_id=world["patient"].pk,
            email="ben@example.com",
            relationship="child",
            rights=Rights(),
            until=until(400),
            reason="Parent, identity checked at reception",
        )


def test_a_childs_access_ends_at_eleven_and_the_practice_is_told(world):
    world["patient"].birth_date = born(9)
    world["patient"].save()
    grant = proxies.grant_by_practice(
        actor=actor_for(world["dr_gp"]),
        patient_id=world["patient"].pk,
        email="ben@example.com",
        relationship="child",
        rights=Rights(),
        until=until(300),
        reason="Parent, identity checked at reception",
    )
    assert proxies.review_by_age() == 0
    eleventh = proxies.birthday(world["patient"].birth_date, 11)
    assert proxies.review_by_age(today=eleventh) == 1
    assert proxies.review_by_age(today=eleventh) == 0
    grant.refresh_from_db()
    assert grant.ended_at is not None
    assert "review" in grant.end_reason
    assert Notification.objects.filter(user=world["dr_gp"], title="Proxy access to review").exists()
    assert Notification.objects.filter(
        user=world["ben"], title="Your access to act for someone has ended"
    ).exists()


def test_a_grant_needs_a_reason_an_end_date_and_something_to_do(world):
    world["patient"].birth_date = born(40)
    world["patient"].save()
    ada = actor_for(world["ada"])
    cases = [
        ({"rights": Rights(see=False)}, "rights"),
        ({"reason": "x"}, "reason"),
        ({"until": timezone.now() - timedelta(days=1)}, "until"),
        ({"until": until(4 * 365)}, "until"),
        ({"email": "nobody@example.com"}, "email"),
        ({"email": "ada@example.com"}, "email"),
    ]
    for change, field in cases:
        given = {
            "email": "ben@example.com",
            "rights": Rights(),
            "until": until(),
            "reason": "My husband helps",
            **change,
        }
        with pytest.raises(ProxyProblem) as problem:
            proxies.grant_by_patient(actor=ada, **given)
        assert problem.value.field == field, change
    assert not ProxyAccess.objects.exists()


def test_a_proxy_never_sees_mental_health_by_default_and_the_setting_decides(world, gp, settings):
    send(gp, patient_resource("p", NHS), condition("mind", "Depression", "PSY"))
    actor = as_proxy(world, chosen(world))

    def seen():
        return {e.fhir_id for e in open_record(actor, world["patient"].pk).read()}

    assert "mind" not in seen()
    assert "mind" in {e.fhir_id for e in open_record(actor_for(world["ada"]), world["patient"].pk).read()}
    settings.PROXY_HIDDEN_CATEGORIES = []
    assert "mind" in seen()
    assert "sex" not in seen()  # the sensitive records stay hidden whatever the setting


def test_a_second_active_grant_to_the_same_person_is_refused(world):
    first = chosen(world)
    with pytest.raises(ProxyProblem) as problem:
        chosen(world, Rights(see=True, correct=True))
    assert problem.value.field == "email"
    assert "already act for this patient" in str(problem.value)
    proxies.end_grant(actor=actor_for(world["ada"]), grant_id=first.pk)
    again = chosen(world, Rights(see=True, correct=True))
    assert again.may_correct
    assert ProxyAccess.objects.filter(ended_at__isnull=True).count() == 1


def test_a_proxy_never_reads_the_patients_access_log(world):
    """The log names what others read, sensitive items included: it stays the patient's."""
    actor = as_proxy(world, chosen(world, Rights(see=True, correct=True, share=True)))
    with pytest.raises(NotFound):
        authorise(actor, Action.READ_AUDIT, world["patient"].pk)
    authorise(actor_for(world["ada"]), Action.READ_AUDIT, world["patient"].pk)
