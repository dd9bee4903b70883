"""Behind TRUSTED_PROXIES proxies the client's address comes from their X-Forwarded-For,
and sign-in limits, linkage-key limits and the audit trail all use it: ten failures from
other people no longer lock a patient out, a client cannot choose its own address, and
an audit event names the client rather than the proxy."""

import pytest
from django.test import Client

from audit.models import AuditEvent
from config.middleware import forwarded_client_address
from tests.personas import PASSWORD, PatientUserFactory
from tests.test_settings import run_with

pytestmark = pytest.mark.django_db

SIGN_IN = "/accounts/login/"
LOCKED = "Too many failed login attempts"
PROXY = "10.0.0.2"  # every request reaches the portal from here
PATIENT_HOME = "203.0.113.5"
FORGED = "192.0.2.66"


def through_proxy(forwarded_for: str | None) -> Client:
    """A browser whose requests arrive through the proxy, which sends this header."""
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    return Client(REMOTE_ADDR=PROXY, headers=headers)


def fail_to_sign_in(client: Client, n: int) -> str:
    """A wrong password for a made-up email; the page's text."""
    page = client.post(SIGN_IN, {"login": f"nobody{n}@example.com", "password": "not-the-password"})
    assert page.status_code == 200
    return page.content.decode()


def sign_in(client: Client, user) -> str:
    page = client.post(SIGN_IN, {"login": user.email, "password": PASSWORD})
    assert page.status_code in (200, 302)
    return page.content.decode() if page.status_code == 200 else ""


def signed_in(client: Client, user) -> bool:
    return client.session.get("_auth_user_id") == str(user.pk)


def last_failed_sign_in() -> AuditEvent:
    return AuditEvent.objects.filter(action="auth.login", outcome="deny").order_by("seq").last()


@pytest.fixture
def patient():
    return PatientUserFactory(email="ada@example.com", verified_email=True)


@pytest.fixture
def one_proxy(settings):
    settings.TRUSTED_PROXIES = 1


# --- The setting ----------------------------------------------------------------------


def test_the_setting_is_a_count_read_from_the_environment():
    shown = run_with(
        {"DEBUG": "true", "TRUSTED_PROXIES": "2"},
        "-c",
        "from django.conf import settings as s; print(s.TRUSTED_PROXIES, s.ALLAUTH_TRUSTED_PROXY_COUNT)",
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["2", "0"]


@pytest.mark.parametrize("value", ["one", "-1"])
def test_a_setting_that_is_not_a_count_stops_the_process(value):
    result = run_with({"DEBUG": "true", "TRUSTED_PROXIES": value})
    assert result.returncode != 0
    assert "TRUSTED_PROXIES" in result.stderr


def test_the_client_address_is_worked_out_before_anything_else(settings):
    assert settings.MIDDLEWARE[0] == "config.middleware.ClientAddressMiddleware"


# --- Sign-in limits -------------------------------------------------------------------


def test_ten_failures_from_other_clients_leave_a_patient_able_to_sign_in(one_proxy, patient):
    for n in range(10):
        fail_to_sign_in(through_proxy(f"198.51.100.{n + 1}"), n)

    client = through_proxy(PATIENT_HOME)
    assert LOCKED not in sign_in(client, patient)
    assert signed_in(client, patient)


def test_without_trusted_proxies_those_ten_failures_lock_everyone_out(settings, patient):
    """What the setting fixes: the proxy's address is everyone's, so strangers' failures
    count against the patient."""
    settings.TRUSTED_PROXIES = 0
    for n in range(10):
        fail_to_sign_in(through_proxy(f"198.51.100.{n + 1}"), n)

    client = through_proxy(PATIENT_HOME)
    assert LOCKED in sign_in(client, patient)
    assert not signed_in(client, patient)


def test_ten_failures_from_one_address_still_lock_that_address_only(one_proxy, patient):
    for n in range(10):
        fail_to_sign_in(through_proxy(PATIENT_HOME), n)

    assert LOCKED in fail_to_sign_in(through_proxy(PATIENT_HOME), 10)
    at_home = through_proxy(PATIENT_HOME)
    assert LOCKED in sign_in(at_home, patient)
    assert not signed_in(at_home, patient)
    # The limit is per address: the same patient elsewhere (a phone on mobile data) is in.
    elsewhere = through_proxy("198.51.100.200")
    sign_in(elsewhere, patient)
    assert signed_in(elsewhere, patient)


def test_a_client_cannot_escape_the_limit_by_writing_its_own_header(one_proxy):
    """The proxy appends the real address on the right; what the client put on the left
    changes nothing."""
    for n in range(10):
        fail_to_sign_in(through_proxy(f"192.0.2.{n + 1}, {PATIENT_HOME}"), n)

    assert LOCKED in fail_to_sign_in(through_proxy(f"192.0.2.99, {PATIENT_HOME}"), 10)


def test_with_no_trusted_proxy_a_forged_header_is_ignored(settings):
    settings.TRUSTED_PROXIES = 0
    for n in range(10):
        fail_to_sign_in(Client(REMOTE_ADDR=PATIENT_HOME, headers={"X-Forwarded-For": f"192.0.2.{n + 1}"}), n)

    forged = Client(REMOTE_ADDR=PATIENT_HOME, headers={"X-Forwarded-For": FORGED})
    assert LOCKED in fail_to_sign_in(forged, 10)
    assert last_failed_sign_in().source_address == PATIENT_HOME


# --- Which address is used ------------------------------------------------------------


def test_a_failed_sign_in_is_audited_with_the_clients_address(one_proxy):
    fail_to_sign_in(through_proxy(PATIENT_HOME), 0)
    assert last_failed_sign_in().source_address == PATIENT_HOME


def test_an_entry_the_client_added_on_the_left_is_not_the_address(one_proxy):
    fail_to_sign_in(through_proxy(f"{FORGED}, {PATIENT_HOME}"), 0)
    assert last_failed_sign_in().source_address == PATIENT_HOME


def test_a_header_shorter_than_the_proxies_keeps_the_connections_address(settings):
    settings.TRUSTED_PROXIES = 2
    fail_to_sign_in(through_proxy(PATIENT_HOME), 0)
    assert last_failed_sign_in().source_address == PROXY


def test_no_header_keeps_the_connections_address(one_proxy):
    fail_to_sign_in(through_proxy(None), 0)
    assert last_failed_sign_in().source_address == PROXY


def test_an_entry_that_is_not_an_address_keeps_the_connections_address(one_proxy):
    fail_to_sign_in(through_proxy("198.51.100.1, not-an-address"), 0)
    assert last_failed_sign_in().source_address == PROXY


@pytest.mark.parametrize(
    ("header", "proxies", "address"),
    [
        ("198.51.100.1", 0, None),
        ("198.51.100.1", 1, "198.51.100.1"),
        (" 192.0.2.66 , 198.51.100.1 ", 1, "198.51.100.1"),
        ("192.0.2.66, 198.51.100.1, 10.0.0.9", 2, "198.51.100.1"),
        ("198.51.100.1", 2, None),
        ("", 1, None),
        ("198.51.100.1,", 1, None),
        ("198.51.100.1:4711", 1, "198.51.100.1"),  # a proxy that writes the port
        ("[2001:db8::1]:4711", 1, "2001:db8::1"),
        ("2001:DB8:0:0::1", 1, "2001:db8::1"),
        ("::ffff:198.51.100.1", 1, "198.51.100.1"),  # one client, one count
        ("fe80::1%eth0", 1, None),  # an interface of the proxy's: not a client, not storable
        ("fe80::1%" + "x" * 300, 1, None),
        ("[2001:db8::1", 1, None),
    ],
)
def test_the_client_is_the_nth_entry_from_the_right(header, proxies, address):
    assert forwarded_client_address({"HTTP_X_FORWARDED_FOR": header}, proxies) == address


def test_a_zoned_ipv6_entry_fails_the_sign_in_cleanly_not_with_a_500(one_proxy):
    """The database cannot store an IPv6 zone: such an entry is not believed."""
    fail_to_sign_in(through_proxy("fe80::1%" + "x" * 300), 0)
    assert last_failed_sign_in().source_address == PROXY


def test_a_record_read_is_audited_with_the_clients_address(one_proxy, patient):
    client = through_proxy(PATIENT_HOME)
    client.force_login(patient)
    assert client.get("/record/").status_code == 200

    read = AuditEvent.objects.filter(actor=patient, action__startswith="record.").order_by("seq").last()
    assert read is not None
    assert read.source_address == PATIENT_HOME


def test_a_linkage_key_attempt_is_audited_with_the_clients_address(one_proxy):
    unlinked = PatientUserFactory(patient=None)
    client = through_proxy(PATIENT_HOME)
    client.force_login(unlinked)
    details = {
        "account_id": "ABCD-2345",
        "passphrase": "K7PQ-M3XD-9HTW",
        "ods_code": "A12345",
        "dob_day": "15",
        "dob_month": "3",
        "dob_year": "1984",
    }
    assert client.post("/link/", details).status_code == 200

    attempt = AuditEvent.objects.get(action="identity.link", actor=unlinked)
    assert (attempt.outcome, attempt.source_address) == ("deny", PATIENT_HOME)
