"""Validation of telemetry events: pure functions over protobuf messages, no I/O.

Each event gets at most one rejection, for the first field that fails, with the field's path and
a reason a person can act on. The checks read attributes directly (the hot path: ingest reads
each event once), and vehicle ids that passed once are remembered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2
from fleetpipe.registry import VEHICLE_ID_RE

MISSING = ingest_pb2.REJECT_CODE_MISSING_FIELD
OUT_OF_RANGE = ingest_pb2.REJECT_CODE_OUT_OF_RANGE
MALFORMED = ingest_pb2.REJECT_CODE_MALFORMED
FUTURE = ingest_pb2.REJECT_CODE_FUTURE_EVENT

MAX_SPEED_KMH = 400.0


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    code: ingest_pb2.RejectCode
    field: str
    reason: str

    @property
    def code_name(self) -> str:
        """Short name for metrics and dead letters: missing_field, out_of_range, …"""
        return ingest_pb2.RejectCode.Name(self.code).removeprefix("REJECT_CODE_").lower()


@dataclass(slots=True)
class Verdict:
    """What to do with a batch: indexes of accepted events (with their vehicle ids, the Kafka
    keys), rejections, late ones, and accepted ones that did not name their fleet."""

    accepted: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    late: list[int] = field(default_factory=list)
    no_fleet: list[int] = field(default_factory=list)
    foreign_fleet: str | None = None  # an event claims another fleet than the caller's


class VehicleIdCheck:
    """Remembers well-formed vehicle ids, so the regular expression runs once per vehicle."""

    def __init__(self, max_size: int = 1_000_000) -> None:
        self.good: set[str] = set()
        self._max = max_size

    def ok(self, vehicle_id: str) -> bool:
        if vehicle_id in self.good:
            return True
        if not VEHICLE_ID_RE.match(vehicle_id):
            return False
        if len(self.good) >= self._max:
            self.good.clear()  # a bound on memory; refilled from live traffic
        self.good.add(vehicle_id)
        return True


def validate_batch(
    events: Sequence[telemetry_pb2.Telemetry],
    *,
    fleet_id: str,
    now_us: int,
    max_future_us: int,
    late_after_us: int,
    ids: VehicleIdCheck,
) -> Verdict:
    """Check every event of a batch for a caller bound to ``fleet_id``.

    One loop, each field read once: this runs for every event ingest receives. The first field
    that fails names the rejection; an event of another fleet stops the whole batch.
    """
    verdict = Verdict()
    accepted, keys, late = verdict.accepted, verdict.keys, verdict.late
    future_limit = now_us + max_future_us
    late_limit = now_us - late_after_us
    known = ids.good
    for i, e in enumerate(events):
        fleet = e.fleet_id
        if fleet != fleet_id:
            if fleet:
                verdict.foreign_fleet = fleet
                return verdict
            verdict.no_fleet.append(i)
        vid = e.vehicle_id
        if vid not in known and not ids.ok(vid):
            verdict.rejected.append(_vehicle_id_problem(i, vid))
            continue
        if not e.seq:
            verdict.rejected.append(Rejection(i, MISSING, "seq", "seq must be > 0 (from 1)"))
            continue
        t = e.event_time_us
        if not 0 < t <= future_limit:
            verdict.rejected.append(_time_problem(i, t))
            continue
        loc = e.location
        lat = loc.lat
        lon = loc.lon
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or (
            lat == 0.0 and lon == 0.0 and not e.HasField("location")
        ):
            verdict.rejected.append(_location_problem(i, e, lat, lon))
            continue
        speed = e.motion.speed_kmh
        fuel = e.engine.fuel_pct
        pct = e.battery.pct
        if not (0.0 <= speed <= MAX_SPEED_KMH and 0.0 <= fuel <= 100.0 and 0.0 <= pct <= 100.0):
            verdict.rejected.append(_range_problem(i, speed, fuel, pct))
            continue
        accepted.append(i)
        keys.append(vid)
        if t < late_limit:
            late.append(i)
    if verdict.no_fleet and verdict.rejected:
        gone = {r.index for r in verdict.rejected}
        verdict.no_fleet = [i for i in verdict.no_fleet if i not in gone]
    return verdict


# The slow paths: only for events that fail, so they may take their time to explain.


def _vehicle_id_problem(i: int, vid: str) -> Rejection:
    if not vid:
        return Rejection(i, MISSING, "vehicle_id", "vehicle_id is required")
    return Rejection(
        i,
        MALFORMED,
        "vehicle_id",
        f"vehicle_id {vid[:80]!r} must be 1-64 letters, digits or . _ : - "
        "and start with a letter or digit",
    )


def _time_problem(i: int, t: int) -> Rejection:
    if t <= 0:
        return Rejection(i, MISSING, "event_time_us", "event_time_us is required (Unix µs)")
    return Rejection(i, FUTURE, "event_time_us", f"event_time_us {t} is too far in the future")


def _location_problem(i: int, e: telemetry_pb2.Telemetry, lat: float, lon: float) -> Rejection:
    if not e.HasField("location"):
        return Rejection(i, MISSING, "location", "location is required")
    if not -90.0 <= lat <= 90.0:
        return Rejection(i, OUT_OF_RANGE, "location.lat", f"lat {lat} is outside -90..90")
    return Rejection(i, OUT_OF_RANGE, "location.lon", f"lon {lon} is outside -180..180")


def _range_problem(i: int, speed: float, fuel: float, pct: float) -> Rejection:
    if not 0.0 <= speed <= MAX_SPEED_KMH:
        return Rejection(
            i, OUT_OF_RANGE, "motion.speed_kmh", f"speed {speed} is outside 0..{MAX_SPEED_KMH:g}"
        )
    if not 0.0 <= fuel <= 100.0:
        return Rejection(i, OUT_OF_RANGE, "engine.fuel_pct", f"fuel {fuel} is outside 0..100")
    return Rejection(i, OUT_OF_RANGE, "battery.pct", f"battery {pct} is outside 0..100")
