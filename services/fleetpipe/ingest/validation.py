"""Validation of telemetry events: pure functions over protobuf messages, no I/O.

Each event gets at most one rejection, for the first field that fails, with the field's path and
a reason a person can act on. The valid range of every numeric field is in ``ranges.py``; a
field whose policy there is ``drop`` is removed instead, and the event kept. The checks read
attributes directly (the hot path: ingest reads each event once), and vehicle ids that passed
once are remembered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from google.protobuf.message import Message

from fleetpipe.ingest.ranges import (
    CHECKED,
    DROPPED,
    REJECTED,
    BatchRanges,
    compile_check,
    value_at,
)
from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2
from fleetpipe.registry import VEHICLE_ID_RE

MISSING = ingest_pb2.REJECT_CODE_MISSING_FIELD
OUT_OF_RANGE = ingest_pb2.REJECT_CODE_OUT_OF_RANGE
MALFORMED = ingest_pb2.REJECT_CODE_MALFORMED
FUTURE = ingest_pb2.REJECT_CODE_FUTURE_EVENT
NOT_FLEET_VEHICLE = ingest_pb2.REJECT_CODE_NOT_FLEET_VEHICLE

DEFAULT_MAX_LATENESS_US = 7 * 86_400_000_000

# Every range of the table in one generated function: the fast path for valid events. It also
# fails (0, 0), proto3's absent location, which the slow path tells from a real one.
_NONZERO = ("location.lat", "location.lon")
_within = compile_check(CHECKED, nonzero=_NONZERO)


def batch_ranges() -> BatchRanges:
    """The columnar range check of whole batches, with the same table as the per-event one."""
    return BatchRanges(CHECKED, nonzero=_NONZERO)


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
    # Accepted events kept without fields outside their range (see ranges.py): index -> paths.
    dropped: dict[int, tuple[str, ...]] = field(default_factory=dict)


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
    max_lateness_us: int = DEFAULT_MAX_LATENESS_US,
    in_range: Sequence[bool] | None = None,
    owners: Mapping[str, str] | None = None,
    reject_unknown: bool = False,
) -> Verdict:
    """Check every event of a batch for a caller bound to ``fleet_id``.

    One loop, each field read once: this runs for every event ingest receives. The first field
    that fails names the rejection; an event of another fleet stops the whole batch. Events
    older than ``max_lateness_us`` or more than ``max_future_us`` ahead of ``now_us`` (ingest's
    clock) are refused: a device clock in 1970 says nothing about when the reading was taken.
    ``in_range``, when given, is :data:`BATCH_RANGES`' answer for the whole batch, used instead
    of the per-event range check. ``owners`` maps each registered vehicle to its fleet (see
    ``tenancy.py``): a vehicle of another fleet is refused, and so is an unregistered one with
    ``reject_unknown``.
    """
    verdict = Verdict()
    accepted, keys, late = verdict.accepted, verdict.keys, verdict.late
    future_limit = now_us + max_future_us
    late_limit = now_us - late_after_us
    oldest = now_us - max_lateness_us
    known = ids.good
    within = _within
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
        if owners is not None:
            owner = owners.get(vid)
            if owner != fleet_id and (owner is not None or reject_unknown):
                verdict.rejected.append(_not_fleet_vehicle(i, vid, fleet_id))
                continue
        if not e.seq:
            verdict.rejected.append(Rejection(i, MISSING, "seq", "seq must be > 0 (from 1)"))
            continue
        t = e.event_time_us
        if not oldest <= t <= future_limit:
            verdict.rejected.append(_time_problem(i, t, now_us, max_lateness_us))
            continue
        if not (in_range[i] if in_range is not None else within(e)):
            problem = _range_problem(i, e)
            if isinstance(problem, Rejection):
                verdict.rejected.append(problem)
                continue
            verdict.dropped[i] = problem
        accepted.append(i)
        keys.append(vid)
        if t < late_limit:
            late.append(i)
    if verdict.no_fleet and verdict.rejected:
        gone = {r.index for r in verdict.rejected}
        verdict.no_fleet = [i for i in verdict.no_fleet if i not in gone]
    return verdict


def without_dropped(e: telemetry_pb2.Telemetry, paths: tuple[str, ...]) -> None:
    """Remove the dropped fields from ``e`` (in place) and list them in ``dropped_fields``."""
    for path in paths:
        *parents, name = path.split(".")
        target: Message = e
        for p in parents:
            target = getattr(target, p)
        target.ClearField(name)
    e.dropped_fields.extend(paths)


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


def _not_fleet_vehicle(i: int, vid: str, fleet_id: str) -> Rejection:
    # The same words whether the vehicle is another fleet's or nobody's: a caller learns
    # nothing of other fleets.
    return Rejection(
        i,
        NOT_FLEET_VEHICLE,
        "vehicle_id",
        f"vehicle_id {vid!r} is not a registered vehicle of fleet {fleet_id[:64]!r}",
    )


def _time_problem(i: int, t: int, now_us: int, max_lateness_us: int) -> Rejection:
    if t <= 0:
        return Rejection(i, MISSING, "event_time_us", "event_time_us is required (Unix µs)")
    if t > now_us:
        return Rejection(i, FUTURE, "event_time_us", f"event_time_us {t} is too far in the future")
    return Rejection(
        i,
        OUT_OF_RANGE,
        "event_time_us",
        f"event_time_us {t} is {(now_us - t) / 86_400e6:.1f} days before ingest's clock, "
        f"later than the maximum lateness ({max_lateness_us / 86_400e6:g} days): "
        "is the device clock set?",
    )


def _range_problem(i: int, e: telemetry_pb2.Telemetry) -> Rejection | tuple[str, ...]:
    """A missing location, the first rejected field out of range, or else the fields to drop."""
    if not e.HasField("location"):
        return Rejection(i, MISSING, "location", "location is required")
    for b in REJECTED:
        value = value_at(e, b.path)
        if not b.low <= value <= b.high:
            return Rejection(i, OUT_OF_RANGE, b.path, b.outside(value))
    dropped: dict[str, None] = {}
    for b in DROPPED:
        if not b.low <= value_at(e, b.path) <= b.high:
            dropped[b.drop_path] = None
    return tuple(dropped)
