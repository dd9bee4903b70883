"""Issuing and redeeming linkage keys: only the holding organisation's clinicians issue;
only the exact details of a live key link; every refusal reads the same; every attempt
is audited, and never with the passphrase."""

import contextlib
import json
from datetime import date, timedelta

import pytest
import time_machine
from account_people import ADA_BORN
from django.utils import timezone

from accounts.linking import (
    ALREADY_LINKED,
    NO_MATCH,
    TOO_MANY_TRIES,
    LinkingError,
    issue_linkage_key,
    normalise,
    redeem_linkage_key,
)
from accounts.models import LinkageKey, PatientLink, User
from audit.models import AuditEvent
from consent.policy import NotFound, actor_for, open_record
from tests.personas import PatientUserFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(dr_bell, gp, ada):
    return issue_linkage_key(issued_by=dr_bell, organisation=gp, patient=ada)


def redeem(user, key, passphrase, **changes):
    details = {
        "account_id": key.account_id,
        "passphrase": passphrase,
        "ods_code": key.organisation.ods_code,
        "date_of_birth": ADA_BORN,
        "source_address": "192.0.2.10",
    }
    details.update(changes)
    return redeem_linkage_key(user=user, **details)


def link_events():
    return list(AuditEvent.objects.filter(action="identity.link").order_by("seq"))


# --- Issuing ----------------------------------------------------------------------------


def test_a_clinician_of_the_holding_organisation_issues_a_key(issued, dr_bell, gp, ada):
    key, passphrase = issued
    assert key.organisation == gp
    assert key.patient == ada
    assert key.issued_by == dr_bell
    assert len(key.account_id) == 8
    assert key.expires_at - key.issued_at == timedelta(days=28)
    assert passphrase not in key.passphrase_hash
    event = AuditEvent.objects.get(action="identity.key_issued")
    assert event.actor == dr_bell
    assert event.patient == ada
    assert event.organisation == gp
    assert passphrase not in json.dumps(event.detail)


def test_the_key_lasts_as_long_as_the_setting_says(settings, dr_bell, gp, ada):
    settings.LINKAGE_KEY_DAYS = 7
    key, _ = issue_linkage_key(issued_by=dr_bell, organisation=gp, patient=ada)
    assert key.expires_at - key.issued_at == timedelta(days=7)


def test_a_clinician_of_another_organisation_cannot_issue_for_it(dr_chen, gp, ada):
    with pytest.raises(LinkingError):
        issue_linkage_key(issued_by=dr_chen, organisation=gp, patient=ada)
    assert not LinkageKey.objects.exists()


def test_an_organisation_that_holds_no_record_of_the_patient_cannot_issue(dr_chen, hospital, ada):
    with pytest.raises(LinkingError) as refusal:
        issue_linkage_key(issued_by=dr_chen, organisation=hospital, patient=ada)
    assert refusal.value.code == "not_held"
    assert not LinkageKey.objects.exists()


@pytest.mark.parametrize("role", ["patient", "ig_officer"])
def test_only_clinicians_issue_even_with_a_membership(role, gp, ada):
    user = UserFactory(email=f"{role}@example.com", role=role, organisation=gp)
    with pytest.raises(LinkingError):
        issue_linkage_key(issued_by=user, organisation=gp, patient=ada)


def test_account_ids_are_unique_and_unambiguous(dr_bell, gp, ada):
    ids = {
        issue_linkage_key(issued_by=dr_bell, organisation=gp, patient=ada)[0].account_id for _ in range(20)
    }
    assert len(ids) == 20
    assert not set("".join(ids)) & set("01OIL")


# --- Redeeming --------------------------------------------------------------------------


def test_the_right_details_link_the_account_and_use_the_key(issued, ben, ada):
    key, passphrase = issued
    link = redeem(ben, key, passphrase)
    assert link.user == ben
    assert link.patient == ada
    assert link.method == PatientLink.Method.LINKAGE_KEY
    key.refresh_from_db()
    assert key.used_at is not None
    assert key.used_by == ben
    [event] = link_events()
    assert (event.outcome, event.reason, event.patient, event.actor) == ("permit", "linked", ada, ben)
    assert event.source_address == "192.0.2.10"


def test_once_linked_the_patient_reads_their_own_record(issued, ben, ada):
    with pytest.raises(NotFound):
        open_record(actor_for(ben), ada.pk)
    key, passphrase = issued
    redeem(ben, key, passphrase)
    ben = User.objects.get(pk=ben.pk)
    assert open_record(actor_for(ben), ada.pk).read()


def test_the_details_may_be_typed_loosely(issued, ben):
    key, passphrase = issued
    spaced = key.formatted_account_id.lower()
    redeem(ben, key, passphrase.lower().replace("-", " "), account_id=spaced, ods_code=" a10001 ")
    assert PatientLink.objects.filter(user=ben).exists()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"passphrase": "WRNG-WRNG-WRNG"}, id="wrong-passphrase"),
        pytest.param({"ods_code": "RX100"}, id="wrong-ods-code"),
        pytest.param({"date_of_birth": date(1984, 3, 16)}, id="wrong-date-of-birth"),
        pytest.param({"account_id": "ZZZZZZZZ"}, id="unknown-account-id"),
    ],
)
def test_any_wrong_detail_gives_the_one_generic_error(issued, ben, change):
    key, passphrase = issued
    change = dict(change)
    with pytest.raises(LinkingError) as refusal:
        redeem(ben, key, change.pop("passphrase", passphrase), **change)
    assert refusal.value.message == NO_MATCH
    assert not PatientLink.objects.filter(user=ben).exists()
    [event] = link_events()
    assert (event.outcome, event.reason, event.patient) == ("deny", "no_match", None)


def test_an_expired_key_gives_the_same_error(issued, ben):
    key, passphrase = issued
    with time_machine.travel(key.expires_at + timedelta(seconds=1)), pytest.raises(LinkingError) as refusal:
        redeem(ben, key, passphrase)
    assert refusal.value.message == NO_MATCH
    assert link_events()[-1].reason == "expired"


def test_a_key_is_used_once(issued, ben, db):
    key, passphrase = issued
    redeem(ben, key, passphrase)
    carol = PatientUserFactory(email="carol@example.com", patient=None)
    with pytest.raises(LinkingError) as refusal:
        redeem(carol, key, passphrase)
    assert refusal.value.message == NO_MATCH
    assert link_events()[-1].reason == "used"
    assert not PatientLink.objects.filter(user=carol).exists()


def test_five_wrong_tries_lock_the_key_even_against_the_right_details(issued, ben, db):
    key, passphrase = issued
    # Spread over several accounts, so that only the key's own count can stop them.
    for n in range(5):
        guesser = PatientUserFactory(email=f"guesser{n}@example.com", patient=None)
        with pytest.raises(LinkingError):
            redeem(guesser, key, "WRNG-WRNG-WRNG", source_address=f"192.0.2.{n}")
    key.refresh_from_db()
    assert key.failed_attempts == 5
    assert key.locked_at is not None
    with pytest.raises(LinkingError) as refusal:
        redeem(ben, key, passphrase)
    assert refusal.value.message == NO_MATCH
    assert link_events()[-1].reason == "locked"
    assert not PatientLink.objects.filter(user=ben).exists()


def test_a_user_who_keeps_getting_it_wrong_is_made_to_wait(issued, ben, dr_bell, gp, ada):
    key, passphrase = issued
    for _ in range(5):
        with pytest.raises(LinkingError):
            redeem(ben, key, passphrase, account_id="ZZZZZZZZ")
    with pytest.raises(LinkingError) as refusal:
        redeem(ben, key, passphrase)
    assert refusal.value.message == TOO_MANY_TRIES
    assert link_events()[-1].reason == "rate_limited"
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        redeem(ben, key, passphrase)
    assert PatientLink.objects.filter(user=ben).exists()


def test_an_address_that_keeps_getting_it_wrong_is_made_to_wait(issued, ben, db):
    key, passphrase = issued
    for n in range(20):
        user = PatientUserFactory(email=f"p{n}@example.com", patient=None)
        with pytest.raises(LinkingError):
            redeem(user, key, passphrase, account_id="ZZZZZZZZ")
    with pytest.raises(LinkingError) as refusal:
        redeem(ben, key, passphrase)
    assert refusal.value.message == TOO_MANY_TRIES
    # Another address is not held up.
    redeem(ben, key, passphrase, source_address="198.51.100.7")


def test_an_account_already_linked_cannot_link_again(issued, ben, dr_bell, gp, ada):
    key, passphrase = issued
    redeem(ben, key, passphrase)
    second, second_passphrase = issue_linkage_key(issued_by=dr_bell, organisation=gp, patient=ada)
    with pytest.raises(LinkingError) as refusal:
        redeem(ben, second, second_passphrase)
    assert refusal.value.message == ALREADY_LINKED
    second.refresh_from_db()
    assert second.used_at is None


def test_a_staff_account_cannot_be_linked(issued, dr_chen):
    key, passphrase = issued
    with pytest.raises(LinkingError):
        redeem(dr_chen, key, passphrase)
    assert not PatientLink.objects.exists()


def test_a_patient_without_a_recorded_birth_date_cannot_be_matched(issued, ben, ada):
    key, passphrase = issued
    ada.birth_date = None
    ada.save()
    with pytest.raises(LinkingError):
        redeem(ben, key, passphrase)


def test_no_audit_event_ever_holds_the_passphrase(issued, ben):
    key, passphrase = issued
    for attempt in (passphrase[:-1] + "X", passphrase):
        with contextlib.suppress(LinkingError):
            redeem(ben, key, attempt)
    events = AuditEvent.objects.filter(action__startswith="identity.")
    assert events.count() == 3
    for event in events:
        for form in (passphrase, normalise(passphrase), passphrase[:-1] + "X"):
            assert form not in json.dumps(event.detail) + event.reason + event.actor_label
