"""``fleetpipe query``: every option of every command, on a hot store the storage writer filled."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from fleetpipe.cli import build_app
from support.hotstore import HotStoreData

pytestmark = pytest.mark.integration
app = build_app()


def _invoke(hot: HotStoreData, *args: str) -> Any:
    return CliRunner(env={"COLUMNS": "300"}).invoke(
        app, ["query", *args, "--dsn", hot.dsn, "--schema", hot.schema]
    )


def _json(hot: HotStoreData, *args: str) -> Any:
    result = _invoke(hot, *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _at(hot: HotStoreData, hours_ago: float) -> str:
    t = datetime.fromtimestamp(hot.facts.now_us / 1e6, UTC) - timedelta(hours=hours_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%S%z")


# -- trace -------------------------------------------------------------------------------------
def test_trace_defaults_to_the_last_hour_oldest_first(hot: HotStoreData) -> None:
    rows = _json(hot, "trace", hot.facts.a_vehicles[0])
    assert len(rows) == 600, "the ten recent minutes, not the drive five hours ago"
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    assert {"lat", "lon", "speed_kmh", "event_time"} <= set(rows[0])


def test_trace_honours_hours_since_until_and_limit(hot: HotStoreData) -> None:
    vehicle = hot.facts.a_vehicles[0]
    assert len(_json(hot, "trace", vehicle, "--hours", "6")) == 660
    old = _json(hot, "trace", vehicle, "--since", _at(hot, 5.5), "--until", _at(hot, 4.5))
    assert [r["seq"] for r in old] == list(range(1, 61))
    newest = _json(hot, "trace", vehicle, "--limit", "10")
    assert [r["seq"] for r in newest] == list(range(651, 661)), "the newest ten, in order"


def test_trace_of_another_fleets_vehicle_is_empty(hot: HotStoreData) -> None:
    assert _json(hot, "trace", hot.facts.a_vehicles[0], "--fleet", "fleet-b") == []
    assert len(_json(hot, "trace", hot.facts.a_vehicles[0], "--fleet", "fleet-a")) == 600


def test_trace_as_geojson_is_a_line_and_its_points(hot: HotStoreData) -> None:
    result = _invoke(hot, "trace", hot.facts.a_vehicles[0], "--format", "geojson")
    assert result.exit_code == 0, result.output
    features = json.loads(result.stdout)["features"]
    assert features[0]["geometry"]["type"] == "LineString"
    assert len(features[0]["geometry"]["coordinates"]) == 600
    assert [f["geometry"]["type"] for f in features[1:]] == ["Point"] * 600


# -- latest ------------------------------------------------------------------------------------
def _ids(rows: list[dict[str, Any]], key: str = "vehicle_id") -> list[str]:
    return sorted(r[key] for r in rows)


def test_latest_shows_every_vehicle_with_its_status(hot: HotStoreData) -> None:
    f = hot.facts
    rows = {r["vehicle_id"]: r["status"] for r in _json(hot, "latest")}
    assert rows == {
        f.a_vehicles[0]: "active",
        f.parked: "parked",
        f.idle: "idle",
        f.b_vehicles[0]: "active",
        f.offline: "offline",
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(("--fleet", "fleet-a"), "a", id="fleet"),
        pytest.param(("--fleet", "fleet-a", "--fleet", "fleet-b"), "ab", id="two-fleets"),
        pytest.param(("--status", "parked"), "parked", id="status"),
        pytest.param(("--status", "offline", "--status", "idle"), "offline+idle", id="statuses"),
        pytest.param(("--bbox", "4.8,53.0,5.0,53.5"), "b", id="bbox"),
        pytest.param(("--hours", "1"), "recent", id="hours"),
        pytest.param(("--limit", "2"), "first2", id="limit"),
    ],
)
def test_latest_filters(hot: HotStoreData, args: tuple[str, ...], expected: str) -> None:
    f = hot.facts
    every = sorted([*f.a_vehicles, *f.b_vehicles])
    want = {
        "a": sorted(f.a_vehicles),
        "ab": every,
        "parked": [f.parked],
        "offline+idle": sorted([f.offline, f.idle]),
        "b": sorted(f.b_vehicles),
        "recent": sorted(set(every) - {f.offline}),
        "first2": every[:2],
    }[expected]
    assert _ids(_json(hot, "latest", *args)) == want


def test_latest_until_a_past_time_sees_who_was_heard_by_then(hot: HotStoreData) -> None:
    rows = _json(hot, "latest", "--until", _at(hot, 4))
    assert [(r["vehicle_id"], r["status"]) for r in rows] == [(hot.facts.offline, "offline")]


def test_latest_as_geojson_and_csv(hot: HotStoreData) -> None:
    result = _invoke(hot, "latest", "--format", "geojson")
    points = json.loads(result.stdout)["features"]
    assert len(points) == 5 and points[0]["geometry"]["type"] == "Point"
    assert {"status", "vehicle_id"} <= set(points[0]["properties"])
    table = list(csv.DictReader(io.StringIO(_invoke(hot, "latest", "--format", "csv").stdout)))
    assert _ids(table) == sorted([*hot.facts.a_vehicles, *hot.facts.b_vehicles])
    assert {r["status"] for r in table} == {"active", "idle", "parked", "offline"}


# -- alerts ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param((), {"speeding", "crash", "b_speeding"}, id="last-24h"),
        pytest.param(("--hours", "48"), {"speeding", "crash", "b_speeding", "fuel"}, id="hours"),
        pytest.param(("--open",), {"speeding", "fuel", "b_speeding"}, id="open"),
        pytest.param(("--open", "--hours", "1"), {"speeding", "b_speeding"}, id="open-hours"),
        pytest.param(("--rule", "crash"), {"crash"}, id="rule"),
        pytest.param(("--severity", "critical"), {"crash"}, id="severity"),
        pytest.param(("--fleet", "fleet-b"), {"b_speeding"}, id="fleet"),
        pytest.param(("--limit", "1"), {"speeding"}, id="limit-newest"),
    ],
)
def test_alerts_filters(hot: HotStoreData, args: tuple[str, ...], expected: set[str]) -> None:
    f = hot.facts
    names = {
        f.speeding_open: "speeding",
        f.crash_resolved: "crash",
        f.fuel_old_open: "fuel",
        f.b_speeding_open: "b_speeding",
    }
    assert {names[r["alert_id"]] for r in _json(hot, "alerts", *args)} == expected


def test_alerts_of_a_vehicle_between_since_and_until(hot: HotStoreData) -> None:
    rows = _json(
        hot,
        "alerts",
        "--vehicle",
        hot.facts.a_vehicles[1],
        "--since",
        _at(hot, 3),
        "--until",
        _at(hot, 1),
    )
    assert [r["alert_id"] for r in rows] == [hot.facts.crash_resolved]
    assert rows[0]["state"] == "RESOLVED" and rows[0]["trigger_values"]["threshold_g"] == 4.0


def test_alerts_as_geojson_points(hot: HotStoreData) -> None:
    result = _invoke(hot, "alerts", "--open", "--format", "geojson")
    features = json.loads(result.stdout)["features"]
    assert len(features) == 3 and all(f["geometry"]["type"] == "Point" for f in features)


def test_alerts_per_hour(hot: HotStoreData) -> None:
    rows = _json(hot, "alerts-per-hour", "--hours", "48")
    assert sum(r["alerts"] for r in rows) == 4
    assert sum(r["alerts"] for r in _json(hot, "alerts-per-hour")) == 3
    assert sum(r["alerts"] for r in _json(hot, "alerts-per-hour", "--fleet", "fleet-b")) == 1


# -- alert ID ----------------------------------------------------------------------------------
def test_alert_explained(hot: HotStoreData) -> None:
    found = _json(hot, "alert", hot.facts.speeding_open)
    assert found["rule"] == "speeding"
    assert found["threshold"] == {"limit_kmh": 80.0}
    assert found["observed"] == {"speed_kmh": 104.0}, "the latest state's values"
    assert [t["state"] for t in found["transitions"]] == ["OPEN", "UPDATE"]
    events = found["events"]
    assert 280 <= len(events) <= 301, "its episode (5 to 4 min ago) ±2 min at 1 Hz"
    assert {(n["channel"], n["status"]) for n in found["notifications"]} == {
        ("sms", "SENT"),
        ("voice", "FAILED"),
    }


def test_alert_events_follow_the_window_when_given(hot: HotStoreData) -> None:
    found = _json(hot, "alert", hot.facts.speeding_open, "--hours", "1")
    assert len(found["events"]) == 600


def test_alert_of_another_fleet_is_not_found(hot: HotStoreData) -> None:
    result = _invoke(hot, "alert", hot.facts.speeding_open, "--fleet", "fleet-b")
    assert result.exit_code == 1 and "no such alert" in result.output
    assert _invoke(hot, "alert", "no-such-id").exit_code == 1


def test_alert_as_table_csv_and_geojson(hot: HotStoreData) -> None:
    table = _invoke(hot, "alert", hot.facts.crash_resolved)
    assert table.exit_code == 0 and "threshold_g" in table.stdout and "RESOLVED" in table.stdout
    sections = _invoke(hot, "alert", hot.facts.crash_resolved, "--format", "csv").stdout
    assert "# transitions\nstate," in sections and "# notifications\nphase," in sections
    geo = json.loads(_invoke(hot, "alert", hot.facts.speeding_open, "--format", "geojson").stdout)
    kinds = [f["geometry"]["type"] for f in geo["features"]]
    assert kinds[0] == "LineString" and kinds[-1] == "Point"


# -- the fleet analytics -----------------------------------------------------------------------
def test_trips_honour_the_window_and_fleet(hot: HotStoreData) -> None:
    a0, b0 = hot.facts.a_vehicles[0], hot.facts.b_vehicles[0]
    by_vehicle = {r["vehicle_id"]: r["trips"] for r in _json(hot, "trips")}
    assert by_vehicle == {a0: 2, b0: 1}, "ended in the last 24 h; the started trip is not one"
    assert {r["vehicle_id"]: r["trips"] for r in _json(hot, "trips", "--hours", "48")}[a0] == 3
    assert {r["vehicle_id"]: r["trips"] for r in _json(hot, "trips", "--hours", "2")} == {a0: 1}
    assert [r["vehicle_id"] for r in _json(hot, "trips", "--fleet", "fleet-b")] == [b0]
    rows = _json(hot, "trips", "--since", _at(hot, 40), "--until", _at(hot, 20))
    assert [(r["vehicle_id"], r["trips"]) for r in rows] == [(a0, 1)]


def test_scorecards_worst_first_within_the_window(hot: HotStoreData) -> None:
    a0, a1 = hot.facts.a_vehicles[:2]
    b0 = hot.facts.b_vehicles[0]
    rows = _json(hot, "scorecards")
    assert [(r["driver_id"], r["score"]) for r in rows] == [
        (f"drv-{a0}", 55.0),
        (f"drv-{b0}", 70.0),
        (f"drv-{a1}", 80.0),
    ]
    assert rows[0]["alerts"] == 1, "the speeding episode of the last 24 h"
    (wide,) = (r for r in _json(hot, "scorecards", "--hours", "48") if r["vehicle_id"] == a0)
    assert (wide["score"], wide["avg_score"]) == (55.0, 75.0)
    assert [r["driver_id"] for r in _json(hot, "scorecards", "--fleet", "fleet-b")] == [f"drv-{b0}"]


def test_utilisation_by_fleet(hot: HotStoreData) -> None:
    rows = {r["fleet_id"]: r for r in _json(hot, "utilisation")}
    a, b = rows["fleet-a"], rows["fleet-b"]
    assert (a["vehicles"], a["active"], a["idle"], a["parked"], a["offline"]) == (3, 1, 1, 1, 0)
    assert (b["vehicles"], b["active"], b["offline"]) == (2, 1, 1)
    recent = {r["fleet_id"]: r["vehicles"] for r in _json(hot, "utilisation", "--hours", "1")}
    assert recent == {"fleet-a": 3, "fleet-b": 1}
    assert [r["fleet_id"] for r in _json(hot, "utilisation", "--fleet", "fleet-b")] == ["fleet-b"]


def test_self_driving_counts_interventions_in_the_window(hot: HotStoreData) -> None:
    day = {r["vehicle_id"]: r["interventions"] for r in _json(hot, "self-driving")}
    assert {day[v] for v in hot.facts.a_vehicles} == {11}
    assert day[hot.facts.b_vehicles[0]] == 0
    hour = {r["vehicle_id"]: r["interventions"] for r in _json(hot, "self-driving", "--hours", "1")}
    assert {hour[v] for v in hot.facts.a_vehicles} == {10}
    only_a = _json(hot, "self-driving", "--fleet", "fleet-a", "--limit", "2")
    assert len(only_a) == 2 and {r["fleet_id"] for r in only_a} == {"fleet-a"}


def test_kpis_per_fleet(hot: HotStoreData) -> None:
    rows = {r["fleet_id"]: r for r in _json(hot, "kpis")}
    a = rows["fleet-a"]
    assert (a["vehicles"], a["open_alerts"], a["alerts"], a["critical_alerts"]) == (3, 2, 2, 1)
    assert (a["trips"], a["distance_km"]) == (2, 25.0)
    assert (rows["fleet-b"]["vehicles"], rows["fleet-b"]["open_alerts"]) == (2, 1)
    wide = {r["fleet_id"]: r for r in _json(hot, "kpis", "--hours", "48")}
    assert (wide["fleet-a"]["alerts"], wide["fleet-a"]["trips"]) == (3, 3)
    assert [r["fleet_id"] for r in _json(hot, "kpis", "--fleet", "fleet-b")] == ["fleet-b"]


def test_kpi_windows_sum_the_partitions_of_the_last_hour_per_fleet(hot: HotStoreData) -> None:
    rows = {r["fleet_id"]: r for r in _json(hot, "kpi-windows")}
    a, b = rows["fleet-a"], rows["fleet-b"]
    assert (a["dimension"], a["active_vehicles"], a["distance_km"]) == ("fleet", 3, 6.5)
    assert (a["max_speed_kmh"], a["avg_speed_kmh"], a["alerts"]) == (90.0, 60.0, 1)
    assert (b["active_vehicles"], b["distance_km"], b["avg_speed_kmh"]) == (2, 3.0, 50.0)
    assert len(_json(hot, "kpi-windows")) == 2, "the window of two hours ago is outside 1 h"
    wide = _json(hot, "kpi-windows", "--hours", "3", "--fleet", "fleet-a")
    assert [r["active_vehicles"] for r in wide] == [3, 1], "newest first"
    models = _json(hot, "kpi-windows", "--dimension", "model")
    assert [(r["dimension_value"], r["active_vehicles"]) for r in models] == [("Model-X", 2)]
    every = _json(hot, "kpi-windows", "--dimension", "all", "--fleet", "fleet-a")
    assert {r["dimension"] for r in every} == {"fleet", "model"}
    refused = _invoke(hot, "kpi-windows", "--dimension", "colour")
    assert refused.exit_code != 0 and "dimension" in refused.output


def test_dead_letters_by_reason(hot: HotStoreData) -> None:
    day = {r["reason"]: r["records"] for r in _json(hot, "deadletters")}
    assert day == {"undecodable": 2, "invalid": 1}
    wide = {r["reason"]: r["records"] for r in _json(hot, "deadletters", "--hours", "48")}
    assert wide == {"undecodable": 2, "invalid": 2}
    (latest,) = (r for r in _json(hot, "deadletters") if r["reason"] == "undecodable")
    assert latest["latest_error"] == "undecodable record 1"
    refused = _invoke(hot, "deadletters", "--fleet", "fleet-a")
    assert refused.exit_code == 2 and "no fleet" in refused.output


def test_notification_outcomes(hot: HotStoreData) -> None:
    rows = {(r["channel"], r["status"]): r for r in _json(hot, "notifications")}
    assert rows[("sms", "SENT")]["deliveries"] == 3
    assert rows[("voice", "FAILED")]["latest_error_code"] == "21211"
    only_b = _json(hot, "notifications", "--fleet", "fleet-b")
    assert [(r["channel"], r["status"], r["deliveries"]) for r in only_b] == [("sms", "SENT", 1)]
    hour = {
        (r["channel"], r["status"]): r["deliveries"]
        for r in _json(hot, "notifications", "--hours", "1")
    }
    assert hour == {("sms", "SENT"): 2, ("voice", "FAILED"): 1}, "not the crash two hours ago"


# -- formats and refusals ----------------------------------------------------------------------
def test_table_csv_and_the_json_flag(hot: HotStoreData) -> None:
    table = _invoke(hot, "trips")
    assert table.exit_code == 0 and hot.facts.a_vehicles[0] in table.stdout
    rows = list(csv.DictReader(io.StringIO(_invoke(hot, "trips", "--format", "csv").stdout)))
    assert {r["vehicle_id"] for r in rows} == {hot.facts.a_vehicles[0], hot.facts.b_vehicles[0]}
    flag = _invoke(hot, "trips", "--json")
    assert json.loads(flag.stdout) == _json(hot, "trips")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        pytest.param(("trips", "--hours", "0"), "--hours", id="zero-hours"),
        pytest.param(("trips", "--hours", "1", "--since", "2026-01-01"), "--hours", id="both"),
        pytest.param(("alerts", "--since", "2999-01-01"), "--since", id="since-after-until"),
        pytest.param(("latest", "--bbox", "1,2,3"), "--bbox", id="bbox"),
        pytest.param(("trips", "--format", "geojson"), "--format", id="geojson-without-positions"),
    ],
)
def test_bad_options_are_refused_naming_the_option(
    hot: HotStoreData, args: tuple[str, ...], said: str
) -> None:
    result = _invoke(hot, *args)
    assert result.exit_code == 2 and said in result.output


def test_a_schema_without_the_store_says_so(hot: HotStoreData) -> None:
    result = CliRunner().invoke(
        app, ["query", "trips", "--dsn", hot.dsn, "--schema", "no_such_schema"]
    )
    assert result.exit_code == 2 and "has the storage writer run" in result.output


@pytest.mark.parametrize(
    "command",
    [
        "alerts-per-hour",
        "trips",
        "scorecards",
        "utilisation",
        "self-driving",
        "kpis",
        "deadletters",
        "notifications",
    ],
)
def test_every_analytics_command_takes_limit_and_the_json_flag(
    hot: HotStoreData, command: str
) -> None:
    wide = _json(hot, command, "--hours", "48")
    assert len(wide) >= 2, f"{command}: the dataset has several rows to limit"
    assert _json(hot, command, "--hours", "48", "--limit", "1") == wide[:1]
    flag = _invoke(hot, command, "--hours", "48", "--json")
    assert flag.exit_code == 0 and json.loads(flag.stdout) == wide
