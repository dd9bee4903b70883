"""Acting for someone else: who may give a proxy access, to whom, for what and for how
long, and when it ends by itself.

The rules follow NHS England's proxy access standard (DAPB3051) and the EHDS regulation's
Art. 4 (time- and purpose-limited proxies):
- a patient aged 16 or over chooses their own proxies; a practice that holds the
  patient's record gives access for a child (a parent of a child under 11, or of a young
  person aged 11 to 15 when the practice judges it right) or under a lasting power of
  attorney for health and welfare it has checked;
- every grant names what the proxy may do (see the record, ask for corrections, manage
  sharing), why, and until when; a proxy never sees the patient's sensitive records,
  items held for review or withheld, or what is about someone else (the policy);
- a proxy may not give or change anyone's proxy access or make share links; an app a
  proxy connects (SMART's launch/patient: they choose the record) acts as that proxy for
  that one patient, within the same grant, ends when the grant ends, and the patient
  sees it and can stop it (api.oauth_server);
- access for a child ends at the ages settings.PROXY_REVIEW_AGES names (11 and 16), and
  the practice is told, so that it can decide again with the young person;
- the patient (or their practice) sees every grant and ends any; a proxy may end their own.
Every grant and ending is audited; every act of a proxy is audited as theirs, for the
patient (policy.Actor.label).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import audit
from accounts.models import Membership, Notification, ProxyAccess, Role, User
from accounts.tasks import notify
from phr.models import OrganisationKind, Patient, RecordEntry
from phr.render.dates import day

from .policy import Actor, ActorRole, NotFound, patient_themself, registered_practices

Relationship = ProxyAccess.Relationship
MAX_DAYS = 3 * 365  # no grant runs longer without being given again
MIN_REASON_LENGTH = 10
OWN_RECORD = "own"  # the choice of one's own record, beside the grants' ids


class ProxyProblem(ValueError):
    """A grant that cannot be given; the message says what to change, ``field`` where."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Rights:
    see: bool = True
    correct: bool = False
    share: bool = False


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def birthday(born: date, years: int) -> date:
    """The day someone born on ``born`` turns ``years`` (29 February: 1 March)."""
    try:
        return born.replace(year=born.year + years)
    except ValueError:
        return date(born.year + years, 3, 1)


def _proxy_account(email: str, patient: Patient) -> User:
    proxy = User.objects.filter(email__iexact=email.strip(), role=Role.PATIENT, is_active=True).first()
    if proxy is None:
        raise ProxyProblem(
            "There is no patient account with this email address: ask them to create one first",
            "email",
        )
    if getattr(getattr(proxy, "patient_link", None), "patient_id", None) == patient.pk:
        raise ProxyProblem("This is the patient's own account", "email")
    return proxy


def _checked(
    patient: Patient, relationship: str, rights: Rights, until: datetime, reason: str, now: datetime
):
    if relationship not in Relationship.values:
        raise ProxyProblem("Choose the relationship", "relationship")
    if not (rights.see or rights.correct or rights.share):
        raise ProxyProblem("Choose at least one thing they may do", "rights")
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ProxyProblem(f"Say why, in at least {MIN_REASON_LENGTH} characters", "reason")
    if until <= now:
        raise ProxyProblem("The end date must be in the future", "until")
    born = patient.birth_date
    today = timezone.localdate()
    if relationship in (Relationship.CHILD, Relationship.YOUNG_PERSON):
        if born is None:
            raise ProxyProblem(
                "The patient's date of birth is not known: access for a child cannot be given", None
            )
        low, high = (0, 11) if relationship == Relationship.CHILD else (11, 16)
        if not low <= age_on(born, today) < high:
            raise ProxyProblem(f"This relationship is for a patient aged {low} to {high - 1}", "relationship")
        ends_by = timezone.make_aware(datetime.combine(birthday(born, high), datetime.min.time()))
        if until > ends_by:
            raise ProxyProblem(f"Access for a child ends by their {high}th birthday, {day(ends_by)}", "until")
    elif born is not None and age_on(born, today) < settings.PROXY_REVIEW_AGES[1]:
        # Worded for who reads it: the young patient choosing someone, or their practice.
        if relationship == Relationship.CHOSEN:
            raise ProxyProblem(
                f"Until you are {settings.PROXY_REVIEW_AGES[1]}, your practice gives a parent or"
                " guardian access for you",
                "relationship",
            )
        raise ProxyProblem(
            f"The patient is under {settings.PROXY_REVIEW_AGES[1]}: choose parent or guardian", "relationship"
        )
    # After a child's birthday limit, the more specific when an end date is past both.
    if until > now + timedelta(days=MAX_DAYS):
        raise ProxyProblem("Proxy access can last 3 years at most; it can be given again", "until")


def _grant(
    *,
    actor: Actor,
    patient: Patient,
    proxy: User,
    relationship: str,
    rights: Rights,
    until,
    reason,
    organisation,
) -> ProxyAccess:
    now = timezone.now()
    already = ProxyAccess.objects.filter(
        patient=patient, proxy=proxy, ended_at__isnull=True, ends_at__gt=now
    ).first()
    if already is not None:
        raise ProxyProblem(
            f"They can already act for this patient, until {day(already.ends_at)}: "
            "end that access first to give it again differently",
            "email",
        )
    grant = ProxyAccess.objects.create(
        patient=patient,
        proxy=proxy,
        relationship=relationship,
        may_see=rights.see,
        may_correct=rights.correct,
        may_share=rights.share,
        reason=reason.strip(),
        ends_at=until,
        granted_by=actor.user,
        granted_by_organisation=organisation,
    )
    audit.record(
        "proxy.grant",
        patient=patient,
        purpose="patient-choice" if organisation is None else "direct-care",
        detail={"grant": grant.pk, "relationship": relationship, "rights": sorted(grant.rights)},
        **actor.audit_fields(),
    )
    notify(
        proxy,
        kind=Notification.Kind.GENERAL,
        title="You can now act for someone",
        body="You have been given access to act for someone in the portal. Choose whose record "
        "you are looking at from your home page.",
    )
    return grant


def own_patient(actor: Actor) -> Patient:
    """The patient themself, never anyone acting for them."""
    patient_themself(actor)
    return Patient.objects.get(pk=actor.patient_id)


@transaction.atomic
def grant_by_patient(
    *, actor: Actor, email: str, rights: Rights, until: datetime, reason: str
) -> ProxyAccess:
    """A patient aged 16 or over lets someone they choose act for them."""
    patient = own_patient(actor)
    _checked(patient, Relationship.CHOSEN, rights, until, reason, timezone.now())
    proxy = _proxy_account(email, patient)
    return _grant(
        actor=actor,
        patient=patient,
        proxy=proxy,
        relationship=Relationship.CHOSEN,
        rights=rights,
        until=until,
        reason=reason,
        organisation=None,
    )


def practice_of(actor: Actor, patient_id) -> Patient:
    """The patient, if the actor is a clinician of their registered GP practice: the
    practice their details name (registered_practices), or, where no copy names one, a
    GP practice that holds their record."""
    org = actor.organisation
    if (
        actor.role != ActorRole.CLINICIAN
        or actor.second_factor_missing
        or org is None
        or org.kind != OrganisationKind.GP_PRACTICE
    ):
        raise NotFound
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None or not RecordEntry.objects.filter(patient=patient, owner=org).exists():
        raise NotFound
    named = registered_practices(patient)
    if named and org.ods_code.upper() not in named:
        raise NotFound
    return patient


@transaction.atomic
def grant_by_practice(
    *, actor: Actor, patient_id, email: str, relationship: str, rights: Rights, until: datetime, reason: str
) -> ProxyAccess:
    """A practice that holds the patient's record gives a parent, or an attorney it has
    checked, access to act for the patient."""
    patient = practice_of(actor, patient_id)
    if relationship == Relationship.CHOSEN:
        raise ProxyProblem("Only the patient can choose someone to act for them", "relationship")
    _checked(patient, relationship, rights, until, reason, timezone.now())
    proxy = _proxy_account(email, patient)
    return _grant(
        actor=actor,
        patient=patient,
        proxy=proxy,
        relationship=relationship,
        rights=rights,
        until=until,
        reason=reason,
        organisation=actor.organisation,
    )


def _may_end(actor: Actor, grant: ProxyAccess) -> bool:
    if actor.role == ActorRole.PATIENT:
        mine = actor.proxy is None and actor.patient_id == grant.patient_id
        theirs = actor.user is not None and grant.proxy_id == actor.user.pk  # a proxy ends their own
        return mine or theirs
    if actor.role == ActorRole.CLINICIAN:
        try:
            practice_of(actor, grant.patient_id)
        except NotFound:
            return False
        return True
    return False


@transaction.atomic
def end_grant(*, actor: Actor, grant_id, reason: str = "") -> ProxyAccess:
    """End a grant now: the patient, their practice, or the proxy themself."""
    grant = (
        ProxyAccess.objects.select_for_update()
        .filter(pk=grant_id if str(grant_id).isdigit() else None)
        .first()
    )
    if grant is None or not _may_end(actor, grant):
        raise NotFound
    if grant.ended_at is None:
        grant.ended_at, grant.ended_by = timezone.now(), actor.user
        grant.end_reason = (reason or "Ended")[:200]
        grant.save(update_fields=["ended_at", "ended_by", "end_reason"])
        audit.record(
            "proxy.end",
            patient_id=grant.patient_id,
            purpose="direct-care" if actor.role == ActorRole.CLINICIAN else "patient-choice",
            detail={"grant": grant.pk},
            **actor.audit_fields(),
        )
    return grant


def grants_for(patient_id) -> list[ProxyAccess]:
    """Everyone who can act, or could act, for the patient, newest first."""
    return list(
        ProxyAccess.objects.filter(patient_id=patient_id).select_related("proxy", "granted_by_organisation")
    )


def own_grants(actor: Actor) -> list[ProxyAccess]:
    """The patient's own list of who can act for them: theirs alone, never a proxy's."""
    return grants_for(own_patient(actor).pk)


def active_grants_of(user) -> list[ProxyAccess]:
    """Whose records this person may act for now."""
    now = timezone.now()
    return list(
        ProxyAccess.objects.filter(proxy=user, ended_at__isnull=True, starts_at__lte=now, ends_at__gt=now)
        .select_related("patient")
        .order_by("patient__family_name", "patient__given_names", "pk")
    )


def patient_name(grant: ProxyAccess) -> str:
    """The represented patient's name from the network's index (never clinical content)."""
    return grant.patient.display_name or "Someone whose name is not recorded"


def whose_record_choices(user, *, seeing_only: bool = False) -> list[tuple[str, str]]:
    """The records this person may act on now, as (value, name): their own (OWN_RECORD)
    when their account is linked to one, then each active grant's patient. With
    ``seeing_only``, only grants that let them see the record (what an app needs)."""
    link = getattr(user, "patient_link", None) if hasattr(user, "patient_link") else None
    choices = [(OWN_RECORD, "My own record")] if link is not None else []
    choices += [
        (str(grant.pk), patient_name(grant))
        for grant in active_grants_of(user)
        if grant.may_see or not seeing_only
    ]
    return choices


def review_by_age(*, today: date | None = None) -> int:
    """End access for a child who has reached one of settings.PROXY_REVIEW_AGES (11 and
    16), and tell the practice that gave it and the proxy: at 11 a young person's record
    is reviewed with them; at 16 they decide for themselves. Run daily; safe to repeat."""
    today = today or timezone.localdate()
    ended = 0
    grants = ProxyAccess.objects.filter(
        ended_at__isnull=True, relationship__in=(Relationship.CHILD, Relationship.YOUNG_PERSON)
    ).select_related("patient", "granted_by_organisation", "proxy")
    first, second = settings.PROXY_REVIEW_AGES
    ends_at_age = {Relationship.CHILD: first, Relationship.YOUNG_PERSON: second}
    for grant in grants:
        born = grant.patient.birth_date
        if born is None or age_on(born, today) < ends_at_age[grant.relationship]:
            continue
        with transaction.atomic():
            updated = ProxyAccess.objects.filter(pk=grant.pk, ended_at__isnull=True).update(
                ended_at=timezone.now(), end_reason=f"Reached the age of {age_on(born, today)}: review needed"
            )
            if not updated:
                continue
            audit.record(
                "proxy.end",
                patient_id=grant.patient_id,
                actor_label="The portal, at a review age",
                purpose="direct-care",
                detail={"grant": grant.pk, "age": age_on(born, today)},
            )
            _tell_of_review(grant)
        ended += 1
    return ended


def _tell_of_review(grant: ProxyAccess) -> None:
    notify(
        grant.proxy,
        kind=Notification.Kind.GENERAL,
        title="Your access to act for someone has ended",
        body="The young person you act for has reached an age at which their practice reviews "
        "proxy access with them. Contact the practice if you still need it.",
    )
    if grant.granted_by_organisation_id is None:
        return
    for member in Membership.objects.filter(
        organisation_id=grant.granted_by_organisation_id, user__role=Role.CLINICIAN, user__is_active=True
    ).select_related("user"):
        notify(
            member.user,
            kind=Notification.Kind.GENERAL,
            title="Proxy access to review",
            body="A parent's access to a young person's record has ended at a review age. Decide with "
            "the young person whether to give it again.",
        )
