"""Sliding event-time windows of fleet KPIs, per input partition. No I/O.

Time is cut into *panes*, one hop long; a window is ``size / hop`` consecutive panes, and a new
window ends at every pane boundary. Each vehicle keeps what it did per pane (samples, speed sum
and maximum, smallest and largest odometer reading, alerts opened per rule), so a window's
figures are combined from its panes when it closes, and nothing is counted twice however the
windows overlap.

The watermark of an input partition is the newest event time the telemetry topic has shown on
it (an event time ahead of the event's ingest time counts as its ingest time: a device clock
running fast must not close windows early). Only the telemetry topic moves it: its order on a
partition is the order the stage reads it in, again after a restart, so what is emitted and
what is too late depend on the input alone, not on how records were batched or how the two
topics interleaved. Alerts lag their events by detection's delay, which the allowed lateness
covers.

A window ``[start, end)`` is emitted when the watermark reaches ``end + lateness``. An event is
*too late* when a window it belongs to has been emitted already — it is then more than the
allowed lateness (and at most one hop more) behind the watermark — and it counts nowhere.

When a partition's telemetry has been quiet for ``idle`` of processing time, its event time is
taken to go on at the pace of the clock, so the last windows of a fleet that stops reporting
are emitted too. That is the one step decided by the clock rather than the input.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

FLEET = "fleet"
MODEL = "model"
VEHICLE_TYPE = "vehicle_type"


@dataclass(frozen=True, slots=True)
class WindowSpec:
    size_us: int
    hop_us: int
    lateness_us: int
    idle_us: int

    def __post_init__(self) -> None:
        if self.hop_us <= 0 or self.size_us <= 0:
            raise ValueError("window size and hop must be positive")
        if self.size_us % self.hop_us:
            raise ValueError(
                f"the window ({self.size_us} µs) must be a whole number of hops ({self.hop_us} µs)"
            )
        if self.lateness_us < 0 or self.idle_us <= 0:
            raise ValueError("lateness must be ≥ 0 and idle > 0")

    def pane_of(self, t_us: int) -> int:
        return t_us // self.hop_us * self.hop_us

    def first_end(self, t_us: int) -> int:
        """The end of the earliest window holding an event at ``t_us``."""
        return self.pane_of(t_us) + self.hop_us


class Pane:
    """What one vehicle did in one pane of event time."""

    __slots__ = ("alerts", "odometer_max", "odometer_min", "samples", "speed_max", "speed_sum")

    def __init__(self) -> None:
        self.samples = 0
        self.speed_sum = 0.0
        self.speed_max = 0.0
        self.odometer_min = 0.0  # 0: no odometer reading in the pane
        self.odometer_max = 0.0
        self.alerts: dict[str, int] = {}

    def add_sample(self, speed_kmh: float, odometer_km: float) -> None:
        self.samples += 1
        self.speed_sum += speed_kmh
        if self.samples == 1 or speed_kmh > self.speed_max:
            self.speed_max = speed_kmh
        if odometer_km > 0:
            if self.odometer_min == 0 or odometer_km < self.odometer_min:
                self.odometer_min = odometer_km
            self.odometer_max = max(self.odometer_max, odometer_km)


@dataclass(slots=True)
class VehicleWindows:
    """One vehicle's panes not yet past every window, and the groups it counts in."""

    vehicle_id: str
    fleet_id: str
    partition: int
    model: str = ""
    vehicle_type: str = ""
    panes: dict[int, Pane] = field(default_factory=dict)

    def pane(self, start_us: int) -> Pane:
        found = self.panes.get(start_us)
        if found is None:
            found = self.panes[start_us] = Pane()
        return found

    def groups(self) -> Iterator[tuple[str, str, str]]:
        """(fleet, dimension, value): the fleet, and its model and type when the registry
        names them (a vehicle unknown to the registry counts in its fleet only)."""
        yield self.fleet_id, FLEET, self.fleet_id
        if self.model:
            yield self.fleet_id, MODEL, self.model
        if self.vehicle_type:
            yield self.fleet_id, VEHICLE_TYPE, self.vehicle_type


@dataclass(slots=True)
class PartitionProgress:
    """Where one input partition's windows stand."""

    partition: int
    next_end_us: int = 0  # windows ending before it are emitted; 0: no telemetry seen yet
    newest_us: int = 0  # the telemetry's newest event time (capped by ingest time)
    quiet_since: float = 0.0  # processing time of the last telemetry record (not persisted)

    def watermark(self, spec: WindowSpec, now: float) -> int:
        idle_for_us = int((now - self.quiet_since) * 1e6) - spec.idle_us
        return self.newest_us + max(0, idle_for_us)


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """One emitted window's figures for one group, over one partition's vehicles."""

    start_us: int
    end_us: int
    fleet_id: str
    dimension: str
    value: str
    partition: int
    active_vehicles: int = 0
    distance_km: float = 0.0
    max_speed_kmh: float = 0.0
    speed_sum_kmh: float = 0.0
    speed_samples: int = 0
    alerts: tuple[tuple[str, int], ...] = ()


class _Group:
    __slots__ = ("active", "alerts", "distance", "max_speed", "samples", "speed_sum")

    def __init__(self) -> None:
        self.active = 0
        self.distance = 0.0
        self.max_speed = 0.0
        self.speed_sum = 0.0
        self.samples = 0
        self.alerts: dict[str, int] = {}


def _vehicle_window(
    vehicle: VehicleWindows, starts: Iterable[int]
) -> tuple[int, float, float, float, dict[str, int]] | None:
    """(samples, speed sum, max speed, distance, alerts) of one vehicle in one window."""
    samples, speed_sum, speed_max = 0, 0.0, 0.0
    low, high = 0.0, 0.0
    alerts: dict[str, int] = {}
    seen = False
    for start in starts:
        pane = vehicle.panes.get(start)
        if pane is None:
            continue
        seen = True
        if pane.samples:
            speed_max = pane.speed_max if samples == 0 else max(speed_max, pane.speed_max)
            samples += pane.samples
            speed_sum += pane.speed_sum
        if pane.odometer_max > 0:
            low = pane.odometer_min if low == 0 else min(low, pane.odometer_min)
            high = max(high, pane.odometer_max)
        for rule, n in pane.alerts.items():
            alerts[rule] = alerts.get(rule, 0) + n
    if not seen:
        return None
    return samples, speed_sum, speed_max, high - low, alerts


class PartitionWindows:
    """The vehicles of one input partition and the windows still open on it."""

    def __init__(self, spec: WindowSpec, progress: PartitionProgress) -> None:
        self.spec = spec
        self.progress = progress
        self.vehicles: dict[str, VehicleWindows] = {}

    def vehicle(self, vehicle_id: str, fleet_id: str) -> VehicleWindows:
        found = self.vehicles.get(vehicle_id)
        if found is None:
            found = VehicleWindows(vehicle_id, fleet_id, self.progress.partition)
            self.vehicles[vehicle_id] = found
        elif fleet_id:
            found.fleet_id = fleet_id
        return found

    def too_late(self, t_us: int) -> bool:
        """Whether a window holding an event at ``t_us`` has been emitted."""
        next_end = self.progress.next_end_us
        return next_end != 0 and self.spec.first_end(t_us) < next_end

    def observe_time(self, t_us: int, ingest_us: int, now: float) -> None:
        """A telemetry event at ``t_us`` moves the watermark (the first one places the
        windows: the earliest still open is the first ending past it minus the lateness)."""
        clock = min(t_us, ingest_us) if ingest_us > 0 else t_us
        progress = self.progress
        if progress.next_end_us == 0:
            progress.next_end_us = self.spec.first_end(clock - self.spec.lateness_us)
            progress.newest_us = clock
        elif clock > progress.newest_us:
            progress.newest_us = clock
        progress.quiet_since = now

    def due(self, now: float) -> bool:
        progress = self.progress
        return progress.next_end_us != 0 and (
            progress.watermark(self.spec, now) >= progress.next_end_us + self.spec.lateness_us
        )

    def emit_due(self, now: float) -> tuple[list[WindowFigures], set[str], set[str]]:
        """Every window the watermark has passed (with the lateness), oldest first; the
        vehicles whose panes changed, and those left with none (their state can go)."""
        out: list[WindowFigures] = []
        changed: set[str] = set()
        gone: set[str] = set()
        spec = self.spec
        while self.due(now):
            end = self.progress.next_end_us
            if not self.vehicles:
                # Nothing held: every due window is empty; go straight past them.
                passed = self.progress.watermark(spec, now) - spec.lateness_us
                self.progress.next_end_us = max(end, spec.pane_of(passed)) + spec.hop_us
                continue
            out.extend(self._figures(end))
            self.progress.next_end_us = end + spec.hop_us
            # Panes before the next window's start are in no window still to come.
            keep_from = end + spec.hop_us - spec.size_us
            for vid, vehicle in list(self.vehicles.items()):
                old = [s for s in vehicle.panes if s < keep_from]
                if not old:
                    continue
                for start in old:
                    del vehicle.panes[start]
                changed.add(vid)
                if not vehicle.panes:
                    del self.vehicles[vid]
                    gone.add(vid)
        return out, changed - gone, gone

    def _figures(self, end: int) -> list[WindowFigures]:
        spec = self.spec
        start = end - spec.size_us
        starts = range(start, end, spec.hop_us)
        groups: dict[tuple[str, str, str], _Group] = {}
        # In vehicle order, so that a restored stage adds the same floats in the same order.
        for vid in sorted(self.vehicles):
            vehicle = self.vehicles[vid]
            found = _vehicle_window(vehicle, starts)
            if found is None:
                continue
            samples, speed_sum, speed_max, distance, alerts = found
            for key in vehicle.groups():
                group = groups.get(key)
                if group is None:
                    group = groups[key] = _Group()
                if samples:
                    group.active += 1
                    group.max_speed = (
                        speed_max if group.samples == 0 else max(group.max_speed, speed_max)
                    )
                    group.samples += samples
                    group.speed_sum += speed_sum
                    group.distance += distance
                for rule, n in alerts.items():
                    group.alerts[rule] = group.alerts.get(rule, 0) + n
        return [
            WindowFigures(
                start_us=start,
                end_us=end,
                fleet_id=fleet,
                dimension=dimension,
                value=value,
                partition=self.progress.partition,
                active_vehicles=g.active,
                distance_km=g.distance,
                max_speed_kmh=g.max_speed,
                speed_sum_kmh=g.speed_sum,
                speed_samples=g.samples,
                alerts=tuple(sorted(g.alerts.items())),
            )
            for (fleet, dimension, value), g in sorted(groups.items())
        ]
