"""What a share-link viewer reads: the patient's statement of disagreement is named as the
patient's (the viewer is not the patient), in the record's own words and dates."""

import pytest

from accuracy import services
from consent.policy import actor_for
from tests.share import test_share_links as base
from tests.share.test_share_links import make, unlock, url

pytestmark = pytest.mark.django_db
ada, ada_user = base.ada, base.ada_user  # the same record as the other share-link tests


def disagree(ada, ada_user, doctor):
    entry = ada.entries.get(display="Hypertensive disorder")
    patient, clinician = actor_for(ada_user), actor_for(doctor)
    request = services.submit_correction(
        actor=patient,
        entry_id=entry.pk,
        element="",
        proposed="I have never had high blood pressure",
        reason="My readings have always been normal",
        contact_preference="portal",
    )
    request = services.start_review(actor=clinician, request_id=request.pk, revision=request.revision)
    request = services.deny(
        actor=clinician,
        request_id=request.pk,
        revision=request.revision,
        code="accurate",
        text="Three readings in 2024 were high.",
    )
    services.log_disagreement(
        actor=patient,
        request_id=request.pk,
        revision=request.revision,
        text="The readings were taken wrongly.",
    )


def test_a_viewer_reads_the_patients_statement_not_yours(client, ada, ada_user, gp, dr_gp):
    assert ada.entries.get(display="Hypertensive disorder").owner == gp
    disagree(ada, ada_user, dr_gp)
    created = make(ada_user, scope="full")
    unlock(client, created)
    page = client.get(url(created)).content.decode()
    assert "The patient's statement of disagreement:</strong> The readings were taken wrongly." in page
    assert "Your statement of disagreement" not in page
