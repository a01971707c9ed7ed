from __future__ import annotations

import random
import struct

import pytest

from fleetpipe.detection.state import CLEARING, Episode, ScoreBucket, TripProgress, VehicleState
from fleetpipe.detection.wire import encode_state
from fleetpipe.pb.v1 import state_pb2

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
            value = [
                {s: getattr(b, s) for s in ScoreBucket.__slots__ if s != "wire"} for b in value
            ]
        out[name] = value
    return out


def test_state_round_trips_through_its_changelog_form() -> None:
    st = _full()
    back = VehicleState.from_bytes(encode_state(st), home_partition=3)
    assert _fields(back) == {**_fields(st), "wire_ids": None}


def test_a_quiet_vehicle_state_is_small() -> None:
    st = VehicleState("fleet-1-veh-000123")
    st.last_seq, st.last_event_us, st.last_seen_us = 10**6, 1_767_225_600_000_000, 1 << 50
    st.lat, st.lon, st.speed_kmh, st.fleet_id, st.driver_id = 52.1, 4.2, 50.0, "fleet-1", "d-123"
    assert len(encode_state(st)) < 100


def _random_state(rng: random.Random) -> VehicleState:
    st = VehicleState(f"v-{rng.randrange(10**6)}-ü")
    st.last_seq = rng.randrange(2**64)
    st.last_event_us = rng.randrange(-(2**63), 2**63)
    st.last_seen_us = rng.randrange(2**62)
    st.input_partition = rng.randrange(-1, 10_000)
    st.fleet_id = rng.choice(["", "fleet-a", "f" * 200])
    st.driver_id = rng.choice(["", "d-1", "ドライバー"])
    st.lat, st.lon = rng.uniform(-90, 90), rng.uniform(-180, 180)
    st.speed_kmh = float(struct.unpack("<f", struct.pack("<f", rng.uniform(0, 250)))[0])
    st.ignition = rng.random() < 0.5
    for i in range(rng.randrange(4)):
        st.episodes[f"rule-{i}" * rng.randrange(1, 30)] = Episode(
            rng.randrange(1, 4),
            rng.randrange(-(2**63), 2**63),
            rng.randrange(2**62),
            rng.uniform(-1e9, 1e9),
            rng.randrange(2**64),
            rng.randrange(2**62),
        )
    if rng.random() < 0.7:
        trip = st.trip = TripProgress(
            rng.randrange(2**62), rng.randrange(2**64), 1.5, -2.5, rng.choice(["", "t" * 300])
        )
        trip.distance_km, trip.idle_s, trip.speeding_s = rng.random(), rng.random(), rng.random()
        trip.max_speed_kmh = 96.5
        trip.harsh_brakes, trip.harsh_accels = rng.randrange(2**32), rng.randrange(2**32)
        trip.stopped_since_us, trip.stop_idle_s = rng.randrange(2**62), rng.random()
    for i in range(rng.randrange(8)):
        b = ScoreBucket(i * 600_000_000)
        b.distance_km, b.driving_s, b.speeding_s, b.idle_s = (rng.random() for _ in range(4))
        b.harsh_brakes, b.harsh_accels = rng.randrange(2**32), rng.randrange(2**32)
        st.buckets.append(b)
    return st


def test_the_struct_encoder_writes_what_the_protobuf_runtime_reads_back() -> None:
    rng = random.Random(17)
    for _ in range(300):
        st = _random_state(rng)
        encoded = encode_state(st)
        assert state_pb2.VehicleState.FromString(encoded) == st.to_proto()
        again = VehicleState.from_bytes(encoded, home_partition=st.home_partition)
        assert _fields(again) == {**_fields(st), "wire_ids": None}
        # Cached pieces (ids, closed buckets) must not go stale when the state changes.
        st.driver_id += "-new"
        if st.buckets:
            st.buckets[-1].driving_s += 1
        assert state_pb2.VehicleState.FromString(encode_state(st)) == st.to_proto()
