"""Shared by the accuracy check tests: the smallest Synthea bundle, sent by one holder."""

import copy
import json

import pytest

from phr.ingest import ingest_documents
from phr.models import Patient


@pytest.fixture
def kreiger(samples) -> dict:
    """The smallest Synthea bundle (a man born 2 July 1984, alive), as sent."""
    return json.loads(next((samples / "synthea").glob("Clemente_Kreiger_*.json")).read_text())


def ingest(organisation, bundle) -> Patient:
    """Ingest a copy of the bundle as the organisation's feed; the one patient it makes."""
    result = ingest_documents([("feed", copy.deepcopy(bundle))], organisation=organisation)
    assert result.rejected == 0, result.issues
    return Patient.objects.get()


def resources(bundle, rtype):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]
