"""The seeds' analytics over data the writer stored, through `fleetpipe query`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from fleetpipe.cli import build_app
from fleetpipe.pb.v1 import alert_pb2
from fleetpipe.storage_writer import columns
from fleetpipe.storage_writer.database import HotStore, WriteBatch
from fleetpipe.storage_writer.partitions import hot_window
from fleetpipe_loadtest import records
from support.servers import Schema

pytestmark = pytest.mark.integration
app = build_app()


@pytest.fixture
def store(pg_schema: Schema) -> HotStore:
    from datetime import UTC, datetime

    store = HotStore(pg_schema.settings, application_name="test")
    store.migrate()
    store.maintain(
        hot_window(datetime.now(UTC), retention_days=3, ahead_days=1), events_retention_days=90
    )
    now = records.now_us()
    events = list(records.enriched_stream(4, 400, start_us=now - 600 * 10**6))
    for e in events[:40]:
        e.telemetry.driving_events.add(kind=1)  # 10 interventions for each vehicle
    table = columns.telemetry_rows(
        columns.TelemetryDecoder().decode([e.SerializeToString() for e in events])
    ).table
    alerts = [
        records.alert(
            f"fleet-1-veh-{i % 4:06d}",
            rule,
            episode_start_us=now - i * 10**6,
            driver_id=f"drv-{i % 4:06d}",
        )
        for i, rule in enumerate(["speeding", "speeding", "low_fuel", "crash", "speeding"])
    ]
    alerts[3].severity = alert_pb2.SEVERITY_CRITICAL
    trips = [records.trip("fleet-1-veh-000001", now - k * 3600 * 10**6) for k in (1, 2, 3)]
    scores = [
        records.driver_score(f"drv-{i:06d}", f"fleet-1-veh-{i:06d}", now, score=60 + 10 * i)
        for i in range(4)
    ]
    store.write(
        WriteBatch(
            telemetry=table,
            latest=columns.latest_rows(table),
            alerts=columns.alert_table(alerts),
            trips=columns.trip_table(trips),
            scores=columns.score_table(scores),
        )
    )
    store.close()
    return store


def _query(pg_schema: Schema, *args: str) -> Any:
    result = CliRunner().invoke(
        app, ["query", *args, "--dsn", pg_schema.dsn, "--schema", pg_schema.name, "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_trace_of_the_last_hour(store: HotStore, pg_schema: Schema) -> None:
    rows = _query(pg_schema, "trace", "fleet-1-veh-000002")
    assert len(rows) == 100 and rows[0]["seq"] == 100, "newest first"
    assert {"lat", "lon", "speed_kmh", "event_time"} <= set(rows[0])


def test_alerts_per_hour_by_rule(store: HotStore, pg_schema: Schema) -> None:
    rows = _query(pg_schema, "alerts-per-hour", "--hours", "2")
    by_rule = {(r["rule"], r["severity"]): r["alerts"] for r in rows}
    assert sum(by_rule.values()) == 5
    assert by_rule[("crash", "critical")] == 1


def test_scorecards_worst_first(store: HotStore, pg_schema: Schema) -> None:
    rows = _query(pg_schema, "scorecards")
    assert [r["driver_id"] for r in rows] == [f"drv-{i:06d}" for i in range(4)]
    assert float(rows[0]["score"]) == 60.0 and rows[0]["alerts_7d"] >= 1


def test_trips_per_vehicle(store: HotStore, pg_schema: Schema) -> None:
    (row,) = _query(pg_schema, "trips")
    assert (row["vehicle_id"], row["trips"], float(row["distance_km"])) == (
        "fleet-1-veh-000001",
        3,
        37.5,
    )


def test_fleet_utilisation(store: HotStore, pg_schema: Schema) -> None:
    (row,) = _query(pg_schema, "utilisation")
    assert (row["fleet_id"], row["vehicles"], row["active"]) == ("fleet-1", 4, 4)


def test_self_driving_metrics(store: HotStore, pg_schema: Schema) -> None:
    rows = _query(pg_schema, "self-driving")
    assert {r["interventions"] for r in rows} == {10}
    assert all(float(r["km_per_intervention"]) == pytest.approx(0.1, abs=0.01) for r in rows)


def test_a_table_for_people(store: HotStore, pg_schema: Schema) -> None:
    result = CliRunner(env={"COLUMNS": "250"}).invoke(
        app, ["query", "trips", "--dsn", pg_schema.dsn, "--schema", pg_schema.name]
    )
    assert result.exit_code == 0 and "fleet-1-veh-000001" in result.output


def test_an_unknown_schema_says_so(pg_schema: Schema) -> None:
    result = CliRunner().invoke(
        app, ["query", "trips", "--dsn", pg_schema.dsn, "--schema", pg_schema.name]
    )
    assert result.exit_code == 2 and "no analytics views" in result.output
