"""The fleet simulator: N vehicles driving believable trips, one telemetry event per tick each.

A :class:`Fleet` advances a simulated clock in ticks of ``1 / rate_hz`` seconds; it never reads the
wall clock, so a test can simulate hours in seconds. Every tick, every vehicle that is online
emits one event (``seq`` from 1, strictly increasing; ``event_time_us`` = start + tick × period +
a fixed per-vehicle phase within the period).

The model, per vehicle:

- **Trips**: from where it is parked, a trip of a few legs between waypoints (400 m – 2 km apart,
  within 9 km of the fleet's centre). Each leg starts and ends at rest: it accelerates at the
  vehicle's rate, cruises at a speed drawn from its type's range, and brakes comfortably to stop
  exactly at the waypoint (a trapezoidal speed profile; position is the haversine progress along
  the leg, heading its bearing). Between legs it stops 10–90 s with the ignition on (traffic,
  pick-ups) or makes a delivery stop with the ignition off; after the trip it parks 5–30 min.
- **Energy**: fuel use per km by type plus idling use; refuelling at trip end below 25 %. Electric
  vehicles use battery per km and charge at trip end below 30 %. Odometer from the distance.
- **Engine**: coolant warms towards 88–94 °C with the engine running and cools to ambient when
  off; gear is :func:`~fleetpipe.core.gearbox.expected_gear` of the reported speed and
  rpm follows the gear (electric vehicles report gear 0 and rpm 0, and fuel 0).
- **Sensors**: small noise on speed, acceleration, heading, altitude and GPS accuracy, from a
  counter-based hash of (seed, vehicle, tick): the same vehicle produces the same events whether
  it is simulated alone, in a shard or in the whole fleet.
- **Robotaxis** (type ``robotaxi``) report perception (nearest object, distance, closing speed)
  while the ignition is on, and driving events (disengagements about every 40 km, interventions
  about every 80 km), as in the self-driving seed.

Scenarios (speeding, crash, SOS, …) are injected at random (:class:`ScenarioMix`) or explicitly
(:class:`Injection`); what each produces and the bounds of normal driving are documented in
:mod:`fleetpipe_loadtest.scenarios`. The registry of the fleet's vehicles (type, model, driver,
E.164 phone numbers) comes from :meth:`Fleet.registry`.

Cheap by design: the state lives in numpy arrays and a tick is a few hundred vectorised
operations; only the vehicles that change phase (a few per cent per tick) run Python code.
:mod:`fleetpipe_loadtest.wire` turns a tick into protobuf bytes without building messages.

This module is the vectorised step; the rest lives beside it: the vehicle catalogue in
:mod:`~fleetpipe_loadtest.vehicles`, the phase changes of a trip (the slow path) in
:mod:`~fleetpipe_loadtest.trips`, the injected scenarios in :mod:`~fleetpipe_loadtest.injections`,
the hashing in :mod:`~fleetpipe_loadtest.rng` and a tick's columns in
:mod:`~fleetpipe_loadtest.ticks`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from fleetpipe.pb.v1 import telemetry_pb2
from fleetpipe.registry import Vehicle, write_csv
from fleetpipe_loadtest.arrays import F64, I64, U64, Flags
from fleetpipe_loadtest.geo import destination, regular_polygon
from fleetpipe_loadtest.injections import (
    InjectedScenario,
    begin_cruise_scenarios,
    begin_scenario,
    record_ground_truth,
    scenario_due,
    schedule_scenario,
)
from fleetpipe_loadtest.rng import (
    VehicleRng,
    fleet_key,
    mix64,
    tick_hashes,
    uniform_channel,
    vehicle_hashes,
)
from fleetpipe_loadtest.scenarios import GroundTruth, Injection, ScenarioKind, ScenarioMix
from fleetpipe_loadtest.synthetic import vehicle_id
from fleetpipe_loadtest.ticks import Extras, Tick
from fleetpipe_loadtest.trips import DRIVING, PARKED, NextPhase, TripPoint, VehicleState, transition
from fleetpipe_loadtest.vehicles import (
    GEAR_UPPER_KMH_ARRAY,
    RPM_PER_KMH,
    VEHICLE_TYPE_INDEX,
    VEHICLE_TYPES,
    registry_entry,
)

__all__ = [
    "DEFAULT_CENTER",
    "DEFAULT_START_US",
    "GEOFENCE_RADIUS_M",
    "GEOFENCE_SIDES",
    "Fleet",
    # Named here for fleetpipe_loadtest.wire, which is being replaced; new code imports
    # it from fleetpipe_loadtest.ticks.
    "Tick",
]

# 2025-01-01T00:00:00Z: the default start of the simulated clock (deterministic runs).
DEFAULT_START_US = 1_735_689_600_000_000
DEFAULT_CENTER = (52.3676, 4.9041)
GEOFENCE_RADIUS_M = 15_000.0
GEOFENCE_SIDES = 16

_OBJECT_CLASSES = np.array([1, 1, 1, 1, 1, 1, 1, 2, 3, 4], dtype=np.int64)
_DISENGAGE_REASONS = ("planner uncertainty", "sensor degraded", "construction zone", "map mismatch")
_INTERVENE_REASONS = ("pedestrian close", "unexpected lane change", "emergency vehicle")


class Fleet:
    """N vehicles of one fleet, simulated tick by tick. See the module docstring.

    ``shard=(k, n)`` simulates only the k-th of n contiguous slices of the vehicles, producing
    exactly the events the whole fleet would produce for them: one process or stream per shard.
    """

    def __init__(
        self,
        vehicles: int,
        *,
        seed: int = 1,
        fleet_id: str = "fleet-1",
        start_time_us: int = DEFAULT_START_US,
        rate_hz: float = 1.0,
        center: tuple[float, float] = DEFAULT_CENTER,
        mix: Mapping[str, float] | None = None,
        scenarios: ScenarioMix | None = None,
        injections: Sequence[Injection] = (),
        shard: tuple[int, int] = (0, 1),
        overheat_peak_c: float = 215.0,
        id_prefix: str | None = None,
    ) -> None:
        if vehicles < 1 or vehicles > 999_999:
            raise ValueError(f"vehicles must be 1..999999, not {vehicles}")
        if not 0 < rate_hz <= 100:
            raise ValueError(f"rate_hz must be in (0, 100], not {rate_hz}")
        # The wire encoder writes event_time_us as an 8-byte varint: 1987 ≤ time < 2284.
        if not 1 << 49 <= start_time_us < (1 << 56) - 10**15:
            raise ValueError(f"start_time_us {start_time_us} is not a plausible Unix time in µs")
        k, nshards = shard
        if not 0 <= k < nshards:
            raise ValueError(f"shard {shard}: expected (k, n) with 0 ≤ k < n")
        if len(fleet_id) > 100 or not fleet_id:
            raise ValueError("fleet_id must be 1..100 characters")
        self.fleet_id = fleet_id
        # Vehicle ids are "<id_prefix>-veh-NNNNNN"; a load run gives each run a prefix of its
        # own, so that its vehicles (and their seqs from 1) never meet an earlier run's.
        self.id_prefix = id_prefix or fleet_id
        self.seed = seed
        self.rate_hz = rate_hz
        self.dt = 1.0 / rate_hz
        self.dt_us = round(1e6 / rate_hz)
        self.start_time_us = start_time_us
        self.center = center
        self.total_vehicles = vehicles
        self.overheat_peak_c = overheat_peak_c
        self.scenario_mix = scenarios or ScenarioMix({})
        self.tick_index = 0
        self.missed: list[tuple[str, ScenarioKind]] = []  # scenarios whose predicate never held
        self.finished_truths: list[GroundTruth] = []
        self.geofence_polygon = shapely.Polygon(self.geofence())
        self.in_scenario: set[int] = set()  # rows of vehicles in a scenario
        first = 1 + k * vehicles // nshards
        last = (k + 1) * vehicles // nshards
        self.numbers: I64 = np.arange(first, last + 1, dtype=np.int64)
        n = self.n = len(self.numbers)
        self._seed_key = fleet_key(seed)
        self._init_static(mix)
        self._init_state()
        self.vehicle_states = [
            VehicleState(
                i,
                int(num),
                VEHICLE_TYPES[int(self.vtype[i])],
                VehicleRng.for_vehicle(self._seed_key, int(num)),
            )
            for i, num in enumerate(self.numbers)
        ]
        by_num = {v.num: v for v in self.vehicle_states}
        for inj in sorted(injections, key=lambda j: j.at_s):
            if inj.vehicle in by_num:
                by_num[inj.vehicle].injections.append(inj)
        for v in self.vehicle_states:
            v.mix = self.scenario_mix.applicable(
                electric=v.type.electric, perception=v.type.perception, heavy=v.type.heavy
            )
            self._place(v)
            schedule_scenario(self, v, 0.0)
        assert n == len(self.vehicle_states)

    # --- set-up -------------------------------------------------------------------------------

    def _hash(self, channel: int) -> U64:
        return vehicle_hashes(self._seed_key, self.numbers, channel)

    def _init_static(self, mix: Mapping[str, float] | None) -> None:
        shares = dict(mix) if mix is not None else {t.name: t.share for t in VEHICLE_TYPES}
        unknown = set(shares) - set(VEHICLE_TYPE_INDEX)
        if unknown:
            raise ValueError(f"unknown vehicle type(s) in mix: {', '.join(sorted(unknown))}")
        weights = np.array([max(0.0, shares.get(t.name, 0.0)) for t in VEHICLE_TYPES])
        if weights.sum() <= 0:
            raise ValueError("the vehicle mix must give some vehicle type a positive share")
        cum = np.cumsum(weights / weights.sum())
        h0, h1 = self._hash(1), self._hash(2)
        u = [uniform_channel(h0, c) for c in range(6)] + [uniform_channel(h1, c) for c in range(6)]
        t = np.minimum(np.searchsorted(cum, u[0], side="right"), len(cum) - 1).astype(np.int64)
        self.vtype: I64 = t
        types = VEHICLE_TYPES
        self.electric: Flags = np.array([vt.electric for vt in types], dtype=bool)[t]
        self.has_perception: Flags = np.array([vt.perception for vt in types], dtype=bool)[t]
        acc = np.array([vt.accel_ms2 for vt in types], dtype=np.float64)[t]
        brk = np.array([vt.brake_ms2 for vt in types], dtype=np.float64)[t]
        self.accel_rate: F64 = acc[:, 0] + u[1] * (acc[:, 1] - acc[:, 0])
        self.brake_rate: F64 = brk[:, 0] + u[2] * (brk[:, 1] - brk[:, 0])
        self.energy_per_km: F64 = np.array([vt.energy_pct_per_km for vt in types])[t]
        self.alt_base: F64 = 2.0 + 25.0 * u[3]
        self.ambient: F64 = 12.0 + 12.0 * u[4]
        self.offset_us: I64 = (u[5] * self.dt_us).astype(np.int64)
        self.battery12: F64 = 88.0 + 11.0 * u[6]
        self.p_phase: F64 = u[7]
        self._hbase = self._hash(3)
        self.id_bytes = np.array(
            [vehicle_id(int(x), self.id_prefix).encode() for x in self.numbers]
        )

    def _init_state(self) -> None:
        n = self.n

        def z() -> F64:
            return np.zeros(n, dtype=np.float64)

        self.mode = np.zeros(n, dtype=np.int8)
        self.lat, self.lon, self.heading_deg = z(), z(), z()
        self.seg_lat0, self.seg_lon0, self.seg_lat1, self.seg_lon1 = z(), z(), z(), z()
        self.seg_len, self.seg_v0, self.seg_vpk, self.seg_a, self.seg_b = z(), z(), z(), z(), z()
        self.seg_ta, self.seg_tc, self.seg_tb = z(), z(), z()
        self.seg_da, self.seg_dc, self.seg_t0 = z(), z(), z()
        self.seg_len += 1.0
        self.s_prev, self.v, self.v_prev = z(), z(), z()
        self.fuel, self.battery, self.coolant, self.odometer = z(), z(), z(), z()
        self.fuel_rate, self.battery_rate = z(), z()
        self.use_mult = np.ones(n)
        self.charging = np.zeros(n, dtype=bool)
        self.next_change = z()
        self.seq = np.zeros(n, dtype=np.uint64)
        self.emit = np.ones(n, dtype=bool)
        self.last_emit_us = np.zeros(n, dtype=np.int64)
        self.pend_kind = np.full(n, -1, dtype=np.int16)
        self.pend_due = np.full(n, np.inf)
        self.pend_cruise = np.zeros(n, dtype=bool)
        self.pend_need = z()
        # Sensor outputs of the current tick (kept for scenario overrides and ground truth).
        self.o_speed, self.o_ax, self.o_ay, self.o_az = z(), z(), z(), z()
        self.o_rpm = np.zeros(n, dtype=np.int64)
        self.o_gear = np.zeros(n, dtype=np.int64)
        self.o_ign = np.zeros(n, dtype=bool)
        self.o_sos = np.zeros(n, dtype=bool)
        self.o_crash = np.zeros(n, dtype=bool)
        self.o_pclass = np.zeros(n, dtype=np.int64)
        self.o_pdist, self.o_pclosing = z(), z()
        self.o_perc = np.zeros(n, dtype=bool)
        self.o_acc, self.o_alt = z(), z()
        self.extras: dict[int, Extras] = {}

    def _place(self, v: VehicleState) -> None:
        """Park the vehicle at its depot with a random state; most start a trip soon."""
        i, r = v.row, v.rng
        lat, lon = destination(*self.center, r.uniform(0, 360), 6000 * math.sqrt(r.random()))
        self.lat[i], self.lon[i] = lat, lon
        self.heading_deg[i] = r.uniform(0, 360)
        self.fuel[i] = 0.0 if v.type.electric else r.uniform(30, 100)
        self.battery[i] = r.uniform(35, 95) if v.type.electric else self.battery12[i]
        self.coolant[i] = self.ambient[i] + r.uniform(0, 15 if v.type.electric else 40)
        self.odometer[i] = r.uniform(5_000, 150_000)
        self.mode[i] = PARKED
        v.after = NextPhase.TRIP
        self.next_change[i] = r.uniform(0, 60) if r.random() < 0.6 else r.uniform(0, 900)

    # --- public API ---------------------------------------------------------------------------

    @property
    def now_s(self) -> float:
        """Simulated seconds since the start, of the next tick."""
        return self.tick_index * self.dt

    def geofence(self) -> list[tuple[float, float]]:
        """The operating area as a closed (lon, lat) ring: a 16-gon of radius 15 km."""
        return regular_polygon(*self.center, GEOFENCE_RADIUS_M, GEOFENCE_SIDES)

    def registry(self) -> list[Vehicle]:
        """The registry rows of this fleet's (or shard's) vehicles, drivers with E.164 numbers."""
        return [
            registry_entry(v.num, v.type, fleet_id=self.fleet_id, id_prefix=self.id_prefix)
            for v in self.vehicle_states
        ]

    def write_registry(self, path: Path) -> None:
        write_csv(self.registry(), path)

    def ground_truth(self, *, include_active: bool = False) -> list[GroundTruth]:
        """Episodes of finished scenarios; ``include_active`` adds running ones, cut at now."""
        out = list(self.finished_truths)
        if include_active:
            for v in self.vehicle_states:
                if v.scenario is not None:
                    out.extend(v.scenario.truths(self))
        return out

    def run(self, seconds: float) -> Iterator[Tick]:
        """The ticks of the next ``seconds`` of simulated time."""
        for _ in range(round(seconds * self.rate_hz)):
            yield self.tick()

    def events(self, seconds: float) -> Iterator[telemetry_pb2.Telemetry]:
        """Messages of the next ``seconds`` (the slow path, for tests and tools)."""
        for tick in self.run(seconds):
            yield from tick.messages()

    # --- one tick -----------------------------------------------------------------------------

    def tick(self) -> Tick:
        k = self.tick_index
        t = k * self.dt
        due = np.flatnonzero(self.next_change <= t)
        for i in due.tolist():
            v = self.vehicle_states[i]
            for _ in range(8):  # a vehicle may pass through several instant phases
                if self.next_change[i] > t:
                    break
                transition(self, v, t)
        self._kinematics(t)
        begin_cruise_scenarios(self, t)
        self._sensors(k, t)
        for v in self._vehicles_in_scenarios():
            assert v.scenario is not None
            v.scenario.step(self, t)
        self.seq += self.emit
        event_time = self.start_time_us + k * self.dt_us + self.offset_us
        self.last_emit_us = np.where(self.emit, event_time, self.last_emit_us)
        record_ground_truth(self, t, event_time)
        tick = self._collect(k, event_time)
        self.v_prev = self.v.copy()
        self.tick_index += 1
        return tick

    def _vehicles_in_scenarios(self) -> list[VehicleState]:
        return [self.vehicle_states[i] for i in sorted(self.in_scenario)]

    def _kinematics(self, t: float) -> None:
        driving = self.mode == DRIVING
        tau = np.clip(t - self.seg_t0, 0.0, self.seg_ta + self.seg_tc + self.seg_tb)
        ta, tc, b = self.seg_ta, self.seg_tc, self.seg_b
        in_a = tau < ta
        in_c = ~in_a & (tau < ta + tc)
        tb = np.clip(tau - ta - tc, 0.0, self.seg_tb)
        v = np.where(
            in_a,
            self.seg_v0 + self.seg_a * tau,
            np.where(in_c, self.seg_vpk, self.seg_vpk - b * tb),
        )
        s = np.where(
            in_a,
            self.seg_v0 * tau + 0.5 * self.seg_a * tau * tau,
            np.where(
                in_c,
                self.seg_da + self.seg_vpk * (tau - ta),
                self.seg_da + self.seg_dc + self.seg_vpk * tb - 0.5 * b * tb * tb,
            ),
        )
        s = np.minimum(s, self.seg_len)
        self.v = np.where(driving, np.maximum(v, 0.0), 0.0)
        ds = np.where(driving, np.maximum(s - self.s_prev, 0.0), 0.0)
        self.s_prev = np.where(driving, s, self.s_prev)
        f = np.where(driving, s / self.seg_len, 0.0)
        self.lat = np.where(driving, self.seg_lat0 + f * (self.seg_lat1 - self.seg_lat0), self.lat)
        self.lon = np.where(driving, self.seg_lon0 + f * (self.seg_lon1 - self.seg_lon0), self.lon)
        self._use_energy(ds)
        # Coolant: towards its running temperature with the engine on, to ambient when off.
        ign = self.mode != PARKED
        load = np.minimum(self.v / 15.0, 1.0)
        target = np.where(
            ign, np.where(self.electric, 30.0 + 8.0 * load, 88.0 + 6.0 * load), self.ambient
        )
        k_on = np.where(self.electric, 1 - math.exp(-self.dt / 300), 1 - math.exp(-self.dt / 150))
        kk = np.where(ign, k_on, 1 - math.exp(-self.dt / 1500))
        self.coolant += (target - self.coolant) * kk

    def _use_energy(self, ds_m: F64) -> None:
        km = ds_m / 1000.0
        self.odometer += km
        ign = self.mode != PARKED
        use = km * self.energy_per_km * self.use_mult + np.where(ign, 0.00037 * self.dt, 0.0)
        ice = ~self.electric
        self.fuel = np.where(
            ice, np.clip(self.fuel - use + self.fuel_rate * self.dt, 0.0, 100.0), 0.0
        )
        self.battery = np.where(
            self.electric,
            np.clip(self.battery - use + self.battery_rate * self.dt, 0.0, 100.0),
            self.battery,
        )

    def _sensors(self, k: int, t: float) -> None:
        h = tick_hashes(self._hbase, k)
        u = [uniform_channel(h, c) for c in range(6)]
        v = self.v
        # A driving vehicle has not reached its stop yet: it reports a speed, however small.
        moving = self.mode == DRIVING
        speed = np.where(moving, np.maximum(v * 3.6 + (u[0] - 0.5) * 0.6, 0.1), 0.0)
        self.o_speed = speed
        self.o_ax = (v - self.v_prev) / self.dt + (u[1] - 0.5) * 0.2
        self.o_ay = np.where(moving, (u[2] - 0.5) * 0.6, (u[2] - 0.5) * 0.1)
        self.o_az = 9.81 + (u[3] - 0.5) * 0.16
        seg_heading = np.degrees(
            np.arctan2(
                (self.seg_lon1 - self.seg_lon0) * np.cos(np.radians(self.seg_lat0)),
                self.seg_lat1 - self.seg_lat0,
            )
        )
        self.heading_deg = np.where(
            moving, (seg_heading + (u[4] - 0.5) * 3.0) % 360.0, self.heading_deg
        )
        self.o_acc = 3.0 + 5.0 * u[5]
        self.o_alt = self.alt_base + (u[5] - 0.5)
        ign = self.mode != PARKED
        self.o_ign = ign
        ice = ~self.electric
        gear = np.searchsorted(GEAR_UPPER_KMH_ARRAY, speed, side="right").astype(np.int64)
        self.o_gear = np.where(ice & ign, gear, 0)
        rpm = np.where(
            speed < 1.0,
            760.0 + 80.0 * u[1],
            800.0 + speed * RPM_PER_KMH[self.o_gear] + 50.0 * (u[2] - 0.5),
        )
        self.o_rpm = np.where(ice & ign, rpm, 0.0).astype(np.int64)
        self.o_sos = np.zeros(self.n, dtype=bool)
        self.o_crash = np.zeros(self.n, dtype=bool)
        self.extras = {}
        # Perception of robotaxis: a slowly varying gap to the nearest object ahead.
        perc = self.has_perception & ign
        self.o_perc = perc
        if perc.any():
            period = 90.0
            phase = 2 * math.pi * (t / period + self.p_phase)
            self.o_pdist = np.where(moving, 45.0 + 25.0 * np.sin(phase), 9.0 + 3.0 * u[3])
            self.o_pclosing = np.where(moving, -25.0 * (2 * math.pi / period) * np.cos(phase), 0.0)
            slot = np.floor(t / period + self.p_phase).astype(np.int64)
            self.o_pclass = _OBJECT_CLASSES[(slot * 7 + self.numbers) % len(_OBJECT_CLASSES)]
            self._driving_events(perc & moving, h)

    def _driving_events(self, candidates: Flags, h: U64) -> None:
        # Disengagements about every 40 km and interventions about every 80 km of driving: the
        # chance per tick is tiny, so it needs a finer draw than the 10-bit noise channels.
        fine = (mix64(h ^ np.uint64(0x6A09E667F3BCC909)) >> np.uint64(11)).astype(np.float64)
        p = self.v * self.dt / 1000.0 * (1 / 40 + 1 / 80)
        hits = np.flatnonzero(candidates & (fine * 2.0**-53 < p))
        for i in hits.tolist():
            v = self.vehicle_states[i]
            if v.rng.random() < 2 / 3:
                reason = _DISENGAGE_REASONS[v.rng.randint(0, len(_DISENGAGE_REASONS) - 1)]
                event = (telemetry_pb2.DRIVING_EVENT_KIND_DISENGAGEMENT, reason)
            else:
                reason = _INTERVENE_REASONS[v.rng.randint(0, len(_INTERVENE_REASONS) - 1)]
                event = (telemetry_pb2.DRIVING_EVENT_KIND_INTERVENTION, reason)
            self.add_extras(i, driving_events=(event,))

    def add_extras(
        self,
        i: int,
        *,
        dtc_codes: tuple[str, ...] = (),
        driving_events: tuple[tuple[int, str], ...] = (),
    ) -> None:
        old = self.extras.get(i, Extras())
        self.extras[i] = Extras(old.dtc_codes + dtc_codes, old.driving_events + driving_events)

    def _collect(self, k: int, event_time: I64) -> Tick:
        rows = np.flatnonzero(self.emit)
        all_rows = len(rows) == self.n

        def pick(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return a if all_rows else a[rows]

        ev = self.electric
        batt_pct = np.where(ev, self.battery, self.battery12)
        batt_v = np.where(
            ev, 330.0 + 0.7 * self.battery, np.where(self.o_ign, 14.1, 12.6) + 0.002 * self.o_alt
        )
        charging = np.where(ev, self.charging, self.o_ign)
        extras = self.extras
        if not all_rows and extras:
            # Rows of silent vehicles are left out: renumber the extras' rows to match.
            keep = [i for i in extras if self.emit[i]]
            pos = np.searchsorted(rows, keep).tolist()
            extras = {p: extras[i] for p, i in zip(pos, keep, strict=True)}
        return Tick(
            k,
            self.fleet_id,
            {
                "extras": extras,
                "vehicle": pick(self.numbers),
                "id_bytes": pick(self.id_bytes),
                "seq": pick(self.seq).copy(),
                "event_time_us": pick(event_time),
                "lat": pick(self.lat),
                "lon": pick(self.lon),
                "altitude": pick(self.o_alt),
                "accuracy": pick(self.o_acc),
                "heading": pick(self.heading_deg).copy(),
                "speed_kmh": pick(self.o_speed),
                "accel_x": pick(self.o_ax),
                "accel_y": pick(self.o_ay),
                "accel_z": pick(self.o_az),
                "rpm": pick(self.o_rpm),
                "gear": pick(self.o_gear),
                "fuel": pick(self.fuel).copy(),
                "coolant": pick(self.coolant).copy(),
                "ignition": pick(self.o_ign),
                "battery_pct": pick(batt_pct),
                "battery_v": pick(batt_v),
                "charging": pick(charging),
                "odometer": pick(self.odometer).copy(),
                "sos": pick(self.o_sos),
                "crash": pick(self.o_crash),
                "perception": pick(self.o_perc),
                "p_class": pick(self.o_pclass),
                "p_distance": pick(self.o_pdist),
                "p_closing": pick(self.o_pclosing),
            },
        )

    # --- what trips ask of the scenarios ------------------------------------------------------
    # The trip phases ask these through the fleet: the scenarios steer trips (park, stop, brake),
    # so trips cannot import them without a cycle.

    def scenario_due(self, v: VehicleState, point: TripPoint, t: float) -> ScenarioKind | None:
        """The scenario to begin at this point of the vehicle's trip, if one is due."""
        return scenario_due(self, v, point, t)

    def begin_scenario(self, v: VehicleState, kind: ScenarioKind, t: float) -> InjectedScenario:
        return begin_scenario(self, v, kind, t)
