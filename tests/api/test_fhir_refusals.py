"""Refusals through FHIR: every refused read is written for the actor (so that IG sees
probing) without reaching another patient's log, and a refused patient cannot be told
from a number nobody holds by the work the server does."""

import json
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.db.models import Max
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from consent import access_log, ig_queries
from consent.models import ConsentChoice, Decision, Scope
from phr.models import RecordEntry
from phr.nhs_number import check_digit
from tests.api.test_fhir_api import ADA_NHS, BEN_NHS, _token
from tests.api.test_fhir_api import net as net  # the shared network, found by name
from tests.feeds import NHS

FORM = "application/x-www-form-urlencoded"


def test_a_patients_refused_reads_by_id_are_written_for_them_and_not_in_the_other_log(client, net):
    headers = _token(net, "patient/*.read")
    ada, ben = net["people"]["ada"], net["people"]["ben"]
    bens = RecordEntry.objects.filter(patient=net["ben"], resource_type="Condition")
    urls = ["/fhir/Condition/b1", "/fhir/Condition/b1/_history/1"] + [f"/fhir/Condition/{e.pk}" for e in bens]
    before = AuditEvent.objects.aggregate(last=Max("seq"))["last"] or 0  # numbers run on across tests

    answers = [client.get(urls[i % len(urls)], **headers) for i in range(10)]

    assert {a.status_code for a in answers} == {404}
    assert len({a.content for a in answers}) == 1
    refused = AuditEvent.objects.filter(seq__gt=before, actor=ada, outcome="deny")
    assert refused.count() == 10
    assert set(refused.values_list("action", flat=True)) == {"record.read"}
    assert not refused.filter(patient__isnull=False).exists()
    assert {e.detail["type"] for e in refused} == {"Condition"}
    assert AuditEvent.objects.filter(seq__gt=before).count() == 10
    assert not AuditEvent.objects.filter(patient=net["ben"]).exists()
    assert not access_log.looks(net["ben"], viewer=ben, filters=access_log.LogFilters()).exists()
    (probing,) = [row for row in ig_queries.denied_reads() if row.actor_id == ada.pk]
    assert probing.denied == 10


def test_a_patients_own_read_by_id_is_still_a_single_permitted_event(client, net):
    headers = _token(net, "patient/*.read")
    before = AuditEvent.objects.aggregate(last=Max("seq"))["last"] or 0  # numbers run on across tests
    assert client.get("/fhir/Condition/c1", **headers).status_code == 200
    (event,) = AuditEvent.objects.filter(seq__gt=before)
    assert (event.outcome, event.patient_id) == ("permit", net["ada"].pk)


def unused_nhs_number() -> str:
    for n in range(999000001, 999999999):
        digit = check_digit(str(n))
        candidate = f"{n}{digit}"
        if digit is not None and candidate not in (ADA_NHS, BEN_NHS):
            return candidate
    raise AssertionError("no NHS number left")


@pytest.mark.parametrize("model", ["opt-out", "opt-in"])
def test_a_patient_who_refused_a_system_and_an_unused_number_cost_the_same_work(client, net, settings, model):
    settings.CONSENT_MODEL = model
    # Ben refuses sharing across the network; the GP practice's system holds nothing of his.
    ConsentChoice.objects.create(patient=net["ben"], scope=Scope.NETWORK, decision=Decision.DENY)
    headers = _token(net, "system/*.read", system=True)

    def search(nhs_number: str) -> tuple[dict, int, AuditEvent]:
        with CaptureQueriesContext(connection) as queries:
            response = client.post(
                "/fhir/Patient/_search",
                data=urlencode({"identifier": f"{NHS}|{nhs_number}"}),
                content_type=FORM,
                **headers,
            )
        assert response.status_code == 200
        body = json.loads(response.content)
        del body["id"], body["timestamp"]
        return body, len(queries), AuditEvent.objects.order_by("-seq").first()

    search(unused_nhs_number())  # the token's first use may do work of its own
    refused = search(BEN_NHS)
    unused = search(unused_nhs_number())
    refused_again = search(BEN_NHS)

    assert refused[0] == unused[0] == refused_again[0]
    assert refused[1] == unused[1] == refused_again[1]
    shape = [(e.action, e.outcome, e.actor_label, e.organisation_id) for _, _, e in (refused, unused)]
    assert shape[0] == shape[1] == ("record.search", "deny", shape[0][2], net["gp"].pk)
