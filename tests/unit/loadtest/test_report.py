"""The load run's arithmetic and reports: profiles, percentiles, series, seq accounting."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fleetpipe_loadtest.fleet import Fleet
from fleetpipe_loadtest.report import (
    LoadReport,
    Sample,
    Step,
    account,
    latency_series,
    parse_profile,
    percentiles,
    rates,
)

pytestmark = pytest.mark.unit


def test_a_profile_is_vehicles_and_seconds_steps_in_order() -> None:
    assert parse_profile("50000:60, 100000:60,50000:30.5") == [
        Step(50000, 60.0),
        Step(100000, 60.0),
        Step(50000, 30.5),
    ]


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param("5000", id="no-seconds"),
        pytest.param("a:60", id="not-a-number"),
        pytest.param("0:60", id="no-vehicles"),
        pytest.param("10:0", id="no-time"),
        pytest.param("1000000:60", id="too-many-vehicles"),
    ],
)
def test_a_bad_profile_step_is_refused_with_the_step_named(spec: str) -> None:
    with pytest.raises(ValueError, match="profile step"):
        parse_profile(spec)


def test_percentiles_interpolate_like_numpy_and_report_count_mean_max() -> None:
    values = list(range(1, 101))
    lat = percentiles(values)
    assert lat.count == 100
    assert lat.get("p50") == pytest.approx(50.5)
    assert lat.get("p99") == pytest.approx(float(np.percentile(values, 99)))
    assert lat.get("p99.9") == pytest.approx(float(np.percentile(values, 99.9)))
    assert lat.mean == pytest.approx(50.5) and lat.max == 100


def test_percentiles_of_nothing_are_empty_and_serialise_as_null() -> None:
    lat = percentiles([])
    assert lat.count == 0 and math.isnan(lat.get("p99"))
    assert lat.as_dict() == {"count": 0, "mean": None, "max": None}


def test_a_latency_series_groups_samples_by_second_with_their_own_percentiles() -> None:
    series = latency_series([0.1, 0.9, 1.5, 3.2, 3.3, 3.4], [10, 30, 7, 1, 2, 100])
    assert [(b.t, b.count) for b in series] == [(0.0, 2), (1.0, 1), (3.0, 3)]
    assert series[0].p50 == pytest.approx(20)
    assert series[1].p50 == series[1].p99 == 7
    assert series[2].p99 == pytest.approx(float(np.percentile([1, 2, 100], 99)))


def test_rates_are_per_second_differences_of_the_cumulative_counts() -> None:
    samples = [Sample(float(t), 1000 * t, 900 * t, 0, 0, 0, {}) for t in range(4)]
    assert rates(samples, "sent") == [(1.0, 1000.0), (2.0, 1000.0), (3.0, 1000.0)]
    assert rates(samples[:1], "acked") == []


def test_rates_merge_samples_taken_in_quick_succession() -> None:
    # A slow sample at 2.0 s, then one at once at 2.05 s: no burst of 20,000 events/s.
    samples = [Sample(t, n, n, 0, 0, 0, {}) for t, n in ((0.0, 0), (2.0, 2000), (2.05, 3000))]
    samples.append(Sample(3.05, 4000, 4000, 0, 0, 0, {}))
    assert rates(samples, "sent") == [(2.0, 1000.0), (3.05, pytest.approx(2000.0 / 1.05))]


@pytest.mark.parametrize(
    ("stored", "missing", "duplicates", "unexpected"),
    [
        pytest.param({"a": (3, 3), "b": (2, 2)}, 0, 0, 0, id="exact"),
        pytest.param({"a": (3, 3), "b": (1, 1)}, 1, 0, 0, id="one-lost"),
        pytest.param({"a": (4, 3), "b": (2, 2)}, 0, 1, 0, id="one-stored-twice"),
        pytest.param({"a": (3, 3), "b": (2, 2), "c": (1, 1)}, 0, 0, 1, id="never-sent"),
        pytest.param({"a": (3, 3)}, 2, 0, 0, id="a-vehicle-missing"),
    ],
)
def test_seq_accounting_finds_loss_duplicates_and_strangers_per_vehicle(
    stored: dict[str, tuple[int, int]], missing: int, duplicates: int, unexpected: int
) -> None:
    acct = account({"a": 3, "b": 2}, stored)
    assert (acct.missing, acct.duplicates, acct.unexpected) == (missing, duplicates, unexpected)
    assert acct.exact == (missing == duplicates == unexpected == 0)
    assert acct.expected == 5


def test_rejected_events_are_not_expected_in_the_database() -> None:
    acct = account({"a": 3, "b": 2}, {"a": (3, 3), "b": (1, 1)}, rejected=1)
    assert acct.expected == 4 and acct.missing == 0 and acct.exact


def test_the_json_report_is_strict_json_and_the_markdown_names_the_figures() -> None:
    report = LoadReport("fleetpipe loadtest run", "2026-01-01 00:00:00", {"cpus": "2"}, {"v": 1})
    report.sent = report.accepted = 10
    report.load_s = 2.0
    report.seq = account({"a": 10}, {"a": (10, 10)})
    report.alert_latency_ms = percentiles([5.0, 15.0])
    report.stored_latency_ms = percentiles([])
    report.alerts_by_rule = {"crash": {"OPEN": 1, "RESOLVED": 1}}
    report.injected_by_kind = {"crash": 1}
    doc = json.loads(report.to_json())
    assert doc["events"]["acknowledged"] == 10 and doc["events"]["sent_per_s"] == 5.0
    assert doc["stored"]["exact"] is True and doc["stored"]["duplicates"] == 0
    assert doc["latency_ms"]["ingest_to_alert"]["p50"] == 10.0
    md = report.markdown(title="Run", charts=["run-latency.png"])
    assert "| exactly once | yes |" in md
    assert "| crash | 1 | 0 | 1 | 1 |" in md
    assert "![run-latency.png](run-latency.png)" in md
    assert "ingest → stored" not in md  # no samples, no row


def test_run_ids_make_vehicle_ids_of_their_own_that_ingest_accepts() -> None:
    from fleetpipe.registry import VEHICLE_ID_RE
    from fleetpipe_loadtest.loadrun import new_run_id

    fleet = Fleet(3, fleet_id="fleet-1", id_prefix=f"fleet-1-{new_run_id()}")
    ids = [m.vehicle_id for m in fleet.events(1)]
    assert len(set(ids)) == 3
    assert all(VEHICLE_ID_RE.match(i) and i.startswith(fleet.id_prefix + "-veh-") for i in ids)
    assert {m.fleet_id for m in fleet.events(1)} == {"fleet-1"}
    assert {v.vehicle_id for v in fleet.registry()} == set(ids)
