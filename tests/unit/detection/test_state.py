from __future__ import annotations

import pytest

from fleetpipe.detection.state import CLEARING, Episode, ScoreBucket, TripProgress, VehicleState

pytestmark = pytest.mark.unit


def _full() -> VehicleState:
    st = VehicleState("v-1", home_partition=3)
    st.last_seq, st.last_event_us, st.last_seen_us = 42, 10, 20
    st.input_partition = 2
    st.fleet_id, st.driver_id = "fleet-a", "d-1"
    st.lat, st.lon, st.speed_kmh, st.ignition = 52.1, 4.2, 63.5, True
    st.episodes["speeding"] = Episode(CLEARING, 9, 5, 97.5, 40, 7)
    st.trip = TripProgress(1, 2, 52.0, 4.0, "hint-1")
    st.trip.distance_km, st.trip.idle_s, st.trip.max_speed_kmh = 3.5, 12.0, 97.5
    st.trip.harsh_brakes, st.trip.harsh_accels, st.trip.speeding_s = 1, 2, 30.0
    st.trip.stopped_since_us, st.trip.stop_idle_s = 8, 2.0
    bucket = ScoreBucket(0)
    bucket.distance_km, bucket.driving_s, bucket.harsh_brakes = 1.5, 60.0, 1
    st.buckets.append(bucket)
    return st


def _fields(st: VehicleState) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in VehicleState.__slots__:
        value = getattr(st, name)
        if name == "episodes":
            value = {k: {s: getattr(e, s) for s in Episode.__slots__} for k, e in value.items()}
        elif name == "trip" and value is not None:
            value = {s: getattr(value, s) for s in TripProgress.__slots__}
        elif name == "buckets":
            value = [{s: getattr(b, s) for s in ScoreBucket.__slots__} for b in value]
        out[name] = value
    return out


def test_state_round_trips_through_its_changelog_form() -> None:
    st = _full()
    back = VehicleState.from_bytes(st.to_bytes(), home_partition=3)
    assert _fields(back) == _fields(st)


def test_a_quiet_vehicle_state_is_small() -> None:
    st = VehicleState("fleet-1-veh-000123")
    st.last_seq, st.last_event_us, st.last_seen_us = 10**6, 1_767_225_600_000_000, 1 << 50
    st.lat, st.lon, st.speed_kmh, st.fleet_id, st.driver_id = 52.1, 4.2, 50.0, "fleet-1", "d-123"
    assert len(st.to_bytes()) < 120
