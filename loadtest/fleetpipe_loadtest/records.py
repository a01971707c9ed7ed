"""Synthetic downstream records — enriched telemetry, alerts, trips, driver scores — for tests
and benchmarks of the services that consume them, without running enrichment or detection.

Deterministic from their arguments, like :mod:`fleetpipe_loadtest.synthetic`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping

from fleetpipe.pb.v1 import alert_pb2, enriched_pb2, telemetry_pb2, trip_pb2
from fleetpipe_loadtest import synthetic


def now_us() -> int:
    return time.time_ns() // 1000


def enriched(
    vehicle_index: int,
    seq: int,
    *,
    fleet: str = "fleet-1",
    event_time_us: int | None = None,
) -> enriched_pb2.EnrichedTelemetry:
    t = synthetic.telemetry(vehicle_index, seq, fleet=fleet, event_time_us=event_time_us)
    t.ingest_time_us = t.event_time_us + 20_000
    return enriched_pb2.EnrichedTelemetry(
        telemetry=t,
        vehicle=enriched_pb2.VehicleInfo(
            fleet_id=fleet,
            vehicle_type="van",
            model="Transit",
            driver_id=f"drv-{vehicle_index:06d}",
            driver_name=f"Driver {vehicle_index}",
            speed_profile="urban",
        ),
        geohash6="u173zq",
        speed_limit_kmh=50.0,
        expected_gear=3,
        known=True,
        enriched_time_us=t.event_time_us + 30_000,
    )


def enriched_stream(
    vehicles: int, events: int, *, fleet: str = "fleet-1", start_us: int | None = None
) -> Iterator[enriched_pb2.EnrichedTelemetry]:
    """``events`` records round-robin over ``vehicles``; one event per vehicle per second."""
    start = start_us if start_us is not None else now_us() - (events // max(vehicles, 1)) * 10**6
    for i in range(events):
        seq = i // vehicles + 1
        yield enriched(i % vehicles, seq, fleet=fleet, event_time_us=start + seq * 1_000_000)


def alert(
    vehicle_id: str,
    rule: str = "speeding",
    *,
    severity: int = alert_pb2.SEVERITY_WARNING,
    state: int = alert_pb2.ALERT_STATE_OPEN,
    episode_start_us: int | None = None,
    at_us: int | None = None,
    driver_id: str = "",
    fleet_id: str = "fleet-1",
    values: Mapping[str, float] | None = None,
    lat: float = 52.37012,
    lon: float = 4.89031,
    geohash6: str = "u173zq",
) -> alert_pb2.Alert:
    start = episode_start_us if episode_start_us is not None else now_us()
    t = at_us if at_us is not None else start
    resolved = state == alert_pb2.ALERT_STATE_RESOLVED
    return alert_pb2.Alert(
        alert_id=f"{vehicle_id}:{rule}:{start}",
        vehicle_id=vehicle_id,
        fleet_id=fleet_id,
        driver_id=driver_id,
        rule=rule,
        severity=severity,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        episode_start_us=start,
        episode_end_us=t if resolved else 0,
        values=dict(values or {"speed_kmh": 97.0, "limit_kmh": 80.0}),
        event_time_us=t,
        ingest_time_us=t + 20_000,
        detected_time_us=t + 50_000,
        seq=1,
        location=telemetry_pb2.Location(lat=lat, lon=lon),
        message=f"{rule} on {vehicle_id}",
        geohash6=geohash6,
    )


def trip(
    vehicle_id: str,
    start_us: int,
    *,
    state: int = trip_pb2.TRIP_STATE_ENDED,
    duration_s: float = 1800.0,
    distance_km: float = 12.5,
    driver_id: str = "",
    fleet_id: str = "fleet-1",
) -> trip_pb2.Trip:
    ended = state == trip_pb2.TRIP_STATE_ENDED
    return trip_pb2.Trip(
        trip_id=f"{vehicle_id}:{start_us}",
        vehicle_id=vehicle_id,
        fleet_id=fleet_id,
        driver_id=driver_id,
        state=state,  # type: ignore[arg-type]
        start_time_us=start_us,
        end_time_us=start_us + int(duration_s * 1e6) if ended else 0,
        start_location=telemetry_pb2.Location(lat=52.37, lon=4.89),
        end_location=telemetry_pb2.Location(lat=52.40, lon=4.95) if ended else None,
        distance_km=distance_km if ended else 0.0,
        duration_s=duration_s if ended else 0.0,
        idle_s=120.0 if ended else 0.0,
        max_speed_kmh=88.0,
        avg_speed_kmh=35.0,
        harsh_brakes=1,
        harsh_accels=2,
        speeding_s=30.0,
        start_seq=1,
        end_seq=1800 if ended else 0,
    )


def driver_score(
    driver_id: str, vehicle_id: str, window_end_us: int, *, score: float = 87.5
) -> trip_pb2.DriverScore:
    return trip_pb2.DriverScore(
        driver_id=driver_id,
        vehicle_id=vehicle_id,
        fleet_id="fleet-1",
        window_start_us=window_end_us - 3600 * 10**6,
        window_end_us=window_end_us,
        score=score,
        distance_km=40.0,
        driving_s=3000.0,
        speeding_s=60.0,
        harsh_brakes=2,
        harsh_accels=1,
        idle_s=300.0,
        computed_time_us=window_end_us + 1000,
    )
