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

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from fleetpipe.core.protowire import delimited, tag, tag_byte
from fleetpipe.detection.state import Episode, ScoreBucket, TripProgress, VehicleState
from fleetpipe.pb.v1 import state_pb2

# struct codes of the fixed-width field types. An enum or a bool is a varint, one byte while
# its value is below 128: true of both here (an episode's phase is 0..3).
_CODES = {
    FieldDescriptor.TYPE_SFIXED64: "q",
    FieldDescriptor.TYPE_FIXED64: "Q",
    FieldDescriptor.TYPE_DOUBLE: "d",
    FieldDescriptor.TYPE_SFIXED32: "i",
    FieldDescriptor.TYPE_FIXED32: "I",
    FieldDescriptor.TYPE_FLOAT: "f",
    FieldDescriptor.TYPE_BOOL: "B",
    FieldDescriptor.TYPE_ENUM: "B",
}


def _fixed(message: type[Message], *names: str) -> tuple[struct.Struct, tuple[int, ...]]:
    """A struct packing ``names`` of ``message`` as (tag, value) pairs, and their tags.

    Both come from the descriptor: the struct is the fields' wire layout, so a field that
    changes type or number in state.proto changes the encoder with it.
    """
    fields = message.DESCRIPTOR.fields_by_name
    layout = "".join("B" + _CODES[fields[name].type] for name in names)
    return struct.Struct("<" + layout), tuple(tag_byte(message, name) for name in names)


_STATE = state_pb2.VehicleState
_STATE_HEAD, (_LAST_SEQ, _LAST_EVENT, _LAST_SEEN, _INPUT_PARTITION) = _fixed(
    _STATE, "last_seq", "last_event_us", "last_seen_us", "input_partition"
)
_STATE_FIX, (_LAT, _LON, _SPEED, _IGNITION) = _fixed(_STATE, "lat", "lon", "speed_kmh", "ignition")
_EPISODE, (_E_PHASE, _E_SINCE, _E_START, _E_PEAK, _E_UPDATE, _E_START_SEQ) = _fixed(
    state_pb2.EpisodeState, "phase", "since_us", "start_us", "peak", "last_update_us", "start_seq"
)
_TRIP, _TRIP_TAGS = _fixed(
    state_pb2.TripProgress,
    "start_us", "start_seq", "start_lat", "start_lon", "distance_km", "idle_s",
    "max_speed_kmh", "harsh_brakes", "harsh_accels", "speeding_s", "stopped_since_us",
    "stop_idle_s",
)  # fmt: skip
(
    _T_START, _T_START_SEQ, _T_START_LAT, _T_START_LON, _T_DISTANCE, _T_IDLE, _T_MAX_SPEED,
    _T_BRAKES, _T_ACCELS, _T_SPEEDING, _T_STOPPED, _T_STOP_IDLE,
) = _TRIP_TAGS  # fmt: skip
_BUCKET, (_B_START, _B_DISTANCE, _B_DRIVING, _B_SPEEDING, _B_BRAKES, _B_ACCELS, _B_IDLE) = _fixed(
    state_pb2.ScoreBucket,
    "start_us", "distance_km", "driving_s", "speeding_s", "harsh_brakes", "harsh_accels",
    "idle_s",
)  # fmt: skip

_VEHICLE_ID = tag(_STATE, "vehicle_id")
_FLEET_ID = tag(_STATE, "fleet_id")
_DRIVER_ID = tag(_STATE, "driver_id")
_EPISODES = tag(_STATE, "episodes")
_TRIP_FIELD = tag(_STATE, "trip")
_BUCKETS = tag(_STATE, "buckets")
_EPISODE_KEY = tag(state_pb2.EpisodeState, "key")
_TRIP_HINT = tag(state_pb2.TripProgress, "hint")


def _text(tag: bytes, text: str) -> bytes:
    return delimited(tag, text.encode())


def _episode(key: str, ep: Episode) -> bytes:
    body = _text(_EPISODE_KEY, key) + _EPISODE.pack(
        _E_PHASE, ep.phase,
        _E_SINCE, ep.since_us,
        _E_START, ep.start_us,
        _E_PEAK, ep.peak,
        _E_UPDATE, ep.last_update_us,
        _E_START_SEQ, ep.start_seq,
    )  # fmt: skip
    return delimited(_EPISODES, body)


def _trip(trip: TripProgress) -> bytes:
    body = _TRIP.pack(
        _T_START, trip.start_us,
        _T_START_SEQ, trip.start_seq,
        _T_START_LAT, trip.start_lat,
        _T_START_LON, trip.start_lon,
        _T_DISTANCE, trip.distance_km,
        _T_IDLE, trip.idle_s,
        _T_MAX_SPEED, trip.max_speed_kmh,
        _T_BRAKES, trip.harsh_brakes,
        _T_ACCELS, trip.harsh_accels,
        _T_SPEEDING, trip.speeding_s,
        _T_STOPPED, trip.stopped_since_us,
        _T_STOP_IDLE, trip.stop_idle_s,
    )  # fmt: skip
    return delimited(_TRIP_FIELD, body + _text(_TRIP_HINT, trip.hint))


def _bucket(b: ScoreBucket) -> bytes:
    body = _BUCKET.pack(
        _B_START, b.start_us,
        _B_DISTANCE, b.distance_km,
        _B_DRIVING, b.driving_s,
        _B_SPEEDING, b.speeding_s,
        _B_BRAKES, b.harsh_brakes,
        _B_ACCELS, b.harsh_accels,
        _B_IDLE, b.idle_s,
    )  # fmt: skip
    return delimited(_BUCKETS, body)


def encode_state(st: VehicleState) -> bytes:
    """``st`` as a serialized ``fleetpipe.v1.VehicleState``."""
    head = _STATE_HEAD.pack(
        _LAST_SEQ, st.last_seq,
        _LAST_EVENT, st.last_event_us,
        _LAST_SEEN, st.last_seen_us,
        _INPUT_PARTITION, st.input_partition,
    )  # fmt: skip
    ids = st.wire_ids
    if ids is None or ids[0] != st.fleet_id or ids[1] != st.driver_id:
        # The three ids together, first: fields may come in any order on the wire.
        encoded = (
            _text(_VEHICLE_ID, st.vehicle_id)
            + _text(_FLEET_ID, st.fleet_id)
            + _text(_DRIVER_ID, st.driver_id)
        )
        ids = st.wire_ids = (st.fleet_id, st.driver_id, encoded)
    parts = [
        ids[2],
        head,
        _STATE_FIX.pack(_LAT, st.lat, _LON, st.lon, _SPEED, st.speed_kmh, _IGNITION, st.ignition),
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
