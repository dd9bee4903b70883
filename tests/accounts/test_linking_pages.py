"""The pages around linking: a patient enters the letter's details at /link/, a clinician
issues a key at /linkage-keys/, and the home page invites an unlinked patient to link."""

from datetime import timedelta

import pytest
from account_people import ADA_BORN, ADA_NHS_NUMBER
from django.urls import reverse

from accounts.access import ACTING_FOR_SESSION_KEY
from accounts.linking import NO_MATCH, issue_linkage_key
from accounts.models import LinkageKey, Membership, PatientLink
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

LINK_URL = "/link/"
ISSUE_URL = "/linkage-keys/"


def letter_form(key, passphrase, **changes):
    form = {
        "account_id": key.formatted_account_id,
        "passphrase": passphrase,
        "ods_code": key.organisation.ods_code,
        "dob_day": str(ADA_BORN.day),
        "dob_month": str(ADA_BORN.month),
        "dob_year": str(ADA_BORN.year),
    }
    form.update(changes)
    return form


@pytest.fixture
def issued(dr_bell, gp, ada):
    return issue_linkage_key(issued_by=dr_bell, organisation=gp, patient=ada)


def test_the_urls_are_named():
    assert reverse("portal:link_record") == LINK_URL
    assert reverse("portal:issue_linkage_key") == ISSUE_URL


def test_the_link_page_asks_anonymous_visitors_to_sign_in(client):
    response = client.get(LINK_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_link_page_shows_the_form_with_a_date_input(client, ben):
    client.force_login(ben)
    page = client.get(LINK_URL).content.decode()
    for name in ("account_id", "passphrase", "ods_code", "dob_day", "dob_month", "dob_year"):
        assert f'name="{name}"' in page
    assert "nhsuk-date-input" in page
    assert 'autocomplete="bday-year"' in page


def test_the_right_details_link_and_land_on_home_with_a_message(client, ben, issued, ada):
    key, passphrase = issued
    client.force_login(ben)
    response = client.post(LINK_URL, letter_form(key, passphrase), follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert "Your account is now linked to your record." in response.content.decode()
    assert PatientLink.objects.get(user=ben).patient == ada
    assert AuditEvent.objects.get(action="identity.link").source_address == "127.0.0.1"


def test_wrong_details_show_the_generic_error_in_the_summary(client, ben, issued):
    key, passphrase = issued
    client.force_login(ben)
    response = client.post(LINK_URL, letter_form(key, "WRNG-WRNG-WRNG"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "nhsuk-error-summary" in page
    assert NO_MATCH in page
    assert "<title>Error:" in page
    assert passphrase not in page
    assert not PatientLink.objects.filter(user=ben).exists()


@pytest.mark.parametrize(
    ("dob", "message"),
    [
        (("", "", ""), "Enter your date of birth"),
        (("31", "2", "1984"), "Date of birth must be a real date"),
        (("1", "1", "84"), "Date of birth must be a real date"),
        (("1", "1", "2999"), "Date of birth must be in the past"),
    ],
)
def test_a_date_of_birth_that_is_not_a_date_is_explained(client, ben, issued, dob, message):
    key, passphrase = issued
    client.force_login(ben)
    form = letter_form(key, passphrase, dob_day=dob[0], dob_month=dob[1], dob_year=dob[2])
    page = client.post(LINK_URL, form).content.decode()
    assert message in page
    assert 'href="#id_dob_day"' in page
    assert "nhsuk-input--error" in page
    # A form that does not parse is no attempt at a key: nothing is counted or audited.
    assert LinkageKey.objects.get().failed_attempts == 0


def test_an_empty_form_names_each_missing_detail(client, ben):
    client.force_login(ben)
    page = client.post(LINK_URL, {}).content.decode()
    for message in ("Enter the account ID", "Enter the passphrase", "Enter the practice ODS code"):
        assert message in page


def test_a_linked_patient_sees_their_linked_state(client, ben, issued):
    key, passphrase = issued
    client.force_login(ben)
    client.post(LINK_URL, letter_form(key, passphrase))
    page = client.get(LINK_URL).content.decode()
    assert "Your account is linked to your record" in page
    assert "Ada Okafor" in page
    assert 'name="passphrase"' not in page


def test_staff_have_no_link_page(client, dr_bell):
    client.force_login(dr_bell)
    assert client.get(LINK_URL).status_code == 404


def test_the_home_page_invites_an_unlinked_patient_to_link(client, ben, issued):
    client.force_login(ben)
    assert 'href="/link/"' in client.get("/").content.decode()
    key, passphrase = issued
    client.post(LINK_URL, letter_form(key, passphrase))
    assert 'href="/link/"' not in client.get("/").content.decode()


def test_the_home_page_offers_two_factor_authentication(client, ben):
    client.force_login(ben)
    assert 'href="/accounts/2fa/"' in client.get("/").content.decode()


# --- The clinician's page ------------------------------------------------------------


def test_a_clinician_without_two_factor_is_sent_to_enrol(client, dr_bell):
    client.force_login(dr_bell)
    response = client.get(ISSUE_URL)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")


@pytest.mark.parametrize("who", ["ben", "ig"])
def test_the_issue_page_does_not_exist_for_others(client, ben, with_totp, who, django_user_model):
    user = (
        ben
        if who == "ben"
        else django_user_model.objects.create_user("ig@x.example", "pw", role="ig_officer")
    )
    with_totp(user)
    client.force_login(user)
    assert client.get(ISSUE_URL).status_code == 404


def test_a_clinician_issues_a_key_and_sees_the_letter_once(client, dr_bell, with_totp, ada, gp):
    client.force_login(with_totp(dr_bell))
    assert client.get(ISSUE_URL).status_code == 200
    response = client.post(ISSUE_URL, {"nhs_number": "943 476 5919"})
    page = response.content.decode()
    key = LinkageKey.objects.get()
    assert response.status_code == 200
    assert key.patient == ada
    assert key.organisation == gp
    assert key.issued_by == dr_bell
    assert key.formatted_account_id in page
    assert gp.ods_code in page
    assert "/static/portal/print-letter.css" in page  # its @media print rules
    assert "no-store" in response["Cache-Control"]
    # The passphrase shown is the one the hash was made from, and it is never stored.
    passphrase = page.split('data-testid="passphrase">')[1].split("<")[0]
    assert key.passphrase_hash != passphrase
    from django.contrib.auth.hashers import check_password

    assert check_password(passphrase.replace("-", ""), key.passphrase_hash)


def test_the_nhs_number_is_never_in_a_url(client, dr_bell, with_totp, ada):
    client.force_login(with_totp(dr_bell))
    response = client.post(ISSUE_URL, {"nhs_number": ADA_NHS_NUMBER})
    assert response.status_code == 200
    assert ADA_NHS_NUMBER not in response.request["PATH_INFO"] + response.request.get("QUERY_STRING", "")


@pytest.mark.parametrize("number", ["9434765918", "943476591", "not a number"])
def test_an_invalid_nhs_number_is_explained(client, dr_bell, with_totp, number):
    client.force_login(with_totp(dr_bell))
    page = client.post(ISSUE_URL, {"nhs_number": number}).content.decode()
    assert "Enter a valid NHS number of 10 digits" in page
    assert not LinkageKey.objects.exists()


def test_an_unknown_patient_and_one_the_organisation_does_not_hold_read_alike(
    client, dr_chen, with_totp, ada
):
    client.force_login(with_totp(dr_chen))
    not_held = client.post(ISSUE_URL, {"nhs_number": ADA_NHS_NUMBER}).content.decode()
    unknown = client.post(ISSUE_URL, {"nhs_number": "9000000009"}).content.decode()
    assert "holds no record for this patient" in not_held
    assert "holds no record for this patient" in unknown
    assert not LinkageKey.objects.exists()


def test_the_key_is_issued_for_the_organisation_the_clinician_acts_for(
    client, dr_chen, with_totp, ada, gp, hospital
):
    Membership.objects.create(user=dr_chen, organisation=gp)
    client.force_login(with_totp(dr_chen))
    session = client.session
    session[ACTING_FOR_SESSION_KEY] = gp.pk
    session.save()
    client.post(ISSUE_URL, {"nhs_number": ADA_NHS_NUMBER})
    assert LinkageKey.objects.get().organisation == gp


def test_a_key_issued_on_the_page_links_a_patient(client, dr_bell, with_totp, ben, ada):
    client.force_login(with_totp(dr_bell))
    page = client.post(ISSUE_URL, {"nhs_number": ADA_NHS_NUMBER}).content.decode()
    key = LinkageKey.objects.get()
    passphrase = page.split('data-testid="passphrase">')[1].split("<")[0]
    client.force_login(ben)
    client.post(LINK_URL, letter_form(key, passphrase))
    assert PatientLink.objects.get(user=ben).patient == ada
    key.refresh_from_db()
    assert key.used_at is not None
    assert key.expires_at - key.issued_at == timedelta(days=28)
