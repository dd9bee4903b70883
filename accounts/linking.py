"""Linking an account to a patient's record, only once the person has proved who they are.

Two ways, as NHS GP online services do it:

- a linkage key: the organisation holding the patient's record prints a letter with an
  account id, a passphrase and its ODS code; the patient enters the three with their
  date of birth. A key is used once, expires, locks after too many wrong tries, and a
  user (or an address) may make only a few wrong tries in a while;
- NHS login: an OpenID Connect identity verified to P9 carries the NHS number.

Every attempt is audited as ``identity.link``; the passphrase never is. The person
trying learns only "these details do not match", never which part was wrong.
"""

import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.utils import timezone

import audit
from audit.models import AuditEvent
from phr.models import Organisation, Patient, RecordEntry

from .models import LinkageKey, Membership, PatientLink, Role, User

LINK_ACTION = "identity.link"
ISSUE_ACTION = "identity.key_issued"

# No 0/O, 1/I/L: the letter is read and typed by people.
UNAMBIGUOUS = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
ACCOUNT_ID_LENGTH = 8
PASSPHRASE_GROUPS = 3  # of four characters: about 59 bits, against 5 tries per key

NO_MATCH = "These details do not match a linkage key. Check them against the letter from your GP practice."
ALREADY_LINKED = "Your account is already linked to a record. It cannot be linked to another one."
NOT_A_PATIENT = "Only a patient's own account can be linked to a record."
NOT_HELD = "Your organisation holds no record for this patient, so it cannot issue their linkage key."
TOO_MANY_TRIES = "You have tried too many times. Wait 15 minutes, then try again."


class LinkingError(Exception):
    """A refusal, with the message to show to the person who asked."""

    def __init__(self, message: str, *, code: str = "refused"):
        super().__init__(message)
        self.message = message
        self.code = code


def normalise(text: str) -> str:
    """Upper case, without the spaces and hyphens people type between groups."""
    return "".join(ch for ch in (text or "").upper() if ch.isalnum())


def _random_text(length: int) -> str:
    return "".join(secrets.choice(UNAMBIGUOUS) for _ in range(length))


def _new_account_id() -> str:
    while True:
        candidate = _random_text(ACCOUNT_ID_LENGTH)
        if not LinkageKey.objects.filter(account_id=candidate).exists():
            return candidate


def _new_passphrase() -> str:
    return "-".join(_random_text(4) for _ in range(PASSPHRASE_GROUPS))


def may_issue_for(user: User, organisation: Organisation) -> bool:
    return (
        user.is_active
        and user.role == Role.CLINICIAN
        and Membership.objects.filter(user=user, organisation=organisation).exists()
    )


@transaction.atomic
def issue_linkage_key(
    *, issued_by: User | None, organisation: Organisation, patient: Patient
) -> tuple[LinkageKey, str]:
    """Issue a key for a patient whose record the organisation holds; only one of that
    organisation's clinicians may (``issued_by=None``: an operator on the server).

    Returns the key and its passphrase, which is shown this once and never stored.
    """
    if issued_by is not None and not may_issue_for(issued_by, organisation):
        raise LinkingError(
            "Only clinicians of an organisation can issue its linkage keys.", code="not_member"
        )
    if not RecordEntry.objects.filter(owner=organisation, patient=patient).exists():
        raise LinkingError(NOT_HELD, code="not_held")
    passphrase = _new_passphrase()
    now = timezone.now()
    key = LinkageKey.objects.create(
        organisation=organisation,
        patient=patient,
        account_id=_new_account_id(),
        passphrase_hash=make_password(normalise(passphrase)),
        issued_by=issued_by,
        issued_at=now,
        expires_at=now + timedelta(days=settings.LINKAGE_KEY_DAYS),
    )
    audit.record(
        ISSUE_ACTION,
        actor=issued_by,
        actor_label=str(issued_by) if issued_by is not None else "manage.py issue_linkage_key",
        organisation=organisation,
        patient=patient,
        detail={"linkage_key": key.pk, "expires_at": key.expires_at.isoformat()},
    )
    return key, passphrase


def _recent_failures(now, **who) -> int:
    since = now - timedelta(minutes=settings.LINKAGE_ATTEMPT_WINDOW_MINUTES)
    return (
        AuditEvent.objects.filter(action=LINK_ACTION, outcome="deny", occurred_at__gte=since, **who)
        .exclude(reason__in=("rate_limited", "already_linked", "not_a_patient"))
        .count()
    )


def _too_many_tries(user: User, source_address: str | None, now) -> bool:
    # The audit trail is the counter: it is shared by every web process and survives
    # restarts, which an in-memory cache would not.
    limit = settings.LINKAGE_ATTEMPTS_PER_WINDOW
    if _recent_failures(now, actor=user) >= limit:
        return True
    # An address may be shared (a practice waiting room, a mobile network): more room.
    return bool(source_address) and _recent_failures(now, source_address=source_address) >= limit * 4


def _audit_link(user, *, outcome: str, reason: str, source_address, patient=None, **detail) -> None:
    audit.record(
        LINK_ACTION,
        actor=user,
        actor_label=str(user)[:200],
        outcome=outcome,
        patient=patient,
        reason=reason,
        source_address=source_address,
        detail=detail,
    )


def _refuse(user, reason: str, message: str, source_address, **detail) -> LinkingError:
    _audit_link(user, outcome="deny", reason=reason, source_address=source_address, **detail)
    return LinkingError(message, code=reason)


def _key_problem(key: LinkageKey | None, *, passphrase, ods_code, date_of_birth, now) -> str | None:
    """Why this key may not be redeemed with these details (None: it may)."""
    if key is None:
        make_password(passphrase)  # the same work as a real check, so time tells nothing
        return "no_match"
    passphrase_ok = check_password(passphrase, key.passphrase_hash)
    if key.locked_at is not None:
        return "locked"
    if key.used_at is not None:
        return "used"
    if key.is_expired(now):
        return "expired"
    details_ok = (
        normalise(ods_code) == normalise(key.organisation.ods_code)
        and key.patient.birth_date is not None
        and date_of_birth == key.patient.birth_date
    )
    return None if passphrase_ok and details_ok else "no_match"


def redeem_linkage_key(
    *,
    user: User,
    account_id: str,
    passphrase: str,
    ods_code: str,
    date_of_birth: date,
    source_address: str | None = None,
) -> PatientLink:
    """Link the user's account to the key's patient when every detail matches a live key.

    Any mismatch gives the same error; wrong details count against the key (it locks at
    LINKAGE_KEY_MAX_ATTEMPTS) and against the user and address. Call it outside any
    transaction that would roll back on error, or the count of wrong tries is lost.
    """
    now = timezone.now()
    if user.role != Role.PATIENT:
        raise _refuse(user, "not_a_patient", NOT_A_PATIENT, source_address)
    if PatientLink.objects.filter(user=user).exists():
        raise _refuse(user, "already_linked", ALREADY_LINKED, source_address)
    if _too_many_tries(user, source_address, now):
        raise _refuse(user, "rate_limited", TOO_MANY_TRIES, source_address)

    with transaction.atomic():
        key = (
            LinkageKey.objects.select_for_update()
            .select_related("organisation", "patient")
            .filter(account_id=normalise(account_id))
            .first()
        )
        problem = _key_problem(
            key, passphrase=normalise(passphrase), ods_code=ods_code, date_of_birth=date_of_birth, now=now
        )
        if problem is None:
            link = PatientLink.objects.create(
                user=user, patient=key.patient, method=PatientLink.Method.LINKAGE_KEY
            )
            key.used_at, key.used_by = now, user
            key.save(update_fields=["used_at", "used_by"])
            _audit_link(
                user,
                outcome="permit",
                reason="linked",
                source_address=source_address,
                patient=key.patient,
                method=PatientLink.Method.LINKAGE_KEY.value,
                linkage_key=key.pk,
            )
            return link
        detail = {"method": PatientLink.Method.LINKAGE_KEY.value}
        if key is not None:
            detail["linkage_key"] = key.pk
            if problem == "no_match":
                key.failed_attempts += 1
                if key.failed_attempts >= settings.LINKAGE_KEY_MAX_ATTEMPTS:
                    key.locked_at = now
                    detail["locked"] = True
                key.save(update_fields=["failed_attempts", "locked_at"])
        _audit_link(user, outcome="deny", reason=problem, source_address=source_address, **detail)
    raise LinkingError(NO_MATCH, code=problem)


# --- NHS login (OpenID Connect) -------------------------------------------------------

NHS_LOGIN_PROOFING_LEVEL = "P9"  # high: identity checked against photo ID and the NHS record


@dataclass(frozen=True)
class NHSLoginMatch:
    patient: Patient | None
    reason: str  # matched, not_p9, no_nhs_number, unknown_patient, birth_date_differs


def patient_for_nhs_login(claims: dict) -> NHSLoginMatch:
    """The patient an NHS login identity proves to be: only at P9, by the NHS number
    claim, and only if the birth date (when both sides have one) agrees."""
    if claims.get("identity_proofing_level") != NHS_LOGIN_PROOFING_LEVEL:
        return NHSLoginMatch(None, "not_p9")
    nhs_number = normalise(str(claims.get("nhs_number") or ""))
    if not nhs_number:
        return NHSLoginMatch(None, "no_nhs_number")
    patient = Patient.objects.filter(nhs_number=nhs_number).first()
    if patient is None:
        return NHSLoginMatch(None, "unknown_patient")
    birthdate = claims.get("birthdate")
    if birthdate and patient.birth_date and str(patient.birth_date) != str(birthdate):
        return NHSLoginMatch(None, "birth_date_differs")
    return NHSLoginMatch(patient, "matched")


def link_from_nhs_login(*, user: User, claims: dict, source_address: str | None = None) -> PatientLink | None:
    """Link a patient's account to their record from a verified NHS login identity, if
    it is not linked already; audited either way. None when the claims prove nothing."""
    if user.role != Role.PATIENT:
        return None
    existing = PatientLink.objects.filter(user=user).first()
    if existing is not None:
        return existing
    match = patient_for_nhs_login(claims)
    method = PatientLink.Method.NHS_LOGIN.value
    if match.patient is None:
        _audit_link(user, outcome="deny", reason=match.reason, source_address=source_address, method=method)
        return None
    with transaction.atomic():
        link = PatientLink.objects.create(user=user, patient=match.patient, method=method)
        _audit_link(
            user,
            outcome="permit",
            reason="linked",
            source_address=source_address,
            patient=match.patient,
            method=method,
        )
    return link
