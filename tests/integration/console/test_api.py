"""The console's API on a hot store the storage writer filled: answers checked against the
rows, fleet isolation on every endpoint, 422 naming the field, probes and the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest

from support.console import TOKEN_A, TOKEN_ALL, Console
from support.hotstore import HotStoreData

pytestmark = pytest.mark.integration


def _get(console: Console, path: str, token: str | None = TOKEN_ALL, **params: Any) -> Any:
    with console.client(token) as client:
        response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_vehicles_now_match_the_latest_rows(console: Console, hot: HotStoreData) -> None:
    rows = _get(console, "/api/v1/vehicles")
    stored = {str(v): lat for v, lat in hot.sql("SELECT vehicle_id, lat FROM vehicle_latest")}
    assert {r["vehicle_id"]: r["lat"] for r in rows} == stored
    parked = _get(console, "/api/v1/vehicles", status="parked")
    assert [r["vehicle_id"] for r in parked] == [hot.facts.parked]
    boxed = _get(console, "/api/v1/vehicles", bbox="4.8,53.0,5.0,53.5")
    assert sorted(r["vehicle_id"] for r in boxed) == sorted(hot.facts.b_vehicles)
    geo = _get(console, "/api/v1/vehicles", format="geojson")
    assert len(geo["features"]) == len(stored)
    compact = _get(console, "/api/v1/vehicles", format="compact")
    assert compact["columns"] == ["vehicle_id", "lat", "lon", "status"]
    assert {r[0]: r[1] for r in compact["rows"]} == stored
    assert {r[0]: r[3] for r in compact["rows"]}[hot.facts.offline] == "offline"


def test_trace_as_json_and_geojson(console: Console, hot: HotStoreData) -> None:
    vehicle = hot.facts.a_vehicles[0]
    rows = _get(console, f"/api/v1/vehicles/{vehicle}/trace")
    (count,) = hot.sql(
        "SELECT count(*) FROM telemetry "
        "WHERE vehicle_id = %s AND event_time > now() - interval '1 hour'",
        vehicle,
    )[0]
    assert len(rows) == count == 600
    assert len(_get(console, f"/api/v1/vehicles/{vehicle}/trace", hours=6)) == 660
    line = _get(console, f"/api/v1/vehicles/{vehicle}/trace", format="geojson")["features"][0]
    assert line["geometry"]["type"] == "LineString" and len(line["geometry"]["coordinates"]) == 600


def test_alerts_open_history_and_explained(console: Console, hot: HotStoreData) -> None:
    f = hot.facts
    open_now = {r["alert_id"] for r in _get(console, "/api/v1/alerts", open="true")}
    stored = {r[0] for r in hot.sql("SELECT alert_id FROM alerts WHERE state <> 'RESOLVED'")}
    assert open_now == stored == {f.speeding_open, f.fuel_old_open, f.b_speeding_open}
    history = _get(console, "/api/v1/alerts", hours=48, rule="crash")
    assert [(r["alert_id"], r["state"]) for r in history] == [(f.crash_resolved, "RESOLVED")]
    found = _get(console, f"/api/v1/alerts/{f.speeding_open}")
    assert (found["rule"], found["threshold"], found["observed"]) == (
        "speeding",
        {"limit_kmh": 80.0},
        {"speed_kmh": 104.0},
    )
    assert [t["state"] for t in found["transitions"]] == ["OPEN", "UPDATE"]
    assert len(found["events"]) > 200 and len(found["notifications"]) == 2


@pytest.mark.parametrize(
    ("path", "params", "check"),
    [
        pytest.param("/api/v1/trips", {}, ("vehicle_id", "trips", 2), id="trips"),
        pytest.param("/api/v1/scorecards", {}, ("score", None, 55.0), id="scorecards"),
        pytest.param("/api/v1/utilisation", {}, ("fleet_id", "vehicles", 3), id="utilisation"),
        pytest.param("/api/v1/kpis", {}, ("fleet_id", "open_alerts", 2), id="kpis"),
        pytest.param("/api/v1/self-driving", {}, ("vehicle_id", "interventions", 11), id="sd"),
        pytest.param("/api/v1/deadletters", {}, ("reason", "records", 2), id="deadletters"),
        pytest.param("/api/v1/notifications", {}, ("channel", "deliveries", 3), id="notify"),
    ],
)
def test_analytics_endpoints_answer_the_query_layer(
    console: Console, hot: HotStoreData, path: str, params: dict[str, Any], check: tuple[Any, ...]
) -> None:
    rows = _get(console, path, **params)
    key, column, value = check
    first = rows[0]
    assert first[column or key] == value, rows
    csv = console.client().get(path, params={**params, "format": "csv"})
    assert csv.status_code == 200 and csv.text.splitlines()[0].split(",")[0] == next(iter(first))


def test_alerts_per_hour_count_the_episodes_opened(console: Console, hot: HotStoreData) -> None:
    # The two speeding episodes opened 5 and 10 minutes ago: one hour's row, or two when an hour
    # began between them; counted per rule so that the wall clock cannot move the answer.
    rows = _get(console, "/api/v1/alerts-per-hour", hours=48)
    speeding = sum(r["alerts"] for r in rows if r["rule"] == "speeding")
    assert speeding == 2, rows
    assert rows[0]["rule"] == "speeding", "the newest hour first"
    csv = console.client().get("/api/v1/alerts-per-hour", params={"hours": 48, "format": "csv"})
    assert csv.status_code == 200 and csv.text.splitlines()[0].split(",")[0] == next(iter(rows[0]))


ENDPOINTS = [
    "/api/v1/vehicles",
    "/api/v1/alerts",
    "/api/v1/alerts?open=true",
    "/api/v1/trips",
    "/api/v1/scorecards",
    "/api/v1/utilisation",
    "/api/v1/kpis",
    "/api/v1/self-driving",
    "/api/v1/alerts-per-hour",
    "/api/v1/notifications",
]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_fleet_token_sees_nothing_of_another_fleet(console: Console, endpoint: str) -> None:
    path, _, query = endpoint.partition("?")
    params = dict(p.split("=") for p in query.split("&") if p)
    with console.client(TOKEN_A) as client:
        mine = client.get(path, params=params)
        assert mine.status_code == 200 and mine.json() and "fleet-b" not in mine.text
        # What the fleet's token sees is what an all-fleets token sees of that fleet alone.
        assert mine.json() == _get(console, path, **params, fleet="fleet-a")
        asked = client.get(path, params={**params, "fleet": "fleet-b"})
        assert asked.status_code == 403 and "fleet-b" not in asked.text.replace(
            "fleet fleet-b is outside", ""
        )


def test_isolation_on_the_per_vehicle_and_per_alert_endpoints(
    console: Console, hot: HotStoreData
) -> None:
    b_vehicle, b_alert = hot.facts.b_vehicles[0], hot.facts.b_speeding_open
    with console.client(TOKEN_A) as client:
        assert client.get(f"/api/v1/vehicles/{b_vehicle}/trace").json() == []
        assert client.get(f"/api/v1/alerts/{b_alert}").status_code == 404
        assert client.get("/api/v1/deadletters").status_code == 403, "dead letters: all fleets"
        assert client.get("/api/v1/stream", params={"fleet": "fleet-b"}).status_code == 403
    with console.client(None) as anonymous:
        assert anonymous.get("/api/v1/vehicles").status_code == 401
    with console.client("not-a-token") as stranger:
        assert stranger.get("/api/v1/alerts").status_code == 401


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        pytest.param("/api/v1/trips", {"hours": "-1"}, "hours", id="negative-hours"),
        pytest.param("/api/v1/trips", {"hours": "soon"}, "hours", id="hours-not-a-number"),
        pytest.param(
            "/api/v1/alerts", {"hours": "1", "since": "2026-01-01T00:00:00Z"}, "hours", id="both"
        ),
        pytest.param("/api/v1/alerts", {"since": "2999-01-01T00:00:00Z"}, "since", id="future"),
        pytest.param("/api/v1/vehicles", {"bbox": "1,2,3"}, "bbox", id="bbox"),
        pytest.param("/api/v1/vehicles", {"status": "flying"}, "status", id="status"),
        pytest.param("/api/v1/vehicles", {"limit": "0"}, "limit", id="limit"),
        pytest.param("/api/v1/alerts", {"severity": "dire"}, "severity", id="severity"),
        pytest.param("/api/v1/kpis", {"format": "geojson"}, "format", id="format"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(
    console: Console, path: str, params: dict[str, str], field: str
) -> None:
    response = console.client().get(path, params=params)
    assert response.status_code == 422, response.text
    assert [e["loc"][:2] for e in response.json()["detail"]] == [["query", field]]


def test_probes_metrics_and_openapi(console: Console) -> None:
    with console.client(None) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        document = client.get("/openapi.json").json()
        assert "/api/v1/vehicles" in document["paths"] and "/api/v1/stream" in document["paths"]
        metrics = client.get("/metrics").text
    assert 'fleetpipe_console_requests_total{route="/api/v1/vehicles"' in metrics
