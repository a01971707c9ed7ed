"""Per-vehicle detection state in memory, and its compact form on the changelog (state.proto).

Plain slotted objects on the hot path (an attribute of a slotted object costs a fraction of a
protobuf field access); encoded as ``fleetpipe.v1.VehicleState`` once per vehicle per batch by
``wire.encode_state``, read back by the protobuf runtime. ``to_proto`` is the runtime's own
rendering of the same state, the reference the encoder is tested against.
"""

from __future__ import annotations

from fleetpipe.pb.v1 import state_pb2

PENDING = state_pb2.EPISODE_PHASE_PENDING
OPEN = state_pb2.EPISODE_PHASE_OPEN
CLEARING = state_pb2.EPISODE_PHASE_CLEARING


class Episode:
    """One rule's episode on one vehicle (see ``EpisodeState`` in state.proto)."""

    __slots__ = ("last_update_us", "peak", "phase", "since_us", "start_seq", "start_us")

    def __init__(
        self,
        phase: int,
        since_us: int,
        start_us: int,
        peak: float,
        start_seq: int,
        last_update_us: int = 0,
    ) -> None:
        self.phase = phase
        self.since_us = since_us
        self.start_us = start_us
        self.peak = peak
        self.start_seq = start_seq
        self.last_update_us = last_update_us

    def __repr__(self) -> str:
        return (
            f"Episode(phase={self.phase}, since_us={self.since_us}, start_us={self.start_us}, "
            f"peak={self.peak})"
        )


class TripProgress:
    __slots__ = (
        "distance_km",
        "harsh_accels",
        "harsh_brakes",
        "hint",
        "idle_s",
        "max_speed_kmh",
        "speeding_s",
        "start_lat",
        "start_lon",
        "start_seq",
        "start_us",
        "stop_idle_s",
        "stopped_since_us",
    )

    def __init__(
        self, start_us: int, start_seq: int, start_lat: float, start_lon: float, hint: str = ""
    ) -> None:
        self.start_us = start_us
        self.start_seq = start_seq
        self.start_lat = start_lat
        self.start_lon = start_lon
        self.distance_km = 0.0
        self.idle_s = 0.0
        self.max_speed_kmh = 0.0
        self.harsh_brakes = 0
        self.harsh_accels = 0
        self.speeding_s = 0.0
        self.stopped_since_us = 0
        self.stop_idle_s = 0.0
        self.hint = hint


class ScoreBucket:
    __slots__ = (
        "distance_km",
        "driving_s",
        "harsh_accels",
        "harsh_brakes",
        "idle_s",
        "speeding_s",
        "start_us",
        "wire",
    )

    def __init__(self, start_us: int) -> None:
        self.wire: bytes | None = None  # the encoding, once the bucket is closed (wire.py)
        self.start_us = start_us
        self.distance_km = 0.0
        self.driving_s = 0.0
        self.speeding_s = 0.0
        self.harsh_brakes = 0
        self.harsh_accels = 0
        self.idle_s = 0.0


class VehicleState:
    __slots__ = (
        "buckets",
        "driver_id",
        "episodes",
        "fleet_id",
        "home_partition",
        "ignition",
        "input_partition",
        "last_event_us",
        "last_seen_us",
        "last_seq",
        "lat",
        "lon",
        "refreshed",
        "speed_kmh",
        "trip",
        "vehicle_id",
        "wire_ids",
    )

    def __init__(self, vehicle_id: str, *, home_partition: int = -1) -> None:
        self.vehicle_id = vehicle_id
        self.last_seq = 0
        self.last_event_us = 0
        self.last_seen_us = 0
        self.input_partition = -1
        self.fleet_id = ""
        self.driver_id = ""
        self.lat = 0.0
        self.lon = 0.0
        self.speed_kmh = 0.0
        self.ignition = False
        self.episodes: dict[str, Episode] = {}
        self.trip: TripProgress | None = None
        self.buckets: list[ScoreBucket] = []
        # Not persisted: the input partition the producers' partitioner maps this vehicle to
        # at the current partition count (-1 when unknown), and whether this copy was re-read
        # from the changelog after the vehicle moved partitions (see the detector).
        self.home_partition = home_partition
        self.refreshed = False
        # (fleet_id, driver_id, their encoding with the vehicle id), kept by wire.encode_state.
        self.wire_ids: tuple[str, str, bytes] | None = None

    # -- changelog form ----------------------------------------------------------------------
    def to_proto(self) -> state_pb2.VehicleState:
        msg = state_pb2.VehicleState(
            vehicle_id=self.vehicle_id,
            last_seq=self.last_seq,
            last_event_us=self.last_event_us,
            last_seen_us=self.last_seen_us,
            input_partition=self.input_partition,
            fleet_id=self.fleet_id,
            driver_id=self.driver_id,
            lat=self.lat,
            lon=self.lon,
            speed_kmh=self.speed_kmh,
            ignition=self.ignition,
        )
        if self.episodes:
            msg.episodes.extend(
                state_pb2.EpisodeState(
                    key=key,
                    phase=ep.phase,  # type: ignore[arg-type]
                    since_us=ep.since_us,
                    start_us=ep.start_us,
                    peak=ep.peak,
                    last_update_us=ep.last_update_us,
                    start_seq=ep.start_seq,
                )
                for key, ep in self.episodes.items()
            )
        trip = self.trip
        if trip is not None:
            msg.trip.CopyFrom(
                state_pb2.TripProgress(
                    start_us=trip.start_us,
                    start_seq=trip.start_seq,
                    start_lat=trip.start_lat,
                    start_lon=trip.start_lon,
                    distance_km=trip.distance_km,
                    idle_s=trip.idle_s,
                    max_speed_kmh=trip.max_speed_kmh,
                    harsh_brakes=trip.harsh_brakes,
                    harsh_accels=trip.harsh_accels,
                    speeding_s=trip.speeding_s,
                    stopped_since_us=trip.stopped_since_us,
                    stop_idle_s=trip.stop_idle_s,
                    hint=trip.hint,
                )
            )
        if self.buckets:
            msg.buckets.extend(
                state_pb2.ScoreBucket(
                    start_us=b.start_us,
                    distance_km=b.distance_km,
                    driving_s=b.driving_s,
                    speeding_s=b.speeding_s,
                    harsh_brakes=b.harsh_brakes,
                    harsh_accels=b.harsh_accels,
                    idle_s=b.idle_s,
                )
                for b in self.buckets
            )
        return msg

    @classmethod
    def from_proto(cls, msg: state_pb2.VehicleState, *, home_partition: int = -1) -> VehicleState:
        st = cls(msg.vehicle_id, home_partition=home_partition)
        st.last_seq = msg.last_seq
        st.last_event_us = msg.last_event_us
        st.last_seen_us = msg.last_seen_us
        st.input_partition = msg.input_partition
        st.fleet_id = msg.fleet_id
        st.driver_id = msg.driver_id
        st.lat = msg.lat
        st.lon = msg.lon
        st.speed_kmh = msg.speed_kmh
        st.ignition = msg.ignition
        for e in msg.episodes:
            st.episodes[e.key] = Episode(
                e.phase, e.since_us, e.start_us, e.peak, e.start_seq, e.last_update_us
            )
        if msg.HasField("trip"):
            t = msg.trip
            trip = TripProgress(t.start_us, t.start_seq, t.start_lat, t.start_lon, t.hint)
            trip.distance_km = t.distance_km
            trip.idle_s = t.idle_s
            trip.max_speed_kmh = t.max_speed_kmh
            trip.harsh_brakes = t.harsh_brakes
            trip.harsh_accels = t.harsh_accels
            trip.speeding_s = t.speeding_s
            trip.stopped_since_us = t.stopped_since_us
            trip.stop_idle_s = t.stop_idle_s
            st.trip = trip
        for b in msg.buckets:
            bucket = ScoreBucket(b.start_us)
            bucket.distance_km = b.distance_km
            bucket.driving_s = b.driving_s
            bucket.speeding_s = b.speeding_s
            bucket.harsh_brakes = b.harsh_brakes
            bucket.harsh_accels = b.harsh_accels
            bucket.idle_s = b.idle_s
            st.buckets.append(bucket)
        return st

    @classmethod
    def from_bytes(cls, data: bytes, *, home_partition: int = -1) -> VehicleState:
        return cls.from_proto(
            state_pb2.VehicleState.FromString(data), home_partition=home_partition
        )
