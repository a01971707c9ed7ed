"""What each injected scenario does to a vehicle, and when the fleet starts and ends one.

:mod:`fleetpipe_loadtest.scenarios` says what each scenario produces and how its ground truth is
judged; this module makes it happen. Every vehicle has at most one pending scenario: drawn from
the :class:`~fleetpipe_loadtest.scenarios.ScenarioMix` or taken from its explicit injections
(:class:`~fleetpipe_loadtest.scenarios.Injection`), it begins at the first point of a trip that
suits its kind (:data:`TRIP_POINT`) once due. While it runs, an :class:`InjectedScenario`
overrides the vehicle's sensor values after the normal model and records the event times at
which its ground-truth predicate holds; when it is done, the vehicle rests from scenarios for
:data:`COOLDOWN_S` before the next one is scheduled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import shapely

from fleetpipe.pb.v1 import telemetry_pb2
from fleetpipe_loadtest.arrays import F64, I64
from fleetpipe_loadtest.geo import bearing_deg, destination
from fleetpipe_loadtest.scenarios import IMPLIED_KINDS, THRESHOLDS, GroundTruth, ScenarioKind
from fleetpipe_loadtest.synthetic import vehicle_id
from fleetpipe_loadtest.trips import (
    DRIVING,
    PARKED,
    STOPPED,
    NextPhase,
    TripPoint,
    VehicleState,
    brake_to_stop,
    park,
    stop,
)
from fleetpipe_loadtest.vehicles import GEAR_UPPER_KMH_ARRAY, RPM_PER_KMH

if TYPE_CHECKING:
    from fleetpipe_loadtest.fleet import Fleet

# The point of a trip at which each kind begins.
TRIP_POINT: Mapping[ScenarioKind, TripPoint] = {
    ScenarioKind.GEOFENCE_EXIT: TripPoint.TRIP_START,
    ScenarioKind.LOW_FUEL: TripPoint.TRIP_START,
    ScenarioKind.LOW_BATTERY: TripPoint.TRIP_START,
    ScenarioKind.OVERHEATING: TripPoint.TRIP_START,
    ScenarioKind.SPEEDING: TripPoint.DEPARTURE,
    ScenarioKind.HARSH_ACCELERATION: TripPoint.DEPARTURE,
    ScenarioKind.OVER_REVVING: TripPoint.DEPARTURE,
    ScenarioKind.HARSH_BRAKING: TripPoint.CRUISE,
    ScenarioKind.CRASH: TripPoint.CRUISE,
    ScenarioKind.COLLISION_RISK: TripPoint.CRUISE,
    ScenarioKind.GEAR_MISMATCH: TripPoint.CRUISE,
    ScenarioKind.IDLING: TripPoint.STOP,
    ScenarioKind.SOS: TripPoint.STOP,
    ScenarioKind.OFFLINE: TripPoint.PARK,
}
_KINDS: tuple[ScenarioKind, ...] = tuple(ScenarioKind)
_KIND_INDEX = {k: i for i, k in enumerate(_KINDS)}
# Seconds of cruising a mid-leg scenario needs ahead of it.
_CRUISE_NEEDED_S = {
    ScenarioKind.HARSH_BRAKING: 1.0,
    ScenarioKind.CRASH: 1.0,
    ScenarioKind.COLLISION_RISK: 4.0,
    ScenarioKind.GEAR_MISMATCH: 21.0,
}
_CRUISE_MIN_MS = 25 / 3.6
COOLDOWN_S = 300.0

# --- scheduling ----------------------------------------------------------------------------------


def schedule_scenario(fleet: Fleet, v: VehicleState, t: float) -> None:
    """Pick the vehicle's next scenario and when it is due: its next injection, else a draw."""
    i = v.row
    fleet.pend_kind[i] = -1
    fleet.pend_due[i] = np.inf
    fleet.pend_cruise[i] = False
    kind: ScenarioKind | None = None
    earliest = max(t, v.cooldown_until)
    if v.injections:
        inj = v.injections.pop(0)
        kind, due = inj.kind, max(inj.at_s, earliest)
    elif v.mix:
        total = sum(rate for _, rate in v.mix)
        due = earliest + v.rng.expovariate(total / 3600.0)
        pick = v.rng.random() * total
        for kind, rate in v.mix:  # noqa: B007 - the loop picks `kind`
            pick -= rate
            if pick <= 0:
                break
    if kind is None:
        return
    fleet.pend_kind[i] = _KIND_INDEX[kind]
    fleet.pend_due[i] = due
    if TRIP_POINT[kind] == TripPoint.CRUISE:
        fleet.pend_cruise[i] = True
        fleet.pend_need[i] = _CRUISE_NEEDED_S[kind]


def scenario_due(fleet: Fleet, v: VehicleState, point: TripPoint, t: float) -> ScenarioKind | None:
    i = v.row
    k = int(fleet.pend_kind[i])
    if k < 0 or v.scenario is not None or fleet.pend_due[i] > t:
        return None
    kind = _KINDS[k]
    return kind if TRIP_POINT[kind] == point else None


def begin_cruise_scenarios(fleet: Fleet, t: float) -> None:
    """Begin the due mid-leg scenarios of vehicles cruising with enough of the leg left."""
    cand = fleet.pend_cruise & (fleet.pend_due <= t) & (fleet.mode == DRIVING)
    if not cand.any():
        return
    tau = t - fleet.seg_t0
    cruising = (
        (tau > fleet.seg_ta + 1.0)
        & (tau < fleet.seg_ta + fleet.seg_tc - fleet.pend_need)
        & (fleet.v >= _CRUISE_MIN_MS)
    )
    for i in np.flatnonzero(cand & cruising).tolist():
        v = fleet.vehicle_states[i]
        if v.scenario is None:
            begin_scenario(fleet, v, _KINDS[int(fleet.pend_kind[i])], t)


def begin_scenario(fleet: Fleet, v: VehicleState, kind: ScenarioKind, t: float) -> InjectedScenario:
    i = v.row
    fleet.pend_kind[i] = -1
    fleet.pend_due[i] = np.inf
    fleet.pend_cruise[i] = False
    sc = SCENARIO_CLASSES[kind](fleet, v, t)
    v.scenario = sc
    fleet.in_scenario.add(i)
    sc.start(fleet, t)
    return sc


def record_ground_truth(fleet: Fleet, t: float, event_time: I64) -> None:
    """Note this tick's events on which each running scenario holds; retire finished ones."""
    if not fleet.in_scenario:
        return
    finished = []
    for i in sorted(fleet.in_scenario):
        v = fleet.vehicle_states[i]
        sc = v.scenario
        assert sc is not None
        if fleet.emit[i]:
            et = int(event_time[i])
            for kind in sc.watch:
                if sc.holds(fleet, kind, i):
                    sc.seen(kind, et)
        if sc.done:
            finished.append(v)
    for v in finished:
        sc = v.scenario
        assert sc is not None
        truths = sc.truths(fleet)
        if not any(g.kind == sc.kind for g in truths):
            fleet.missed.append((vehicle_id(v.num, fleet.id_prefix), sc.kind))
        fleet.finished_truths.extend(truths)
        v.scenario = None
        v.keep_running = False
        fleet.in_scenario.discard(v.row)
        v.cooldown_until = t + COOLDOWN_S
        schedule_scenario(fleet, v, t)


# --- the scenarios -------------------------------------------------------------------------------


class InjectedScenario:
    """One scenario running on one vehicle; subclasses say what it does at each hook."""

    kind: ScenarioKind
    # How far the first leg of a scenario that begins at a departure goes (m).
    first_leg_m: tuple[float, float] = (600.0, 2000.0)

    def __init__(self, fleet: Fleet, v: VehicleState, t: float) -> None:
        self.v = v
        self.t0 = t
        self.done = False
        self.watch: tuple[ScenarioKind, ...] = (self.kind, *IMPLIED_KINDS.get(self.kind, ()))
        self.windows: dict[ScenarioKind, list[int]] = {}

    def start(self, fleet: Fleet, t: float) -> None:
        """Set the scenario up (called once, right after it is chosen)."""

    def first_leg(self, cruise_kmh: float, accel_ms2: float) -> tuple[float, float]:
        """The cruise speed and acceleration of the first leg, when begun at a departure."""
        return cruise_kmh, accel_ms2

    def step(self, fleet: Fleet, t: float) -> None:
        """Override this tick's sensor values of the vehicle (after the normal model ran)."""

    def on_arrive(self, fleet: Fleet, t: float) -> None:
        """The vehicle has just come to a stop at the end of a leg."""

    def holds(self, fleet: Fleet, kind: ScenarioKind, i: int) -> bool:
        return ground_truth_holds(fleet, kind, i)

    def seen(self, kind: ScenarioKind, event_time_us: int) -> None:
        w = self.windows.get(kind)
        if w is None:
            self.windows[kind] = [event_time_us, event_time_us]
        else:
            w[1] = event_time_us

    def truths(self, fleet: Fleet) -> list[GroundTruth]:
        vid = vehicle_id(self.v.num, fleet.id_prefix)
        return [
            GroundTruth(vid, kind.value, w[0], w[1], "" if kind == self.kind else self.kind.value)
            for kind, w in self.windows.items()
        ]


def ground_truth_holds(fleet: Fleet, kind: ScenarioKind, i: int) -> bool:
    """Whether row ``i``'s event of this tick meets ``kind``'s ground-truth predicate."""
    th = THRESHOLDS
    if kind == ScenarioKind.SPEEDING:
        return bool(fleet.o_speed[i] > th["speeding_kmh"])
    if kind == ScenarioKind.HARSH_BRAKING:
        return bool(fleet.o_ax[i] <= th["harsh_braking_ms2"])
    if kind == ScenarioKind.HARSH_ACCELERATION:
        return bool(fleet.o_ax[i] >= th["harsh_acceleration_ms2"])
    if kind == ScenarioKind.CRASH:
        return bool(fleet.o_crash[i] or fleet.o_ax[i] <= th["crash_ms2"])
    if kind == ScenarioKind.SOS:
        return bool(fleet.o_sos[i])
    if kind == ScenarioKind.LOW_FUEL:
        return bool(fleet.fuel[i] < th["low_fuel_pct"])
    if kind == ScenarioKind.LOW_BATTERY:
        return bool(fleet.battery[i] < th["low_battery_pct"] and not fleet.charging[i])
    if kind == ScenarioKind.OVERHEATING:
        return bool(fleet.coolant[i] > th["overheating_c"])
    if kind == ScenarioKind.OVER_REVVING:
        return bool(fleet.o_rpm[i] > th["over_revving_rpm"])
    if kind == ScenarioKind.GEAR_MISMATCH:
        gear = int(np.searchsorted(GEAR_UPPER_KMH_ARRAY, fleet.o_speed[i], side="right"))
        return int(fleet.o_gear[i]) != gear
    if kind == ScenarioKind.COLLISION_RISK:
        closing = float(fleet.o_pclosing[i])
        return bool(
            fleet.o_perc[i] and closing > 0 and fleet.o_pdist[i] / closing < th["collision_ttc_s"]
        )
    if kind == ScenarioKind.GEOFENCE_EXIT:
        return not bool(shapely.contains_xy(fleet.geofence_polygon, fleet.lon[i], fleet.lat[i]))
    raise AssertionError(f"no predicate for {kind}")


class _Speeding(InjectedScenario):
    kind = ScenarioKind.SPEEDING
    first_leg_m = (3000.0, 4000.0)

    def __init__(self, fleet: Fleet, v: VehicleState, t: float) -> None:
        super().__init__(fleet, v, t)
        self.cruise_kmh = v.rng.uniform(95, 110)

    def first_leg(self, cruise_kmh: float, accel_ms2: float) -> tuple[float, float]:
        return self.cruise_kmh, accel_ms2

    def on_arrive(self, fleet: Fleet, t: float) -> None:
        self.done = True


class _HarshAcceleration(InjectedScenario):
    kind = ScenarioKind.HARSH_ACCELERATION
    first_leg_m = (800.0, 2000.0)

    def first_leg(self, cruise_kmh: float, accel_ms2: float) -> tuple[float, float]:
        return cruise_kmh, 4.5

    def step(self, fleet: Fleet, t: float) -> None:
        i = self.v.row
        t0, ta = fleet.seg_t0[i], fleet.seg_ta[i]
        # The device reports the peak of each interval that overlaps the hard acceleration.
        if t > t0 and t - fleet.dt < t0 + ta:
            fleet.o_ax[i] = 4.5 + (self.v.rng.random() - 0.5) * 0.4
        elif t >= t0 + ta:
            self.done = True


class _OverRevving(InjectedScenario):
    kind = ScenarioKind.OVER_REVVING

    def __init__(self, fleet: Fleet, v: VehicleState, t: float) -> None:
        super().__init__(fleet, v, t)
        self.duration = v.rng.uniform(6, 10)

    def step(self, fleet: Fleet, t: float) -> None:
        # The driver pulls away revving hard before each shift; the gear stays the right one.
        if t > self.t0 + self.duration:
            self.done = True
            return
        fleet.o_rpm[self.v.row] = round(6200 + 600 * self.v.rng.random())


class _HarshBraking(InjectedScenario):
    kind = ScenarioKind.HARSH_BRAKING

    def start(self, fleet: Fleet, t: float) -> None:
        v = self.v
        i = v.row
        v.resume = (float(fleet.seg_lat1[i]), float(fleet.seg_lon1[i]))
        self.brake_s = brake_to_stop(fleet, v, t, 8.5)
        v.stop_then = ("resume", v.rng.uniform(5, 15))

    def step(self, fleet: Fleet, t: float) -> None:
        i = self.v.row
        if t > self.t0 and t - fleet.dt < self.t0 + self.brake_s:
            fleet.o_ax[i] = -8.5 + (self.v.rng.random() - 0.5) * 0.4
        elif t >= self.t0 + self.brake_s:
            self.done = True


class _Crash(InjectedScenario):
    kind = ScenarioKind.CRASH

    def start(self, fleet: Fleet, t: float) -> None:
        v = self.v
        i = v.row
        fleet.v[i] = 0.0
        park(fleet, v, t, v.rng.uniform(1200, 1800), NextPhase.TRIP)
        v.route, v.legs_left = [], 0
        r = v.rng
        sign = 1.0 if r.random() < 0.5 else -1.0
        self.spike = (-r.uniform(38, 48), sign * r.uniform(5, 12), r.uniform(10, 20))

    def step(self, fleet: Fleet, t: float) -> None:
        i = self.v.row
        if t == self.t0:
            ax, ay, dz = self.spike
            fleet.o_ax[i], fleet.o_ay[i], fleet.o_az[i] = ax, ay, 9.81 + dz
            fleet.o_speed[i] = 0.0
            fleet.o_ign[i] = True  # the engine dies after the impact, not before
            fleet.o_crash[i] = True
        elif t <= self.t0 + 30.0:
            fleet.o_crash[i] = True
        else:
            self.done = True


class _Sos(InjectedScenario):
    kind = ScenarioKind.SOS

    def start(self, fleet: Fleet, t: float) -> None:
        stop(fleet, self.v, t, self.v.rng.uniform(30, 60), NextPhase.DEPART)

    def step(self, fleet: Fleet, t: float) -> None:
        if fleet.mode[self.v.row] == STOPPED:
            fleet.o_sos[self.v.row] = True
        else:
            self.done = True


class _Idling(InjectedScenario):
    kind = ScenarioKind.IDLING

    def start(self, fleet: Fleet, t: float) -> None:
        stop(fleet, self.v, t, self.v.rng.uniform(480, 720), NextPhase.DEPART)

    def holds(self, fleet: Fleet, kind: ScenarioKind, i: int) -> bool:
        return bool(fleet.mode[i] == STOPPED and fleet.o_ign[i] and fleet.o_speed[i] == 0)

    def step(self, fleet: Fleet, t: float) -> None:
        if fleet.mode[self.v.row] != STOPPED:
            self.done = True


class _Offline(InjectedScenario):
    kind = ScenarioKind.OFFLINE

    def start(self, fleet: Fleet, t: float) -> None:
        v = self.v
        silence = v.rng.uniform(720, 900)
        self.until = t + silence
        self.last_before: int | None = None
        park(fleet, v, t, silence + v.rng.uniform(60, 600), NextPhase.TRIP)

    def step(self, fleet: Fleet, t: float) -> None:
        i = self.v.row
        if t <= self.t0:
            return  # the arrival is still reported; the device goes quiet from the next tick
        if self.last_before is None:
            self.last_before = int(fleet.last_emit_us[i])
        quiet = t <= self.until
        fleet.emit[i] = not quiet
        self.done = not quiet

    def holds(self, fleet: Fleet, kind: ScenarioKind, i: int) -> bool:
        return False

    def truths(self, fleet: Fleet) -> list[GroundTruth]:
        if not self.done or self.last_before is None:
            return []
        end = int(fleet.last_emit_us[self.v.row])  # the first event after the silence
        vid = vehicle_id(self.v.num, fleet.id_prefix)
        return [GroundTruth(vid, self.kind.value, self.last_before, end)]


class _GeofenceExit(InjectedScenario):
    kind = ScenarioKind.GEOFENCE_EXIT

    def start(self, fleet: Fleet, t: float) -> None:
        v, r = self.v, self.v.rng
        i = v.row
        clat, clon = fleet.center
        side = bearing_deg(clat, clon, float(fleet.lat[i]), float(fleet.lon[i])) + r.uniform(
            -20, 20
        )
        out1 = destination(clat, clon, side, r.uniform(17_500, 19_000))
        out2 = destination(clat, clon, side + r.uniform(4, 7), r.uniform(17_500, 19_000))
        back = destination(clat, clon, side + r.uniform(5, 10), r.uniform(3_000, 8_000))
        self.back = back
        v.route = [out1, out2, back]
        v.legs_left = 3 + r.randint(0, 2)
        v.keep_running = True

    def on_arrive(self, fleet: Fleet, t: float) -> None:
        i = self.v.row
        if (float(fleet.lat[i]), float(fleet.lon[i])) == self.back:
            self.done = True


class _CollisionRisk(InjectedScenario):
    kind = ScenarioKind.COLLISION_RISK

    def start(self, fleet: Fleet, t: float) -> None:
        r = self.v.rng
        self.object_class = (2, 3, 1)[r.randint(0, 2)]
        self.warned = False

    def step(self, fleet: Fleet, t: float) -> None:
        i = self.v.row
        # Perception frames are a second apart at most: a slower device reports one frame per
        # event, so the approach is seen in full at any rate.
        frame = round((t - self.t0) / fleet.dt) * min(fleet.dt, 1.0)
        if frame > 3.5 or not fleet.o_perc[i]:
            self.done = True
            return
        dist = 30.0 - 9.0 * frame
        fleet.o_pclass[i] = self.object_class
        fleet.o_pdist[i] = dist
        fleet.o_pclosing[i] = 9.0
        if not self.warned and dist / 9.0 < THRESHOLDS["collision_ttc_s"]:
            self.warned = True
            fleet.add_extras(
                i,
                driving_events=(
                    (telemetry_pb2.DRIVING_EVENT_KIND_INTERVENTION, "collision risk ahead"),
                ),
            )


class _GearMismatch(InjectedScenario):
    kind = ScenarioKind.GEAR_MISMATCH

    def __init__(self, fleet: Fleet, v: VehicleState, t: float) -> None:
        super().__init__(fleet, v, t)
        self.duration = v.rng.uniform(15, 20)

    def step(self, fleet: Fleet, t: float) -> None:
        i = self.v.row
        if t >= self.t0 + self.duration or fleet.mode[i] != DRIVING:
            self.done = True
            return
        gear = min(int(fleet.o_gear[i]) + 2, 6)
        fleet.o_gear[i] = gear
        fleet.o_rpm[i] = round(800 + fleet.o_speed[i] * RPM_PER_KMH[gear])


class _RunningLow(InjectedScenario):
    """Low fuel or low battery, which differ only in the gauge and how the vehicle refills.

    From a trip start the level reads just above the alarm and drains fast until
    ``refill_at_pct``; the vehicle then refills at the end of that leg. The scenario ends once
    the level is back at 20 %.
    """

    start_pct: tuple[float, float]
    refill_at_pct: float

    def level(self, fleet: Fleet) -> F64:
        """The fleet's column of this gauge (read anew each time: the fleet replaces it)."""
        raise NotImplementedError

    def ask_to_refill(self) -> None:
        """Have the vehicle refuel or charge at the end of its current leg."""
        raise NotImplementedError

    def start(self, fleet: Fleet, t: float) -> None:
        v = self.v
        i = v.row
        self.level(fleet)[i] = v.rng.uniform(*self.start_pct)
        fleet.use_mult[i] = 1.6 / float(fleet.energy_per_km[i])
        v.keep_running = True
        self.refilling = False

    def step(self, fleet: Fleet, t: float) -> None:
        i = self.v.row
        if not self.refilling and self.level(fleet)[i] <= self.refill_at_pct:
            self.refilling = True
            fleet.use_mult[i] = 1.0
            self.ask_to_refill()
        if self.refilling and self.level(fleet)[i] >= 20.0:
            self.done = True


class _LowFuel(_RunningLow):
    kind = ScenarioKind.LOW_FUEL
    start_pct = (13.0, 14.0)
    refill_at_pct = 7.0

    def level(self, fleet: Fleet) -> F64:
        return fleet.fuel

    def ask_to_refill(self) -> None:
        self.v.refuel_next = True


class _LowBattery(_RunningLow):
    kind = ScenarioKind.LOW_BATTERY
    start_pct = (17.0, 17.5)
    refill_at_pct = 12.0

    def level(self, fleet: Fleet) -> F64:
        return fleet.battery

    def ask_to_refill(self) -> None:
        self.v.charge_next = True


class _Overheating(InjectedScenario):
    kind = ScenarioKind.OVERHEATING

    def start(self, fleet: Fleet, t: float) -> None:
        self.v.keep_running = True
        self.temp = float(fleet.coolant[self.v.row])
        self.peak = fleet.overheat_peak_c
        self.phase = "ramp"
        self.hold_until = 0.0

    def step(self, fleet: Fleet, t: float) -> None:
        v = self.v
        i = v.row
        dt = fleet.dt
        if self.phase == "ramp":
            if fleet.mode[i] != PARKED:
                self.temp = min(self.peak, self.temp + 1.0 * dt)
            if self.temp >= self.peak:
                self.phase, self.hold_until = "hold", t + 30.0
        elif self.phase == "hold":
            if t >= self.hold_until:
                self.phase = "pull_over"
                v.keep_running = False
                v.route, v.legs_left = [], 0
                if fleet.mode[i] == DRIVING:
                    brake_to_stop(fleet, v, t, float(fleet.brake_rate[i]))
                    v.stop_then = ("park", v.rng.uniform(1200, 1800))
                else:
                    park(fleet, v, t, v.rng.uniform(1200, 1800), NextPhase.TRIP)
        else:
            if fleet.mode[i] == PARKED:
                self.temp = max(95.0, self.temp - 0.5 * dt)
            if self.temp <= 95.0:
                self.done = True
        fleet.coolant[i] = self.temp
        if self.temp > THRESHOLDS["overheating_c"]:
            fleet.add_extras(i, dtc_codes=("P0217",))


SCENARIO_CLASSES: Mapping[ScenarioKind, type[InjectedScenario]] = {
    ScenarioKind.SPEEDING: _Speeding,
    ScenarioKind.HARSH_ACCELERATION: _HarshAcceleration,
    ScenarioKind.OVER_REVVING: _OverRevving,
    ScenarioKind.HARSH_BRAKING: _HarshBraking,
    ScenarioKind.CRASH: _Crash,
    ScenarioKind.SOS: _Sos,
    ScenarioKind.IDLING: _Idling,
    ScenarioKind.OFFLINE: _Offline,
    ScenarioKind.GEOFENCE_EXIT: _GeofenceExit,
    ScenarioKind.COLLISION_RISK: _CollisionRisk,
    ScenarioKind.GEAR_MISMATCH: _GearMismatch,
    ScenarioKind.LOW_FUEL: _LowFuel,
    ScenarioKind.LOW_BATTERY: _LowBattery,
    ScenarioKind.OVERHEATING: _Overheating,
}
