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
    """What to do with a batch: indexes of accepted events, rejections, late ones."""

    accepted: list[int] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    late: list[int] = field(default_factory=list)
    foreign_fleet: str | None = None  # an event claims another fleet than the caller's


class VehicleIdCheck:
    """Remembers well-formed vehicle ids, so the regular expression runs once per vehicle."""

    def __init__(self, max_size: int = 1_000_000) -> None:
        self._good: set[str] = set()
        self._max = max_size

    def ok(self, vehicle_id: str) -> bool:
        if vehicle_id in self._good:
            return True
        if not VEHICLE_ID_RE.match(vehicle_id):
            return False
        if len(self._good) >= self._max:
            self._good.clear()  # a bound on memory; refilled from live traffic
        self._good.add(vehicle_id)
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
    """Check every event of a batch for a caller bound to ``fleet_id``."""
    verdict = Verdict()
    accepted, rejected, late = verdict.accepted, verdict.rejected, verdict.late
    future_limit = now_us + max_future_us
    late_limit = now_us - late_after_us
    for i, e in enumerate(events):
        fleet = e.fleet_id
        if fleet and fleet != fleet_id:
            verdict.foreign_fleet = fleet
            return verdict
        problem = _check(e, future_limit, ids)
        if problem is not None:
            code, path, reason = problem
            rejected.append(Rejection(i, code, path, reason))
            continue
        accepted.append(i)
        if e.event_time_us < late_limit:
            late.append(i)
    return verdict


def _check(
    e: telemetry_pb2.Telemetry, future_limit: int, ids: VehicleIdCheck
) -> tuple[ingest_pb2.RejectCode, str, str] | None:
    vid = e.vehicle_id
    if not vid:
        return MISSING, "vehicle_id", "vehicle_id is required"
    if not ids.ok(vid):
        return (
            MALFORMED,
            "vehicle_id",
            f"vehicle_id {vid[:80]!r} must be 1-64 letters, digits or . _ : - "
            "and start with a letter or digit",
        )
    if not e.seq:
        return MISSING, "seq", "seq must be > 0 (sequence numbers start at 1)"
    t = e.event_time_us
    if t <= 0:
        return MISSING, "event_time_us", "event_time_us is required (Unix microseconds)"
    if t > future_limit:
        return FUTURE, "event_time_us", f"event_time_us {t} is too far in the future"
    loc = e.location
    lat, lon = loc.lat, loc.lon
    if lat == 0.0 and lon == 0.0 and not e.HasField("location"):
        return MISSING, "location", "location is required"
    if not -90.0 <= lat <= 90.0:
        return OUT_OF_RANGE, "location.lat", f"lat {lat} is outside -90..90"
    if not -180.0 <= lon <= 180.0:
        return OUT_OF_RANGE, "location.lon", f"lon {lon} is outside -180..180"
    speed = e.motion.speed_kmh
    if not 0.0 <= speed <= MAX_SPEED_KMH:
        return OUT_OF_RANGE, "motion.speed_kmh", f"speed {speed} is outside 0..{MAX_SPEED_KMH:g}"
    fuel = e.engine.fuel_pct
    if not 0.0 <= fuel <= 100.0:
        return OUT_OF_RANGE, "engine.fuel_pct", f"fuel {fuel} is outside 0..100"
    pct = e.battery.pct
    if not 0.0 <= pct <= 100.0:
        return OUT_OF_RANGE, "battery.pct", f"battery {pct} is outside 0..100"
    return None
