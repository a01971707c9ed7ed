"""The changelog form of a vehicle's state, written with ``struct`` instead of the protobuf runtime.

With a large fleet every event changes a vehicle that the batch has not written yet, so the
detector writes about one ``VehicleState`` per event. Building that message through the protobuf
runtime costs ~18 µs on the reference machine (a trip and two score buckets: some forty field
assignments); packing the same wire format with precompiled structs costs a few µs. The layout
is the standard protobuf encoding of ``fleetpipe.v1.VehicleState`` (state.proto), whose integers
are fixed-width for exactly this reason: every field is written, defaults included, the ids
first (protobuf parsers take fields in any order). Reading goes through the protobuf runtime
(``VehicleState.from_bytes``), and the tests check the round trip against the runtime's own
rendering (``VehicleState.to_proto``).

The ids' encoding is kept on the state while they do not change, and a closed score bucket's
on the bucket: neither changes again.
"""

from __future__ import annotations

import struct

from fleetpipe.detection.state import Episode, ScoreBucket, TripProgress, VehicleState

# Tags are (field number << 3) | wire type: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
_STATE_HEAD = struct.Struct("<BQBqBqBi")  # 2 last_seq, 3 last_event_us, 4 last_seen_us, 5 input_p.
_STATE_FIX = struct.Struct("<BdBdBfBB")  # 8 lat, 9 lon, 10 speed_kmh, 11 ignition
_EPISODE = struct.Struct("<BBBqBqBdBqBQ")  # 2 phase .. 7 start_seq
_TRIP = struct.Struct("<BqBQBdBdBdBdBfBIBIBdBqBd")  # 1 start_us .. 12 stop_idle_s
_BUCKET = struct.Struct("<BqBdBdBdBIBIBd")  # 1 start_us .. 7 idle_s

_T_VEHICLE_ID = 0x0A
_T_FLEET_ID = 0x32
_T_DRIVER_ID = 0x3A
_T_EPISODES = 0x62
_T_TRIP = 0x6A
_T_BUCKETS = 0x72
_T_KEY = 0x0A
_T_HINT = 0x6A


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(tag: int, payload: bytes) -> bytes:
    n = len(payload)
    return bytes((tag, n)) + payload if n < 0x80 else bytes((tag,)) + _varint(n) + payload


def _text(tag: int, text: str) -> bytes:
    return _delimited(tag, text.encode())


def _episode(key: str, ep: Episode) -> bytes:
    body = _text(_T_KEY, key) + _EPISODE.pack(
        0x10, ep.phase,
        0x19, ep.since_us,
        0x21, ep.start_us,
        0x29, ep.peak,
        0x31, ep.last_update_us,
        0x39, ep.start_seq,
    )  # fmt: skip
    return _delimited(_T_EPISODES, body)


def _trip(trip: TripProgress) -> bytes:
    body = _TRIP.pack(
        0x09, trip.start_us,
        0x11, trip.start_seq,
        0x19, trip.start_lat,
        0x21, trip.start_lon,
        0x29, trip.distance_km,
        0x31, trip.idle_s,
        0x3D, trip.max_speed_kmh,
        0x45, trip.harsh_brakes,
        0x4D, trip.harsh_accels,
        0x51, trip.speeding_s,
        0x59, trip.stopped_since_us,
        0x61, trip.stop_idle_s,
    )  # fmt: skip
    return _delimited(_T_TRIP, body + _text(_T_HINT, trip.hint))


def _bucket(b: ScoreBucket) -> bytes:
    body = _BUCKET.pack(
        0x09, b.start_us,
        0x11, b.distance_km,
        0x19, b.driving_s,
        0x21, b.speeding_s,
        0x2D, b.harsh_brakes,
        0x35, b.harsh_accels,
        0x39, b.idle_s,
    )  # fmt: skip
    return _delimited(_T_BUCKETS, body)


def encode_state(st: VehicleState) -> bytes:
    """``st`` as a serialized ``fleetpipe.v1.VehicleState``."""
    head = _STATE_HEAD.pack(
        0x11, st.last_seq, 0x19, st.last_event_us, 0x21, st.last_seen_us, 0x2D, st.input_partition
    )
    ids = st.wire_ids
    if ids is None or ids[0] != st.fleet_id or ids[1] != st.driver_id:
        # Fields 1, 6 and 7 together: fields may come in any order on the wire.
        encoded = (
            _text(_T_VEHICLE_ID, st.vehicle_id)
            + _text(_T_FLEET_ID, st.fleet_id)
            + _text(_T_DRIVER_ID, st.driver_id)
        )
        ids = st.wire_ids = (st.fleet_id, st.driver_id, encoded)
    parts = [
        ids[2],
        head,
        _STATE_FIX.pack(0x41, st.lat, 0x49, st.lon, 0x55, st.speed_kmh, 0x58, st.ignition),
    ]
    if st.episodes:
        parts.extend(_episode(key, ep) for key, ep in st.episodes.items())
    if st.trip is not None:
        parts.append(_trip(st.trip))
    buckets = st.buckets
    if buckets:
        last = len(buckets) - 1
        for i, b in enumerate(buckets):
            if i == last:
                parts.append(_bucket(b))  # still filling: encode afresh
            else:
                wire = b.wire
                if wire is None:
                    wire = b.wire = _bucket(b)
                parts.append(wire)
    return b"".join(parts)
