"""A test repeated over time: the same code in the same unit makes a series, drawn as a
chart with its normal range as a band, and listed newest first."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accuracy.result_series import series_for
from phr.models import RecordEntry
from phr.render.chart import Point, draw
from tests.feeds import patient_resource, send

LOINC = "http://loinc.org"


def potassium(oid: str, when: str, value, unit="mmol/L", code="6298-4") -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": LOINC, "code": code, "display": "Potassium"}]},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit},
        "referenceRange": [{"low": {"value": 3.5, "unit": unit}, "high": {"value": 5.3, "unit": unit}}],
    }


@pytest.fixture
def results(gp):
    send(
        gp,
        patient_resource("p1", "9434765919"),
        potassium("k1", "2024-01-10", 4.1),
        potassium("k2", "2024-06-02", 5.9),
        potassium("k3", "2025-02-20", 4.4),
        potassium("other-unit", "2025-03-01", 16, unit="mg/dL"),
        potassium("sodium", "2025-03-01", 140, code="2951-2"),
    )
    return {e.fhir_id: e for e in RecordEntry.objects.filter(resource_type="Observation")}


def test_the_same_test_in_the_same_unit_is_one_series_newest_first(results):
    series = series_for(results["k2"], results.values())
    assert [row.when for row in series.rows] == ["20 February 2025", "2 June 2024", "10 January 2024"]
    assert [row.value for row in series.rows] == ["4.4", "5.9", "4.1"]
    assert (series.low, series.high, series.unit) == ("3.5", "5.3", "mmol/L")
    assert series.chart is not None
    assert len(series.chart.dots) == 3


def test_a_result_alone_or_not_a_number_has_no_series(results):
    assert series_for(results["sodium"], results.values()) is None
    assert series_for(results["other-unit"], results.values()) is None


def test_the_chart_puts_the_newest_on_the_right_and_the_range_as_a_band():
    chart = draw(
        [
            Point(datetime(2024, 1, 1, tzinfo=UTC), Decimal("4")),
            Point(datetime(2025, 1, 1, tzinfo=UTC), Decimal("6")),
        ],
        low=Decimal("3.5"),
        high=Decimal("5.3"),
    )
    (x1, y1), (x2, y2) = chart.dots
    assert x1 < x2  # later is further right
    assert y2 < y1  # higher is further up
    _x, y, width, height = chart.band
    assert width > 0
    assert height > 0
    assert y < y1 < y + height  # 4 is inside the range's band
    assert chart.x_labels[0][1] == "1 January 2024"
    assert draw([Point(datetime(2024, 1, 1, tzinfo=UTC), Decimal("4"))]) is None


def test_a_results_page_shows_the_chart_and_the_table_beside_it(client, results):
    from tests.personas import PatientUserFactory

    client.force_login(PatientUserFactory(patient=results["k1"].patient))
    html = client.get(f"/record/items/{results['k2'].pk}/").content.decode()
    assert "This result over time" in html
    assert '<svg viewBox="0 0 320 160"' in html
    assert 'role="img"' in html
    assert "The shaded band is the normal range (3.5 to 5.3)" in html
    assert "<strong>2 June 2024 (this result)</strong>" in html
    assert f'href="/record/items/{results["k1"].pk}/"' in html
    sodium = client.get(f"/record/items/{results['sodium'].pk}/").content.decode()
    assert "This result over time" not in sodium
