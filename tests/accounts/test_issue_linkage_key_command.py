"""python manage.py issue_linkage_key prints the letter's details, and refuses an unknown
organisation or patient, or a patient the organisation does not hold."""

from io import StringIO

import pytest
from account_people import ADA_BORN, ADA_NHS_NUMBER
from django.core.management import CommandError, call_command

from accounts.linking import redeem_linkage_key
from accounts.models import LinkageKey

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("issue_linkage_key", *args, stdout=out)
    return out.getvalue()


def test_it_prints_the_letter_and_the_key_works(gp, ada, ben, dr_bell):
    out = run("--org", "a10001", "--nhs-number", "943 476 5919", "--issued-by", dr_bell.email)
    lines = dict(line.split(":", 1) for line in out.strip().splitlines())
    key = LinkageKey.objects.get()
    assert lines["Account ID"].strip() == key.formatted_account_id
    assert lines["ODS code"].strip() == "A10001"
    assert str(key.expires_at.year) in lines["Expires"]
    assert key.issued_by == dr_bell
    redeem_linkage_key(
        user=ben,
        account_id=lines["Account ID"],
        passphrase=lines["Passphrase"],
        ods_code=lines["ODS code"],
        date_of_birth=ADA_BORN,
    )
    assert ben.patient_link.patient == ada


def test_without_an_issuer_it_is_issued_by_the_operator(gp, ada):
    run("--org", "A10001", "--nhs-number", ADA_NHS_NUMBER)
    assert LinkageKey.objects.get().issued_by is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--org", "ZZZ99", "--nhs-number", ADA_NHS_NUMBER), "No member organisation has the ODS code"),
        (("--org", "A10001", "--nhs-number", "9000000009"), "No patient has that NHS number"),
        (("--org", "RX100", "--nhs-number", ADA_NHS_NUMBER), "holds no record for this patient"),
        (
            ("--org", "A10001", "--nhs-number", ADA_NHS_NUMBER, "--issued-by", "nobody@example.com"),
            "No user has the email address",
        ),
    ],
)
def test_it_refuses(gp, hospital, ada, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not LinkageKey.objects.exists()


def test_it_refuses_an_issuer_from_another_organisation(gp, ada, dr_chen):
    with pytest.raises(CommandError, match="Only clinicians of an organisation"):
        run("--org", "A10001", "--nhs-number", ADA_NHS_NUMBER, "--issued-by", dr_chen.email)
