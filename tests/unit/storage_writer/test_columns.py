"""Enriched telemetry to table rows, a whole batch at a time."""

from __future__ import annotations

import json
from collections.abc import Callable

import pyarrow as pa
import pytest

from fleetpipe.pb.v1 import alert_pb2, enriched_pb2, telemetry_pb2
from fleetpipe.storage_writer.columns import (
    TELEMETRY_SCHEMA,
    TelemetryDecoder,
    TelemetryRows,
    alert_problem,
    alert_table,
    latest_rows,
    telemetry_rows,
)
from fleetpipe_loadtest import records

pytestmark = pytest.mark.unit

T = 1_736_951_525_000_000  # 2025-01-15 14:32:05 UTC


def _rows(*messages: enriched_pb2.EnrichedTelemetry) -> TelemetryRows:
    return telemetry_rows(TelemetryDecoder().decode([m.SerializeToString() for m in messages]))


def test_a_row_carries_every_field() -> None:
    e = records.enriched(7, 42, event_time_us=T)
    e.telemetry.dtc_codes.extend(["P0217", "P0300"])
    e.telemetry.driving_events.add(kind=1)
    e.telemetry.driving_events.add(kind=1)
    e.telemetry.driving_events.add(kind=2)
    e.telemetry.perception.nearest_object_class = telemetry_pb2.OBJECT_CLASS_PEDESTRIAN
    e.telemetry.perception.nearest_object_distance_m = 4.5
    e.telemetry.alarms.sos = True
    rows = _rows(e)
    assert rows.table.schema == TELEMETRY_SCHEMA and not rows.invalid
    (row,) = rows.table.to_pylist()
    assert row["vehicle_id"] == "fleet-1-veh-000007" and row["seq"] == 42
    assert str(row["event_day"]) == "2025-01-15"
    assert row["event_time"].isoformat() == "2025-01-15T14:32:05+00:00"
    assert (row["ingest_time"] - row["event_time"]).total_seconds() == pytest.approx(0.02)
    assert (row["interventions"], row["disengagements"]) == (2, 1)
    assert row["dtc_codes"] == "P0217,P0300"
    assert (row["object_class"], row["object_distance_m"]) == (2, 4.5)
    assert (row["sos"], row["crash"]) == (True, False)
    assert (row["driver_id"], row["vehicle_type"], row["geohash6"]) == (
        "drv-000007",
        "van",
        "u173zq",
    )


def test_absent_parts_read_as_null_or_default() -> None:
    e = records.enriched(1, 1, event_time_us=T)
    e.ClearField("vehicle")
    e.telemetry.ClearField("location")
    e.telemetry.ingest_time_us = 0
    (row,) = _rows(e).table.to_pylist()
    assert row["driver_id"] is None and row["vehicle_type"] is None
    assert (row["lat"], row["lon"]) == (0.0, 0.0)
    assert row["ingest_time"] is None
    assert row["object_class"] is None and row["dtc_codes"] is None and row["trip_hint"] is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param(
            lambda e: setattr(e.telemetry, "vehicle_id", ""), "vehicle_id is empty", id="no-vehicle"
        ),
        pytest.param(
            lambda e: setattr(e.telemetry, "seq", 0), "seq must be between 1", id="seq-zero"
        ),
        pytest.param(
            lambda e: setattr(e.telemetry, "seq", 2**63), "seq must be between 1", id="seq-too-big"
        ),
        pytest.param(
            lambda e: setattr(e.telemetry, "event_time_us", 0),
            "event_time_us must be positive",
            id="no-time",
        ),
    ],
)
def test_rows_that_cannot_be_stored_are_set_aside(
    change: Callable[[enriched_pb2.EnrichedTelemetry], None], reason: str
) -> None:
    good = records.enriched(1, 1, event_time_us=T)
    bad = records.enriched(2, 1, event_time_us=T)
    change(bad)
    rows = _rows(good, bad, good)
    assert rows.table.num_rows == 2 and list(rows.kept) == [0, 2]
    ((index, why),) = rows.invalid
    assert index == 1 and why.startswith(reason)


def test_a_malformed_payload_fails_the_batch_decode() -> None:
    with pytest.raises(ValueError):
        TelemetryDecoder().decode([records.enriched(1, 1).SerializeToString(), b"\xff\xff"])


def test_latest_rows_keep_each_vehicles_last() -> None:
    table = _rows(*records.enriched_stream(3, 12)).table
    latest = latest_rows(table)
    pairs = zip(latest["vehicle_id"].to_pylist(), latest["seq"].to_pylist(), strict=True)
    assert sorted(pairs) == [
        ("fleet-1-veh-000000", 4),
        ("fleet-1-veh-000001", 4),
        ("fleet-1-veh-000002", 4),
    ]


def test_alert_rows() -> None:
    a = records.alert(
        "v-1", "speeding", episode_start_us=T, state=alert_pb2.ALERT_STATE_RESOLVED, at_us=T + 10**6
    )
    (row,) = alert_table([a]).to_pylist()
    assert (row["state"], row["state_rank"], row["severity"]) == ("RESOLVED", 3, "warning")
    assert row["trigger_values"] == '{"limit_kmh": 80.0, "speed_kmh": 97.0}'
    assert row["episode_end"] is not None
    a.state = alert_pb2.ALERT_STATE_UNSPECIFIED
    assert alert_problem(a).startswith("state 0")
    assert isinstance(alert_table([]), pa.Table)


def test_non_finite_alert_values_are_stored_as_json_null() -> None:
    # A collision-risk alert whose object stopped closing has an infinite time to collision;
    # JSON (and jsonb) has no Infinity, and a row PostgreSQL refuses would stop the writer.
    a = records.alert("v-1", "collision_risk", episode_start_us=T)
    a.values["ttc_s"] = float("inf")
    a.values["peak"] = float("nan")
    (row,) = alert_table([a]).to_pylist()
    values = json.loads(row["trigger_values"])
    assert values["ttc_s"] is None and values["peak"] is None


def test_nul_characters_are_dropped_from_text() -> None:
    e = records.enriched(1, 1, event_time_us=T)
    e.vehicle.driver_id = "drv\x00-1"
    (row,) = _rows(e).table.to_pylist()
    assert row["driver_id"] == "drv-1"
    a = records.alert("v-1", "speeding", episode_start_us=T)
    a.message = "bad\x00byte"
    assert alert_table([a]).to_pylist()[0]["message"] == "badbyte"
