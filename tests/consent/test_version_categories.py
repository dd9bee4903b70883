"""A version is released by the category it had: an item an owner once labelled sexual
health and later relabelled general keeps its first version from organisations the
patient did not let see sexual health (found by the model-based test's author)."""

import pytest

from consent.models import ConsentChoice, Decision, Scope
from consent.policy import NotFound, actor_for, open_record
from phr.models import Category, RecordEntry
from tests.feeds import patient_resource, send
from tests.personas import ClinicianFactory

pytestmark = pytest.mark.django_db


def condition(label: str | None) -> dict:
    resource = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "code": {"text": "Follow-up"},
    }
    if label:
        resource["meta"] = {"security": [{"code": label}]}
    return resource


@pytest.fixture
def relabelled(gp, hospital):
    send(gp, patient_resource("p1", "9434765919"), condition("SEX"))
    send(gp, patient_resource("p1", "9434765919"), condition(None))
    entry = RecordEntry.objects.get(fhir_id="c1")
    assert (entry.version, entry.category) == (2, Category.GENERAL)
    ConsentChoice.objects.create(
        patient=entry.patient, scope=Scope.CATEGORY, category=Category.SEXUAL_HEALTH, decision=Decision.DENY
    )
    return entry


def test_another_organisation_reads_only_the_versions_of_a_category_it_may_see(relabelled, hospital):
    doctor = ClinicianFactory(organisation=hospital)
    access = open_record(actor_for(doctor), relabelled.patient_id)
    _, versions = access.history(relabelled.pk)
    assert [v.number for v in versions] == [2]
    with pytest.raises(NotFound):
        open_record(actor_for(doctor), relabelled.patient_id).history(relabelled.pk, version=1)


def test_the_owner_and_the_patient_still_read_every_version(relabelled, gp):
    owner = ClinicianFactory(organisation=gp)
    _, versions = open_record(actor_for(owner), relabelled.patient_id).history(relabelled.pk)
    assert [v.number for v in versions] == [1, 2]
