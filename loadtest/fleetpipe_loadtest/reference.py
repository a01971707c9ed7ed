"""Reference readings of a simulated run: episodes and normal bounds computed from events alone.

Independent of the simulator's own bookkeeping, these recompute from the emitted columns when
each ground-truth predicate held (:func:`reference_episodes`) and how the run left the bounds of
normal driving (:func:`normal_violations`). Tests use them to check the ground truth; they also
show a detection engineer exactly how the predicates read the events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from fleetpipe.core.gearbox import expected_gears
from fleetpipe_loadtest.fleet import Fleet
from fleetpipe_loadtest.geo import haversine_m
from fleetpipe_loadtest.scenarios import (
    NORMAL,
    THRESHOLDS,
    GroundTruth,
    ScenarioKind,
    episodes,
)

Columns = dict[str, npt.NDArray[Any]]
Episodes = dict[tuple[str, str], list[tuple[int, int]]]

COLUMNS = (
    "vehicle", "seq", "event_time_us", "lat", "lon", "speed_kmh", "accel_x", "rpm", "gear",
    "fuel", "coolant", "ignition", "battery_pct", "charging", "sos", "crash", "perception",
    "p_distance", "p_closing",
)  # fmt: skip

# Stationary with the ignition on for longer than this counts as idling in the reference.
IDLING_REFERENCE_S = 120.0


@dataclass
class Run:
    """The columns of every event a fleet emitted over a stretch of simulated time."""

    fleet: Fleet
    cols: Columns

    def vehicles(self) -> Iterator[tuple[int, Columns]]:
        """Per vehicle (number, its columns in event-time order)."""
        order = np.lexsort((self.cols["event_time_us"], self.cols["vehicle"]))
        by_vehicle = {k: v[order] for k, v in self.cols.items()}
        nums, starts = np.unique(by_vehicle["vehicle"], return_index=True)
        bounds = [*starts.tolist(), len(order)]
        for j, num in enumerate(nums.tolist()):
            yield int(num), {k: v[bounds[j] : bounds[j + 1]] for k, v in by_vehicle.items()}

    def electric(self, num: int) -> bool:
        return bool(self.fleet.electric[num - int(self.fleet.numbers[0])])


def simulate(fleet: Fleet, seconds: float) -> Run:
    """Run the fleet for ``seconds`` of simulated time, keeping every event's columns."""
    return simulate_until(fleet, lambda _: False, max_s=seconds)


def simulate_until(
    fleet: Fleet, done: Callable[[Fleet], bool], *, max_s: float, check_every_s: float = 300.0
) -> Run:
    """Run until ``done(fleet)`` (checked every ``check_every_s``) or ``max_s`` have passed."""
    parts: dict[str, list[npt.NDArray[Any]]] = defaultdict(list)
    elapsed = 0.0
    while elapsed < max_s:
        step = min(check_every_s, max_s - elapsed)
        for tick in fleet.run(step):
            for name in COLUMNS:
                parts[name].append(np.asarray(getattr(tick, name)))
        elapsed += step
        if done(fleet):
            break
    return Run(fleet, {k: np.concatenate(v) for k, v in parts.items()})


def _ttc(c: Columns) -> npt.NDArray[np.float64]:
    closing = c["p_closing"].astype(np.float64)
    safe = np.where(closing > 0, closing, 1.0)
    return np.where(closing > 0, c["p_distance"].astype(np.float64) / safe, np.inf)


def reference_episodes(run: Run) -> Episodes:
    """(vehicle_id, kind) → the episodes in which the kind's predicate held, from the events."""
    th = THRESHOLDS
    fleet = run.fleet
    gap = int(fleet.dt_us * 1.5)
    polygon = shapely.Polygon(fleet.geofence())
    out: Episodes = {}
    for num, c in run.vehicles():
        vid = f"{fleet.fleet_id}-veh-{num:06d}"
        t = c["event_time_us"].tolist()
        preds = {
            ScenarioKind.SPEEDING: c["speed_kmh"] > th["speeding_kmh"],
            ScenarioKind.HARSH_BRAKING: c["accel_x"] <= th["harsh_braking_ms2"],
            ScenarioKind.HARSH_ACCELERATION: c["accel_x"] >= th["harsh_acceleration_ms2"],
            ScenarioKind.CRASH: c["crash"] | (c["accel_x"] <= th["crash_ms2"]),
            ScenarioKind.SOS: c["sos"],
            ScenarioKind.OVER_REVVING: c["rpm"] > th["over_revving_rpm"],
            ScenarioKind.COLLISION_RISK: c["perception"] & (_ttc(c) < th["collision_ttc_s"]),
            ScenarioKind.GEOFENCE_EXIT: ~shapely.contains_xy(polygon, c["lon"], c["lat"]),
        }
        if run.electric(num):
            preds[ScenarioKind.LOW_BATTERY] = (c["battery_pct"] < th["low_battery_pct"]) & ~c[
                "charging"
            ]
        else:
            preds[ScenarioKind.LOW_FUEL] = c["fuel"] < th["low_fuel_pct"]
            preds[ScenarioKind.OVERHEATING] = c["coolant"] > th["overheating_c"]
            preds[ScenarioKind.GEAR_MISMATCH] = c["ignition"] & (
                c["gear"] != expected_gears(c["speed_kmh"])
            )
        for kind, flags in preds.items():
            eps = episodes(t, flags.tolist(), max_gap_us=10**15)
            if eps:
                out[(vid, kind.value)] = eps
        idle = c["ignition"] & (c["speed_kmh"] == 0)
        long_idle = [
            (a, b)
            for a, b in episodes(t, idle.tolist(), max_gap_us=gap)
            if b - a > IDLING_REFERENCE_S * 1e6
        ]
        if long_idle:
            out[(vid, ScenarioKind.IDLING.value)] = long_idle
        times = c["event_time_us"]
        holes = np.flatnonzero(np.diff(times) > gap)
        if len(holes):
            out[(vid, ScenarioKind.OFFLINE.value)] = [
                (int(times[h]), int(times[h + 1])) for h in holes
            ]
    return out


def truth_episodes(truths: list[GroundTruth]) -> Episodes:
    out: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for g in sorted(truths, key=lambda g: g.start_us):
        out[(g.vehicle_id, g.kind)].append((g.start_us, g.end_us))
    return dict(out)


def normal_violations(run: Run) -> list[str]:
    """Every way the run leaves the bounds of normal driving (``NORMAL``), one line each."""
    fleet = run.fleet
    out: list[str] = []
    clat, clon = fleet.center
    for num, c in run.vehicles():

        def check(
            ok: npt.NDArray[np.bool_],
            what: str,
            values: npt.NDArray[Any],
            num: int = num,
        ) -> None:
            if not ok.all():
                bad = np.flatnonzero(~ok)
                out.append(f"vehicle {num}: {what} ({len(bad)} events, e.g. {values[bad[0]]!r})")

        check(c["speed_kmh"] <= NORMAL["max_speed_kmh"], "speed", c["speed_kmh"])
        check(np.abs(c["accel_x"]) <= NORMAL["max_abs_accel_ms2"], "accel_x", c["accel_x"])
        check(c["rpm"] <= NORMAL["max_rpm"], "rpm", c["rpm"])
        check(~c["sos"] & ~c["crash"], "alarm", c["sos"])
        if run.electric(num):
            check(c["battery_pct"] >= NORMAL["min_battery_pct"], "battery", c["battery_pct"])
            check(c["gear"] == 0, "gear of an electric vehicle", c["gear"])
            check(c["coolant"] <= 45, "coolant of an electric vehicle", c["coolant"])
        else:
            check(c["fuel"] >= NORMAL["min_fuel_pct"], "fuel", c["fuel"])
            check(c["coolant"] <= NORMAL["max_coolant_c"], "coolant", c["coolant"])
            check(c["gear"] == expected_gears(c["speed_kmh"]), "gear", c["gear"])
        ttc = _ttc(c)
        check(~c["perception"] | (ttc >= NORMAL["min_ttc_s"]), "time to collision", ttc)
        dist = np.array(
            [haversine_m(clat, clon, a, b) for a, b in zip(c["lat"], c["lon"], strict=True)]
        )
        check(dist <= NORMAL["route_radius_km"] * 1000 + 1, "distance from centre", dist)
        seq = c["seq"].astype(np.int64)
        check(seq == np.arange(1, len(seq) + 1), "seq", seq)
        steps = np.diff(c["event_time_us"])
        check(steps == fleet.dt_us, "event cadence", steps)
        idle = c["ignition"] & (c["speed_kmh"] == 0)
        t = c["event_time_us"].tolist()
        for a, b in episodes(t, idle.tolist(), max_gap_us=int(fleet.dt_us * 1.5)):
            if b - a > NORMAL["max_idle_s"] * 1e6:
                out.append(f"vehicle {num}: idling {(b - a) / 1e6:.0f} s")
    return out
