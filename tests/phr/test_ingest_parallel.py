"""`ingest --workers N`: validation runs in N processes, and the batch comes out exactly as
it does in one: the same entries, the same rejections with the same issues in the same
order, the same stored text."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from phr import ingest
from phr.ingest import get_or_register_organisation, ingest_documents
from phr.models import RecordEntry


def mixed_bundle(samples, copies: int = 1) -> dict:
    """Synthea's entries with broken, empty and portal-owned ones among them."""
    path = next((samples / "synthea").glob("Clemente_Kreiger_*.json"))
    entries = json.loads(path.read_text())["entry"]
    mixed = []
    for copy in range(copies):
        for index, entry in enumerate(entries):
            resource = dict(entry["resource"])
            if copies > 1:
                resource["id"] = f"{resource.get('id', index)}-{copy}"
            mixed.append({"fullUrl": f"urn:uuid:{copy}-{entry['fullUrl']}", "resource": resource})
            if index % 17 == 5:
                mixed.append({"resource": {"resourceType": "Observation", "status": "guessed", "code": 5}})
            if index % 23 == 7:
                mixed.append({"request": {"method": "DELETE", "url": "Observation/x"}})
            if index % 29 == 3:
                mixed.append({"resource": {"resourceType": "Consent", "status": "active"}})
    return {"resourceType": "Bundle", "type": "collection", "entry": mixed}


def stored(organisation) -> list[tuple]:
    return sorted(
        RecordEntry.objects.filter(owner=organisation).values_list("resource_type", "fhir_id", "json")
    )


@pytest.mark.django_db
def test_two_processes_store_and_refuse_exactly_what_one_does(samples, monkeypatch):
    monkeypatch.setattr(ingest, "PARALLEL_FROM", 1)  # the pool even for this small batch
    bundle = mixed_bundle(samples)
    one = get_or_register_organisation("RP001", "One process")
    two = get_or_register_organisation("RP002", "Two processes")

    alone = ingest_documents([("mixed.json", json.loads(json.dumps(bundle)))], organisation=one)
    shared = ingest_documents([("mixed.json", json.loads(json.dumps(bundle)))], organisation=two, workers=2)

    assert alone.rejected > 5
    assert (shared.accepted, shared.created, shared.rejected) == (
        alone.accepted,
        alone.created,
        alone.rejected,
    )
    assert [i["diagnostics"] for i in shared.as_dict()["issues"]] == [
        i["diagnostics"] for i in alone.as_dict()["issues"]
    ]
    assert stored(one) == stored(two)


@pytest.mark.django_db
def test_a_small_batch_is_validated_in_this_process(samples, monkeypatch):
    """Below PARALLEL_FROM no process is started: a pool that cannot start shows it."""

    def no_pool(*args, **kwargs):
        raise AssertionError("a pool was started for a small batch")

    monkeypatch.setattr(ingest, "ProcessPoolExecutor", no_pool)
    organisation = get_or_register_organisation("RP003", "Small")
    result = ingest_documents([("mixed.json", mixed_bundle(samples))], organisation=organisation, workers=4)
    assert result.accepted > 0


@pytest.mark.django_db
def test_the_command_takes_workers_and_refuses_nonsense(samples, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ingest, "PARALLEL_FROM", 1)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(mixed_bundle(samples)))
    with pytest.raises(SystemExit):  # exit 1: some entries were rejected
        call_command("ingest", str(path), "--org", "RP004", "--org-name", "Cmd", "--workers", "2", "--json")
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["created"] > 0
    for bad in ("0", "33", "-1"):
        with pytest.raises(CommandError, match="--workers must be a number of processes from 1 to 32"):
            call_command("ingest", str(path), "--org", "RP004", "--workers", bad)
