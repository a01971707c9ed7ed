"""Trips: the phases of one vehicle (driving a leg, stopped, parked) and what follows each.

A trip is a few legs between waypoints; each leg starts and ends at rest with a trapezoidal speed
profile (accelerate, cruise, brake to stop exactly at the waypoint). Between legs the vehicle
stops with the ignition on or makes a delivery stop with it off; after the trip it parks,
refuelling or charging first when low. These functions run on the slow path, for the few vehicles
whose phase changes in a tick; :class:`~fleetpipe_loadtest.fleet.Fleet` moves the others in bulk.

Scenarios begin at points of a trip (:class:`TripPoint`); the fleet says which one is due.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import TYPE_CHECKING

from fleetpipe_loadtest.geo import bearing_deg, destination, haversine_m
from fleetpipe_loadtest.rng import VehicleRng
from fleetpipe_loadtest.scenarios import Injection, ScenarioKind
from fleetpipe_loadtest.vehicles import VehicleType

if TYPE_CHECKING:
    from fleetpipe_loadtest.fleet import Fleet
    from fleetpipe_loadtest.injections import InjectedScenario

ROUTE_RADIUS_M = 9_000.0


class Mode(IntEnum):
    PARKED = 0  # ignition off
    DRIVING = 1
    STOPPED = 2  # stationary with the ignition on


# Plain ints for the per-tick code: an enum member lookup costs an attribute search each time.
PARKED, DRIVING, STOPPED = int(Mode.PARKED), int(Mode.DRIVING), int(Mode.STOPPED)


class NextPhase(IntEnum):
    """What a stopped or parked vehicle does when its stop ends."""

    DEPART = 0  # next leg of the trip
    RESUME = 1  # the rest of an interrupted leg
    TRIP = 2  # a new trip
    CHARGED = 3  # charging finished: stay parked a little
    REFUELLED = 4


class TripPoint(IntEnum):
    """The points of a trip at which a scenario may begin."""

    TRIP_START = 0
    DEPARTURE = 1
    CRUISE = 2
    STOP = 3
    PARK = 4


class VehicleState:
    """The slow-path state of one vehicle: its plan, its scenario, its random stream."""

    __slots__ = (
        "after",
        "charge_next",
        "cooldown_until",
        "injections",
        "keep_running",
        "legs_left",
        "mix",
        "num",
        "refuel_next",
        "resume",
        "rng",
        "route",
        "row",
        "scenario",
        "stop_then",
        "trip",
        "type",
    )

    def __init__(self, row: int, num: int, vtype: VehicleType, rng: VehicleRng) -> None:
        self.row = row
        self.num = num
        self.type = vtype
        self.rng = rng
        self.route: list[tuple[float, float]] = []
        self.legs_left = 0
        self.trip = 0
        self.after = NextPhase.TRIP
        self.resume: tuple[float, float] | None = None
        self.stop_then: tuple[str, float] | None = None  # what to do once a braking leg ends
        self.scenario: InjectedScenario | None = None
        self.cooldown_until = 0.0
        self.injections: list[Injection] = []
        self.mix: list[tuple[ScenarioKind, float]] = []
        self.keep_running = False  # during a scenario: no ignition-off stops, no trip end
        self.refuel_next = False
        self.charge_next = False


def transition(fleet: Fleet, v: VehicleState, t: float) -> None:
    """The vehicle's current phase has ended: arrive, or leave the stop for what follows it."""
    i = v.row
    mode = fleet.mode[i]
    if mode == DRIVING:
        _arrive(fleet, v, t)
        return
    after, v.after = v.after, NextPhase.DEPART
    fleet.fuel_rate[i] = fleet.battery_rate[i] = 0.0
    fleet.charging[i] = False
    if after == NextPhase.DEPART:
        _depart(fleet, v, t)
    elif after == NextPhase.RESUME:
        target, v.resume = v.resume, None
        assert target is not None
        # The interrupted leg still counts: arriving at its end completes it.
        v.route.insert(0, target)
        _depart(fleet, v, t)
    elif after == NextPhase.CHARGED:
        park(fleet, v, t, v.rng.uniform(60, 300), NextPhase.TRIP)
    elif after == NextPhase.REFUELLED:
        park(fleet, v, t, v.rng.uniform(60, 180), NextPhase.TRIP)
    else:
        _start_trip(fleet, v, t)


def _start_trip(fleet: Fleet, v: VehicleState, t: float) -> None:
    """A new trip of a few legs, from where the vehicle is parked."""
    v.trip += 1
    v.legs_left = v.rng.randint(*v.type.legs)
    v.route = []
    kind = fleet.scenario_due(v, TripPoint.TRIP_START, t)
    if kind is not None:
        fleet.begin_scenario(v, kind, t)
    _depart(fleet, v, t)


def _depart(fleet: Fleet, v: VehicleState, t: float) -> None:
    """The next leg from rest: to the planned waypoint, or a new one."""
    i, r = v.row, v.rng
    cruise_kmh = r.uniform(*v.type.cruise_kmh)
    accel = float(fleet.accel_rate[i])
    lat, lon = float(fleet.lat[i]), float(fleet.lon[i])
    kind = fleet.scenario_due(v, TripPoint.DEPARTURE, t)
    target: tuple[float, float] | None = None
    if kind is not None:
        # A scenario that starts at a departure shapes the leg: its speed, pace and length.
        scenario = fleet.begin_scenario(v, kind, t)
        cruise_kmh, accel = scenario.first_leg(cruise_kmh, accel)
        target = _waypoint(fleet, v, lat, lon, *scenario.first_leg_m)
    if target is None:
        target = v.route.pop(0) if v.route else _waypoint(fleet, v, lat, lon, 400, 2000)
    # The leg starts right after the previous tick, so this tick already shows motion.
    _leg(fleet, v, t - fleet.dt, target, cruise_kmh / 3.6, accel, float(fleet.brake_rate[i]))


def _leg(
    fleet: Fleet,
    v: VehicleState,
    t0: float,
    target: tuple[float, float],
    cruise_ms: float,
    accel: float,
    brake: float,
) -> None:
    """A leg from rest at the vehicle's position to ``target``, stopping there."""
    i = v.row
    lat0, lon0 = float(fleet.lat[i]), float(fleet.lon[i])
    length = max(haversine_m(lat0, lon0, *target), 5.0)
    vpk = cruise_ms
    da, db = vpk * vpk / (2 * accel), vpk * vpk / (2 * brake)
    if da + db > length:
        vpk = math.sqrt(length * 2 * accel * brake / (accel + brake))
        da, db = vpk * vpk / (2 * accel), vpk * vpk / (2 * brake)
    _set_segment(
        fleet, i, t0, (lat0, lon0), target, length, 0.0, vpk, accel, brake, da, length - da - db
    )


def brake_to_stop(fleet: Fleet, v: VehicleState, t: float, decel: float) -> float:
    """Replace the current leg by braking from the current speed; returns the braking time."""
    i = v.row
    v0 = max(float(fleet.v[i]), 0.1)
    length = v0 * v0 / (2 * decel)
    lat0, lon0 = float(fleet.lat[i]), float(fleet.lon[i])
    heading = bearing_deg(
        fleet.seg_lat0[i], fleet.seg_lon0[i], fleet.seg_lat1[i], fleet.seg_lon1[i]
    )
    end = destination(lat0, lon0, heading, length)
    _set_segment(fleet, i, t, (lat0, lon0), end, length, v0, v0, 1.0, decel, 0.0, 0.0)
    return v0 / decel


def _set_segment(
    fleet: Fleet,
    i: int,
    t0: float,
    start: tuple[float, float],
    end: tuple[float, float],
    length: float,
    v0: float,
    vpk: float,
    accel: float,
    brake: float,
    da: float,
    dc: float,
) -> None:
    """Set row ``i``'s trapezoidal speed profile: accelerate, cruise ``dc`` m, brake to stop."""
    dc = max(dc, 0.0)
    ta = (vpk - v0) / accel
    tc = dc / vpk if vpk > 0 else 0.0
    tb = vpk / brake
    fleet.seg_lat0[i], fleet.seg_lon0[i] = start
    fleet.seg_lat1[i], fleet.seg_lon1[i] = end
    fleet.seg_len[i] = length
    fleet.seg_v0[i], fleet.seg_vpk[i], fleet.seg_a[i], fleet.seg_b[i] = v0, vpk, accel, brake
    fleet.seg_ta[i], fleet.seg_tc[i], fleet.seg_tb[i] = ta, tc, tb
    fleet.seg_da[i], fleet.seg_dc[i], fleet.seg_t0[i] = da, dc, t0
    fleet.s_prev[i] = 0.0
    fleet.mode[i] = DRIVING
    fleet.next_change[i] = t0 + ta + tc + tb


def _arrive(fleet: Fleet, v: VehicleState, t: float) -> None:
    """The vehicle stops at the end of its leg; decide the stop, the park or the refill."""
    i = v.row
    # The last bit of the leg, between the previous tick and the stop.
    _use_energy_one(fleet, i, float(fleet.seg_len[i] - fleet.s_prev[i]))
    fleet.lat[i], fleet.lon[i] = fleet.seg_lat1[i], fleet.seg_lon1[i]
    fleet.s_prev[i] = 0.0
    fleet.v[i] = 0.0
    sc = v.scenario
    if sc is not None:
        sc.on_arrive(fleet, t)
    if v.stop_then is not None:
        what, duration = v.stop_then
        v.stop_then = None
        if what == "resume":
            stop(fleet, v, t, duration, NextPhase.RESUME)
        else:
            park(fleet, v, t, duration, NextPhase.TRIP)
        return
    if v.refuel_next and not v.type.electric:
        v.refuel_next = False
        park(fleet, v, t, (100.0 - float(fleet.fuel[i])) / 0.5, NextPhase.REFUELLED)
        fleet.fuel_rate[i] = 0.5
        return
    if v.charge_next and v.type.electric:
        v.charge_next = False
        _charge(fleet, v, t, 80.0)
        return
    v.legs_left -= 1
    if v.legs_left > 0 or v.keep_running:
        v.legs_left = max(v.legs_left, 1)
        kind = fleet.scenario_due(v, TripPoint.STOP, t)
        if kind is not None:
            fleet.begin_scenario(v, kind, t)  # the scenario sets up its own stop
            return
        r = v.rng
        if not v.keep_running and r.random() < v.type.delivery_share:
            park(fleet, v, t, r.uniform(60, 300), NextPhase.DEPART)
        else:
            stop(fleet, v, t, r.uniform(*v.type.stop_s), NextPhase.DEPART)
        return
    kind = fleet.scenario_due(v, TripPoint.PARK, t)
    if kind is not None:
        fleet.begin_scenario(v, kind, t)
        return
    if not v.type.electric and fleet.fuel[i] < 25.0:
        park(fleet, v, t, (100.0 - float(fleet.fuel[i])) / 0.5, NextPhase.REFUELLED)
        fleet.fuel_rate[i] = 0.5
    elif v.type.electric and fleet.battery[i] < 30.0:
        _charge(fleet, v, t, 90.0)
    else:
        park(fleet, v, t, v.rng.uniform(300, 1800), NextPhase.TRIP)


def _charge(fleet: Fleet, v: VehicleState, t: float, to_pct: float) -> None:
    """Park charging at 0.1 %/s up to ``to_pct``."""
    i = v.row
    park(fleet, v, t, max((to_pct - float(fleet.battery[i])) / 0.1, 1.0), NextPhase.CHARGED)
    fleet.charging[i] = True
    fleet.battery_rate[i] = 0.1


def _use_energy_one(fleet: Fleet, i: int, ds_m: float) -> None:
    """Fuel or battery, and odometer, for the last ``ds_m`` metres of one vehicle's leg."""
    km = max(ds_m, 0.0) / 1000.0
    fleet.odometer[i] += km
    use = km * fleet.energy_per_km[i] * fleet.use_mult[i]
    if fleet.electric[i]:
        fleet.battery[i] = max(0.0, fleet.battery[i] - use)
    else:
        fleet.fuel[i] = max(0.0, fleet.fuel[i] - use)


def stop(fleet: Fleet, v: VehicleState, t: float, duration: float, after: NextPhase) -> None:
    """Stand with the ignition on for ``duration`` seconds, then do ``after``."""
    i = v.row
    fleet.mode[i] = STOPPED
    v.after = after
    fleet.next_change[i] = t + duration


def park(fleet: Fleet, v: VehicleState, t: float, duration: float, after: NextPhase) -> None:
    """Park with the ignition off for ``duration`` seconds, then do ``after``."""
    i = v.row
    fleet.mode[i] = PARKED
    v.after = after
    fleet.next_change[i] = t + duration


def _waypoint(
    fleet: Fleet, v: VehicleState, lat: float, lon: float, lo_m: float, hi_m: float
) -> tuple[float, float]:
    """A point lo..hi metres away, kept within the route radius of the centre."""
    r = v.rng
    dist = r.uniform(lo_m, hi_m)
    p = destination(lat, lon, r.uniform(0, 360), dist)
    if haversine_m(*fleet.center, *p) > ROUTE_RADIUS_M:
        home = bearing_deg(lat, lon, *fleet.center)
        p = destination(lat, lon, home + r.uniform(-45, 45), dist)
    return p
