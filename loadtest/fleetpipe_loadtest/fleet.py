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
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import shapely

from fleetpipe.core.gearbox import GEAR_UPPER_KMH
from fleetpipe.pb.v1 import telemetry_pb2
from fleetpipe.registry import Vehicle, write_csv
from fleetpipe_loadtest.geo import bearing_deg, destination, haversine_m, regular_polygon
from fleetpipe_loadtest.scenarios import (
    IMPLIED_KINDS,
    THRESHOLDS,
    GroundTruth,
    Injection,
    ScenarioKind,
    ScenarioMix,
)
from fleetpipe_loadtest.synthetic import vehicle_id

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
B = npt.NDArray[np.bool_]

# 2025-01-01T00:00:00Z: the default start of the simulated clock (deterministic runs).
DEFAULT_START_US = 1_735_689_600_000_000
DEFAULT_CENTER = (52.3676, 4.9041)
ROUTE_RADIUS_M = 9_000.0
GEOFENCE_RADIUS_M = 15_000.0
GEOFENCE_SIDES = 16

# rpm per km/h in each gear (index = gear); with 800 rpm at rest, ≤ 3,300 rpm in normal driving.
_RPM_PER_KMH = np.array([0.0, 90.0, 55.0, 38.0, 30.0, 25.0, 21.0])
_GEAR_UPPER = np.array(GEAR_UPPER_KMH)

_OBJECT_CLASSES = np.array([1, 1, 1, 1, 1, 1, 1, 2, 3, 4], dtype=np.int64)
_DISENGAGE_REASONS = ("planner uncertainty", "sensor degraded", "construction zone", "map mismatch")
_INTERVENE_REASONS = ("pedestrian close", "unexpected lane change", "emergency vehicle")
_FIRST = ("Ana", "Ben", "Chen", "Dara", "Emil", "Fatima", "Gus", "Hana", "Ivo", "Jun", "Kai")
_LAST = ("Jansen", "Okafor", "Novak", "Silva", "Haddad", "Kowalski", "Nguyen", "Meyer", "Rossi")


@dataclass(frozen=True)
class VehicleType:
    name: str
    share: float  # of the default mix
    electric: bool
    perception: bool
    heavy: bool
    cruise_kmh: tuple[float, float]
    accel_ms2: tuple[float, float]
    brake_ms2: tuple[float, float]
    energy_pct_per_km: float  # fuel (combustion) or battery (electric)
    legs: tuple[int, int]
    stop_s: tuple[float, float]  # stops with the ignition on between legs
    delivery_share: float  # share of stops made with the ignition off (1–5 min)
    speed_profile: str
    models: tuple[str, ...]


VEHICLE_TYPES: tuple[VehicleType, ...] = (
    VehicleType("car", 0.35, False, False, False, (35, 52), (1.2, 2.0), (1.6, 2.4), 0.12,
                (3, 8), (10, 60), 0.15, "urban", ("Toyota Corolla", "Volkswagen Golf")),
    VehicleType("van", 0.25, False, False, False, (32, 48), (1.0, 1.6), (1.5, 2.2), 0.15,
                (4, 9), (10, 60), 0.40, "urban", ("Ford Transit", "Mercedes-Benz Sprinter")),
    VehicleType("truck", 0.10, False, False, True, (30, 45), (0.6, 1.0), (1.2, 1.8), 0.08,
                (2, 6), (15, 60), 0.30, "heavy", ("Volvo FH", "DAF XF", "Scania R")),
    VehicleType("bus", 0.05, False, False, True, (28, 40), (0.7, 1.1), (1.2, 1.8), 0.10,
                (6, 12), (15, 45), 0.0, "heavy", ("Mercedes-Benz Citaro", "VDL Citea")),
    VehicleType("motorcycle", 0.05, False, False, False, (35, 52), (1.5, 2.2), (1.8, 2.5), 0.25,
                (2, 6), (10, 60), 0.10, "urban", ("Honda CB500F", "BMW R 1250 GS")),
    VehicleType("ev", 0.15, True, False, False, (35, 52), (1.4, 2.2), (1.6, 2.4), 0.30,
                (3, 8), (10, 60), 0.15, "urban", ("Tesla Model 3", "Nissan Leaf", "Kia EV6")),
    VehicleType("robotaxi", 0.05, True, True, False, (30, 45), (1.0, 1.5), (1.4, 2.0), 0.30,
                (2, 5), (20, 90), 0.0, "urban", ("Jaguar I-PACE AV", "Zeekr RT")),
)  # fmt: skip
_TYPE_INDEX = {t.name: i for i, t in enumerate(VEHICLE_TYPES)}


class Mode(IntEnum):
    PARKED = 0  # ignition off
    DRIVING = 1
    STOPPED = 2  # stationary with the ignition on


# Plain ints for the per-tick code: an enum member lookup costs an attribute search each time.
_PARKED, _DRIVING, _STOPPED = int(Mode.PARKED), int(Mode.DRIVING), int(Mode.STOPPED)


class _After(IntEnum):
    DEPART = 0  # next leg of the trip
    RESUME = 1  # the rest of an interrupted leg
    TRIP = 2  # a new trip
    CHARGED = 3  # charging finished: stay parked a little
    REFUELLED = 4


class _Cat(IntEnum):
    TRIP_START = 0
    DEPARTURE = 1
    CRUISE = 2
    STOP = 3
    PARK = 4


_CATEGORY: Mapping[ScenarioKind, _Cat] = {
    ScenarioKind.GEOFENCE_EXIT: _Cat.TRIP_START,
    ScenarioKind.LOW_FUEL: _Cat.TRIP_START,
    ScenarioKind.LOW_BATTERY: _Cat.TRIP_START,
    ScenarioKind.OVERHEATING: _Cat.TRIP_START,
    ScenarioKind.SPEEDING: _Cat.DEPARTURE,
    ScenarioKind.HARSH_ACCELERATION: _Cat.DEPARTURE,
    ScenarioKind.OVER_REVVING: _Cat.DEPARTURE,
    ScenarioKind.HARSH_BRAKING: _Cat.CRUISE,
    ScenarioKind.CRASH: _Cat.CRUISE,
    ScenarioKind.COLLISION_RISK: _Cat.CRUISE,
    ScenarioKind.GEAR_MISMATCH: _Cat.CRUISE,
    ScenarioKind.IDLING: _Cat.STOP,
    ScenarioKind.SOS: _Cat.STOP,
    ScenarioKind.OFFLINE: _Cat.PARK,
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
_COOLDOWN_S = 300.0

# --- counter-based hashing: deterministic noise independent of how the fleet is sharded ---

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)


def _smix(x: int) -> int:
    """splitmix64 on a Python int."""
    x = (x + _GOLDEN) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _vmix(x: U64) -> U64:
    """splitmix64's finaliser over an array (numpy wraps uint64 arithmetic modulo 2**64)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _C1
    x = x ^ (x >> np.uint64(27))
    x = x * _C2
    return x ^ (x >> np.uint64(31))


def _channel(h: U64, k: int) -> F64:
    """The k-th of six 10-bit uniform draws packed in a 64-bit hash, in (0, 1)."""
    bits = (h >> np.uint64(10 * k)) & np.uint64(1023)
    return (bits.astype(np.float64) + 0.5) / 1024.0


class _Rng:
    """A tiny deterministic generator per vehicle (splitmix64), cheaper than random.Random."""

    __slots__ = ("state",)

    def __init__(self, seed: int) -> None:
        self.state = seed & _MASK

    def random(self) -> float:
        self.state = (self.state + _GOLDEN) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return ((z ^ (z >> 31)) >> 11) * (1.0 / (1 << 53))

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.random()

    def randint(self, lo: int, hi: int) -> int:
        """lo..hi inclusive."""
        return lo + int(self.random() * (hi - lo + 1))

    def expovariate(self, rate: float) -> float:
        return -math.log(1.0 - self.random()) / rate


@dataclass(frozen=True, slots=True)
class Extras:
    """The rare, variable-length parts of an event (encoded on the slow path)."""

    dtc_codes: tuple[str, ...] = ()
    driving_events: tuple[tuple[int, str], ...] = ()  # (DrivingEventKind, reason)


class Tick:
    """The events of one tick, as columns (one row per emitting vehicle, in vehicle order)."""

    __slots__ = (
        "accel_x",
        "accel_y",
        "accel_z",
        "accuracy",
        "altitude",
        "battery_pct",
        "battery_v",
        "charging",
        "coolant",
        "crash",
        "event_time_us",
        "extras",
        "fleet_id",
        "fuel",
        "gear",
        "heading",
        "id_bytes",
        "ignition",
        "index",
        "lat",
        "lon",
        "odometer",
        "p_class",
        "p_closing",
        "p_distance",
        "perception",
        "rpm",
        "seq",
        "sos",
        "speed_kmh",
        "vehicle",
    )

    def __init__(self, index: int, fleet_id: str, columns: Mapping[str, Any]) -> None:
        self.index = index
        self.fleet_id = fleet_id
        self.extras: dict[int, Extras] = columns["extras"]
        self.vehicle: I64 = columns["vehicle"]
        self.id_bytes: npt.NDArray[np.bytes_] = columns["id_bytes"]
        self.seq: U64 = columns["seq"]
        self.event_time_us: I64 = columns["event_time_us"]
        self.lat: F64 = columns["lat"]
        self.lon: F64 = columns["lon"]
        self.altitude: F64 = columns["altitude"]
        self.accuracy: F64 = columns["accuracy"]
        self.heading: F64 = columns["heading"]
        self.speed_kmh: F64 = columns["speed_kmh"]
        self.accel_x: F64 = columns["accel_x"]
        self.accel_y: F64 = columns["accel_y"]
        self.accel_z: F64 = columns["accel_z"]
        self.rpm: I64 = columns["rpm"]
        self.gear: I64 = columns["gear"]
        self.fuel: F64 = columns["fuel"]
        self.coolant: F64 = columns["coolant"]
        self.ignition: B = columns["ignition"]
        self.battery_pct: F64 = columns["battery_pct"]
        self.battery_v: F64 = columns["battery_v"]
        self.charging: B = columns["charging"]
        self.odometer: F64 = columns["odometer"]
        self.sos: B = columns["sos"]
        self.crash: B = columns["crash"]
        self.perception: B = columns["perception"]
        self.p_class: I64 = columns["p_class"]
        self.p_distance: F64 = columns["p_distance"]
        self.p_closing: F64 = columns["p_closing"]

    def __len__(self) -> int:
        return len(self.vehicle)

    def message(self, row: int) -> telemetry_pb2.Telemetry:
        """Row ``row`` as a protobuf message (the slow path: tests, tools, rare events)."""
        m = telemetry_pb2.Telemetry(
            vehicle_id=self.id_bytes[row].decode(),
            seq=int(self.seq[row]),
            event_time_us=int(self.event_time_us[row]),
            fleet_id=self.fleet_id,
            location=telemetry_pb2.Location(
                lat=float(self.lat[row]),
                lon=float(self.lon[row]),
                altitude_m=float(self.altitude[row]),
                accuracy_m=float(self.accuracy[row]),
                heading_deg=float(self.heading[row]),
            ),
            motion=telemetry_pb2.Motion(
                speed_kmh=float(self.speed_kmh[row]),
                accel_x_ms2=float(self.accel_x[row]),
                accel_y_ms2=float(self.accel_y[row]),
                accel_z_ms2=float(self.accel_z[row]),
            ),
            engine=telemetry_pb2.Engine(
                rpm=int(self.rpm[row]),
                gear=int(self.gear[row]),
                fuel_pct=float(self.fuel[row]),
                coolant_temp_c=float(self.coolant[row]),
                ignition=bool(self.ignition[row]),
            ),
            battery=telemetry_pb2.Battery(
                pct=float(self.battery_pct[row]),
                voltage=float(self.battery_v[row]),
                charging=bool(self.charging[row]),
            ),
            odometer_km=float(self.odometer[row]),
            alarms=telemetry_pb2.DeviceAlarms(sos=bool(self.sos[row]), crash=bool(self.crash[row])),
        )
        if self.perception[row]:
            m.perception.nearest_object_class = cast(
                telemetry_pb2.ObjectClass, int(self.p_class[row])
            )
            m.perception.nearest_object_distance_m = float(self.p_distance[row])
            m.perception.closing_speed_ms = float(self.p_closing[row])
        extras = self.extras.get(row)
        if extras is not None:
            m.dtc_codes.extend(extras.dtc_codes)
            for kind, reason in extras.driving_events:
                m.driving_events.add(kind=cast(telemetry_pb2.DrivingEventKind, kind), reason=reason)
        return m

    def messages(self) -> list[telemetry_pb2.Telemetry]:
        return [self.message(r) for r in range(len(self))]


class _Vehicle:
    """The slow-path state of one vehicle: its plan, its scenario, its random stream."""

    __slots__ = (
        "after",
        "brake",
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

    def __init__(self, row: int, num: int, vtype: VehicleType, rng: _Rng) -> None:
        self.row = row
        self.num = num
        self.type = vtype
        self.rng = rng
        self.route: list[tuple[float, float]] = []
        self.legs_left = 0
        self.trip = 0
        self.after = _After.TRIP
        self.resume: tuple[float, float] | None = None
        self.stop_then: tuple[str, float] | None = None  # what to do once a braking leg ends
        self.brake = 2.0
        self.scenario: _Scenario | None = None
        self.cooldown_until = 0.0
        self.injections: list[Injection] = []
        self.mix: list[tuple[ScenarioKind, float]] = []
        self.keep_running = False  # during a scenario: no ignition-off stops, no trip end
        self.refuel_next = False
        self.charge_next = False


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
        self._truth: list[GroundTruth] = []
        self._polygon = shapely.Polygon(self.geofence())
        self._active: set[int] = set()  # rows of vehicles in a scenario
        first = 1 + k * vehicles // nshards
        last = (k + 1) * vehicles // nshards
        self.numbers: I64 = np.arange(first, last + 1, dtype=np.int64)
        n = self.n = len(self.numbers)
        self._seed_key = _smix(seed ^ 0x5EED_F1EE7)
        self._init_static(mix)
        self._init_state()
        self._vehicles = [
            _Vehicle(
                i,
                int(num),
                VEHICLE_TYPES[int(self.vtype[i])],
                _Rng(_smix(self._seed_key ^ (int(num) * 0xD1B54A32D192ED03 & _MASK))),
            )
            for i, num in enumerate(self.numbers)
        ]
        by_num = {v.num: v for v in self._vehicles}
        for inj in sorted(injections, key=lambda j: j.at_s):
            if inj.vehicle in by_num:
                by_num[inj.vehicle].injections.append(inj)
        for v in self._vehicles:
            v.mix = self.scenario_mix.applicable(
                electric=v.type.electric, perception=v.type.perception, heavy=v.type.heavy
            )
            self._place(v)
            self._schedule(v, 0.0)
        assert n == len(self._vehicles)

    # --- set-up -------------------------------------------------------------------------------

    def _hash(self, channel: int) -> U64:
        key = np.uint64(_smix(self._seed_key ^ (channel * 0xA24BAED4963EE407 & _MASK)))
        return _vmix(self.numbers.astype(np.uint64) * np.uint64(_GOLDEN) ^ key)

    def _init_static(self, mix: Mapping[str, float] | None) -> None:
        shares = dict(mix) if mix is not None else {t.name: t.share for t in VEHICLE_TYPES}
        unknown = set(shares) - set(_TYPE_INDEX)
        if unknown:
            raise ValueError(f"unknown vehicle type(s) in mix: {', '.join(sorted(unknown))}")
        weights = np.array([max(0.0, shares.get(t.name, 0.0)) for t in VEHICLE_TYPES])
        if weights.sum() <= 0:
            raise ValueError("the vehicle mix must give some vehicle type a positive share")
        cum = np.cumsum(weights / weights.sum())
        h0, h1 = self._hash(1), self._hash(2)
        u = [_channel(h0, c) for c in range(6)] + [_channel(h1, c) for c in range(6)]
        t = np.minimum(np.searchsorted(cum, u[0], side="right"), len(cum) - 1).astype(np.int64)
        self.vtype: I64 = t
        types = VEHICLE_TYPES
        self.electric: B = np.array([vt.electric for vt in types], dtype=bool)[t]
        self.has_perception: B = np.array([vt.perception for vt in types], dtype=bool)[t]
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

    def _place(self, v: _Vehicle) -> None:
        """Park the vehicle at its depot with a random state; most start a trip soon."""
        i, r = v.row, v.rng
        lat, lon = destination(*self.center, r.uniform(0, 360), 6000 * math.sqrt(r.random()))
        self.lat[i], self.lon[i] = lat, lon
        self.heading_deg[i] = r.uniform(0, 360)
        self.fuel[i] = 0.0 if v.type.electric else r.uniform(30, 100)
        self.battery[i] = r.uniform(35, 95) if v.type.electric else self.battery12[i]
        self.coolant[i] = self.ambient[i] + r.uniform(0, 15 if v.type.electric else 40)
        self.odometer[i] = r.uniform(5_000, 150_000)
        self.mode[i] = _PARKED
        v.after = _After.TRIP
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
        out = []
        for v in self._vehicles:
            num = v.num
            phone = f"+1555{num:07d}"
            name = f"{_FIRST[num % len(_FIRST)]} {_LAST[(num // len(_FIRST)) % len(_LAST)]}"
            out.append(
                Vehicle(
                    vehicle_id=vehicle_id(num, self.id_prefix),
                    fleet_id=self.fleet_id,
                    vehicle_type=v.type.name,
                    model=v.type.models[num % len(v.type.models)],
                    driver_id=f"{self.id_prefix}-drv-{num:06d}",
                    driver_name=name,
                    driver_phone=phone,
                    driver_whatsapp=phone if num % 2 == 0 else "",
                    speed_profile=v.type.speed_profile,
                    electric=v.type.electric,
                )
            )
        return out

    def write_registry(self, path: Path) -> None:
        write_csv(self.registry(), path)

    def ground_truth(self, *, include_active: bool = False) -> list[GroundTruth]:
        """Episodes of finished scenarios; ``include_active`` adds running ones, cut at now."""
        out = list(self._truth)
        if include_active:
            for v in self._vehicles:
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
            v = self._vehicles[i]
            for _ in range(8):  # a vehicle may pass through several instant phases
                if self.next_change[i] > t:
                    break
                self._transition(v, t)
        self._kinematics(t)
        self._cruise_triggers(t)
        self._sensors(k, t)
        for v in self._vehicles_in_scenarios():
            assert v.scenario is not None
            v.scenario.step(self, t)
        self.seq += self.emit
        event_time = self.start_time_us + k * self.dt_us + self.offset_us
        self.last_emit_us = np.where(self.emit, event_time, self.last_emit_us)
        self._record_truth(t, event_time)
        tick = self._collect(k, event_time)
        self.v_prev = self.v.copy()
        self.tick_index += 1
        return tick

    def _vehicles_in_scenarios(self) -> list[_Vehicle]:
        return [self._vehicles[i] for i in sorted(self._active)]

    def _kinematics(self, t: float) -> None:
        driving = self.mode == _DRIVING
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
        ign = self.mode != _PARKED
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
        ign = self.mode != _PARKED
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
        h = _vmix(self._hbase ^ np.uint64((k * _GOLDEN) & _MASK))
        u = [_channel(h, c) for c in range(6)]
        v = self.v
        # A driving vehicle has not reached its stop yet: it reports a speed, however small.
        moving = self.mode == _DRIVING
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
        ign = self.mode != _PARKED
        self.o_ign = ign
        ice = ~self.electric
        gear = np.searchsorted(_GEAR_UPPER, speed, side="right").astype(np.int64)
        self.o_gear = np.where(ice & ign, gear, 0)
        rpm = np.where(
            speed < 1.0,
            760.0 + 80.0 * u[1],
            800.0 + speed * _RPM_PER_KMH[self.o_gear] + 50.0 * (u[2] - 0.5),
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

    def _driving_events(self, candidates: B, h: U64) -> None:
        # Disengagements about every 40 km and interventions about every 80 km of driving: the
        # chance per tick is tiny, so it needs a finer draw than the 10-bit noise channels.
        fine = (_vmix(h ^ np.uint64(0x6A09E667F3BCC909)) >> np.uint64(11)).astype(np.float64)
        p = self.v * self.dt / 1000.0 * (1 / 40 + 1 / 80)
        hits = np.flatnonzero(candidates & (fine * 2.0**-53 < p))
        for i in hits.tolist():
            v = self._vehicles[i]
            if v.rng.random() < 2 / 3:
                reason = _DISENGAGE_REASONS[v.rng.randint(0, len(_DISENGAGE_REASONS) - 1)]
                event = (telemetry_pb2.DRIVING_EVENT_KIND_DISENGAGEMENT, reason)
            else:
                reason = _INTERVENE_REASONS[v.rng.randint(0, len(_INTERVENE_REASONS) - 1)]
                event = (telemetry_pb2.DRIVING_EVENT_KIND_INTERVENTION, reason)
            self._add_extras(i, driving_events=(event,))

    def _add_extras(
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

    # --- phases -------------------------------------------------------------------------------

    def _transition(self, v: _Vehicle, t: float) -> None:
        i = v.row
        mode = self.mode[i]
        if mode == _DRIVING:
            self._arrive(v, t)
            return
        after, v.after = v.after, _After.DEPART
        self.fuel_rate[i] = self.battery_rate[i] = 0.0
        self.charging[i] = False
        if after == _After.DEPART:
            self._depart(v, t)
        elif after == _After.RESUME:
            target, v.resume = v.resume, None
            assert target is not None
            # The interrupted leg still counts: arriving at its end completes it.
            v.route.insert(0, target)
            self._depart(v, t)
        elif after == _After.CHARGED:
            self._park(v, t, v.rng.uniform(60, 300), _After.TRIP)
        elif after == _After.REFUELLED:
            self._park(v, t, v.rng.uniform(60, 180), _After.TRIP)
        else:
            self._start_trip(v, t)

    def _start_trip(self, v: _Vehicle, t: float) -> None:
        v.trip += 1
        v.legs_left = v.rng.randint(*v.type.legs)
        v.route = []
        kind = self._due(v, _Cat.TRIP_START, t)
        if kind is not None:
            self._begin(v, kind, t)
        self._depart(v, t)

    def _depart(self, v: _Vehicle, t: float) -> None:
        i, r = v.row, v.rng
        cruise_kmh = r.uniform(*v.type.cruise_kmh)
        accel = float(self.accel_rate[i])
        lat, lon = float(self.lat[i]), float(self.lon[i])
        kind = self._due(v, _Cat.DEPARTURE, t)
        target: tuple[float, float] | None = None
        if kind is not None:
            sc = self._begin(v, kind, t)
            if isinstance(sc, _Speeding):
                cruise_kmh = sc.cruise_kmh
                target = self._waypoint(v, lat, lon, 3000, 4000)
            elif isinstance(sc, _HarshAcceleration):
                accel = 4.5
                target = self._waypoint(v, lat, lon, 800, 2000)
            else:
                target = self._waypoint(v, lat, lon, 600, 2000)
        if target is None:
            target = v.route.pop(0) if v.route else self._waypoint(v, lat, lon, 400, 2000)
        # The leg starts right after the previous tick, so this tick already shows motion.
        self._leg(v, t - self.dt, target, cruise_kmh / 3.6, accel, float(self.brake_rate[i]))

    def _leg(
        self,
        v: _Vehicle,
        t0: float,
        target: tuple[float, float],
        cruise_ms: float,
        accel: float,
        brake: float,
    ) -> None:
        """A leg from rest at the vehicle's position to ``target``, stopping there."""
        i = v.row
        lat0, lon0 = float(self.lat[i]), float(self.lon[i])
        length = max(haversine_m(lat0, lon0, *target), 5.0)
        vpk = cruise_ms
        da, db = vpk * vpk / (2 * accel), vpk * vpk / (2 * brake)
        if da + db > length:
            vpk = math.sqrt(length * 2 * accel * brake / (accel + brake))
            da, db = vpk * vpk / (2 * accel), vpk * vpk / (2 * brake)
        self._set_segment(
            i, t0, (lat0, lon0), target, length, 0.0, vpk, accel, brake, da, length - da - db
        )

    def _brake_to_stop(self, v: _Vehicle, t: float, decel: float) -> float:
        """Replace the current leg by braking from the current speed; returns the braking time."""
        i = v.row
        v0 = max(float(self.v[i]), 0.1)
        length = v0 * v0 / (2 * decel)
        lat0, lon0 = float(self.lat[i]), float(self.lon[i])
        heading = bearing_deg(
            self.seg_lat0[i], self.seg_lon0[i], self.seg_lat1[i], self.seg_lon1[i]
        )
        end = destination(lat0, lon0, heading, length)
        self._set_segment(i, t, (lat0, lon0), end, length, v0, v0, 1.0, decel, 0.0, 0.0)
        return v0 / decel

    def _set_segment(
        self,
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
        dc = max(dc, 0.0)
        ta = (vpk - v0) / accel
        tc = dc / vpk if vpk > 0 else 0.0
        tb = vpk / brake
        self.seg_lat0[i], self.seg_lon0[i] = start
        self.seg_lat1[i], self.seg_lon1[i] = end
        self.seg_len[i] = length
        self.seg_v0[i], self.seg_vpk[i], self.seg_a[i], self.seg_b[i] = v0, vpk, accel, brake
        self.seg_ta[i], self.seg_tc[i], self.seg_tb[i] = ta, tc, tb
        self.seg_da[i], self.seg_dc[i], self.seg_t0[i] = da, dc, t0
        self.s_prev[i] = 0.0
        self.mode[i] = _DRIVING
        self.next_change[i] = t0 + ta + tc + tb

    def _arrive(self, v: _Vehicle, t: float) -> None:
        i = v.row
        # The last bit of the leg, between the previous tick and the stop.
        self._use_energy_one(i, float(self.seg_len[i] - self.s_prev[i]))
        self.lat[i], self.lon[i] = self.seg_lat1[i], self.seg_lon1[i]
        self.s_prev[i] = 0.0
        self.v[i] = 0.0
        sc = v.scenario
        if sc is not None:
            sc.on_arrive(self, t)
        if v.stop_then is not None:
            what, duration = v.stop_then
            v.stop_then = None
            if what == "resume":
                self._stop(v, t, duration, _After.RESUME)
            else:
                self._park(v, t, duration, _After.TRIP)
            return
        if v.refuel_next and not v.type.electric:
            v.refuel_next = False
            self._park(v, t, (100.0 - float(self.fuel[i])) / 0.5, _After.REFUELLED)
            self.fuel_rate[i] = 0.5
            return
        if v.charge_next and v.type.electric:
            v.charge_next = False
            self._charge(v, t, 80.0)
            return
        v.legs_left -= 1
        if v.legs_left > 0 or v.keep_running:
            v.legs_left = max(v.legs_left, 1)
            kind = self._due(v, _Cat.STOP, t)
            if kind is not None:
                self._begin(v, kind, t)  # the scenario sets up its own stop
                return
            r = v.rng
            if not v.keep_running and r.random() < v.type.delivery_share:
                self._park(v, t, r.uniform(60, 300), _After.DEPART)
            else:
                self._stop(v, t, r.uniform(*v.type.stop_s), _After.DEPART)
            return
        kind = self._due(v, _Cat.PARK, t)
        if kind is not None:
            self._begin(v, kind, t)
            return
        if not v.type.electric and self.fuel[i] < 25.0:
            self._park(v, t, (100.0 - float(self.fuel[i])) / 0.5, _After.REFUELLED)
            self.fuel_rate[i] = 0.5
        elif v.type.electric and self.battery[i] < 30.0:
            self._charge(v, t, 90.0)
        else:
            self._park(v, t, v.rng.uniform(300, 1800), _After.TRIP)

    def _charge(self, v: _Vehicle, t: float, to_pct: float) -> None:
        i = v.row
        self._park(v, t, max((to_pct - float(self.battery[i])) / 0.1, 1.0), _After.CHARGED)
        self.charging[i] = True
        self.battery_rate[i] = 0.1

    def _use_energy_one(self, i: int, ds_m: float) -> None:
        km = max(ds_m, 0.0) / 1000.0
        self.odometer[i] += km
        use = km * self.energy_per_km[i] * self.use_mult[i]
        if self.electric[i]:
            self.battery[i] = max(0.0, self.battery[i] - use)
        else:
            self.fuel[i] = max(0.0, self.fuel[i] - use)

    def _stop(self, v: _Vehicle, t: float, duration: float, after: _After) -> None:
        i = v.row
        self.mode[i] = _STOPPED
        v.after = after
        self.next_change[i] = t + duration

    def _park(self, v: _Vehicle, t: float, duration: float, after: _After) -> None:
        i = v.row
        self.mode[i] = _PARKED
        v.after = after
        self.next_change[i] = t + duration

    def _waypoint(
        self, v: _Vehicle, lat: float, lon: float, lo_m: float, hi_m: float
    ) -> tuple[float, float]:
        """A point lo..hi metres away, kept within the route radius of the centre."""
        r = v.rng
        dist = r.uniform(lo_m, hi_m)
        p = destination(lat, lon, r.uniform(0, 360), dist)
        if haversine_m(*self.center, *p) > ROUTE_RADIUS_M:
            home = bearing_deg(lat, lon, *self.center)
            p = destination(lat, lon, home + r.uniform(-45, 45), dist)
        return p

    # --- scenarios ----------------------------------------------------------------------------

    def _schedule(self, v: _Vehicle, t: float) -> None:
        i = v.row
        self.pend_kind[i] = -1
        self.pend_due[i] = np.inf
        self.pend_cruise[i] = False
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
        self.pend_kind[i] = _KIND_INDEX[kind]
        self.pend_due[i] = due
        if _CATEGORY[kind] == _Cat.CRUISE:
            self.pend_cruise[i] = True
            self.pend_need[i] = _CRUISE_NEEDED_S[kind]

    def _due(self, v: _Vehicle, cat: _Cat, t: float) -> ScenarioKind | None:
        i = v.row
        k = int(self.pend_kind[i])
        if k < 0 or v.scenario is not None or self.pend_due[i] > t:
            return None
        kind = _KINDS[k]
        return kind if _CATEGORY[kind] == cat else None

    def _cruise_triggers(self, t: float) -> None:
        cand = self.pend_cruise & (self.pend_due <= t) & (self.mode == _DRIVING)
        if not cand.any():
            return
        tau = t - self.seg_t0
        cruising = (
            (tau > self.seg_ta + 1.0)
            & (tau < self.seg_ta + self.seg_tc - self.pend_need)
            & (self.v >= _CRUISE_MIN_MS)
        )
        for i in np.flatnonzero(cand & cruising).tolist():
            v = self._vehicles[i]
            if v.scenario is None:
                self._begin(v, _KINDS[int(self.pend_kind[i])], t)

    def _begin(self, v: _Vehicle, kind: ScenarioKind, t: float) -> _Scenario:
        i = v.row
        self.pend_kind[i] = -1
        self.pend_due[i] = np.inf
        self.pend_cruise[i] = False
        sc = _SCENARIOS[kind](self, v, t)
        v.scenario = sc
        self._active.add(i)
        sc.start(self, t)
        return sc

    def _record_truth(self, t: float, event_time: I64) -> None:
        if not self._active:
            return
        finished = []
        for i in sorted(self._active):
            v = self._vehicles[i]
            sc = v.scenario
            assert sc is not None
            if self.emit[i]:
                et = int(event_time[i])
                for kind in sc.watch:
                    if sc.holds(self, kind, i):
                        sc.seen(kind, et)
            if sc.done:
                finished.append(v)
        for v in finished:
            sc = v.scenario
            assert sc is not None
            truths = sc.truths(self)
            if not any(g.kind == sc.kind for g in truths):
                self.missed.append((vehicle_id(v.num, self.id_prefix), sc.kind))
            self._truth.extend(truths)
            v.scenario = None
            v.keep_running = False
            self._active.discard(v.row)
            v.cooldown_until = t + _COOLDOWN_S
            self._schedule(v, t)


# --- the scenarios ------------------------------------------------------------------------------


class _Scenario:
    kind: ScenarioKind

    def __init__(self, fleet: Fleet, v: _Vehicle, t: float) -> None:
        self.v = v
        self.t0 = t
        self.done = False
        self.watch: tuple[ScenarioKind, ...] = (self.kind, *IMPLIED_KINDS.get(self.kind, ()))
        self.windows: dict[ScenarioKind, list[int]] = {}

    def start(self, fleet: Fleet, t: float) -> None:
        """Set the scenario up (called once, right after it is chosen)."""

    def step(self, fleet: Fleet, t: float) -> None:
        """Override this tick's sensor values of the vehicle (after the normal model ran)."""

    def on_arrive(self, fleet: Fleet, t: float) -> None:
        """The vehicle has just come to a stop at the end of a leg."""

    def holds(self, fleet: Fleet, kind: ScenarioKind, i: int) -> bool:
        return _predicate(fleet, kind, i)

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


def _predicate(fleet: Fleet, kind: ScenarioKind, i: int) -> bool:
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
        gear = int(np.searchsorted(_GEAR_UPPER, fleet.o_speed[i], side="right"))
        return int(fleet.o_gear[i]) != gear
    if kind == ScenarioKind.COLLISION_RISK:
        closing = float(fleet.o_pclosing[i])
        return bool(
            fleet.o_perc[i] and closing > 0 and fleet.o_pdist[i] / closing < th["collision_ttc_s"]
        )
    if kind == ScenarioKind.GEOFENCE_EXIT:
        return not bool(shapely.contains_xy(fleet._polygon, fleet.lon[i], fleet.lat[i]))
    raise AssertionError(f"no predicate for {kind}")


class _Speeding(_Scenario):
    kind = ScenarioKind.SPEEDING

    def __init__(self, fleet: Fleet, v: _Vehicle, t: float) -> None:
        super().__init__(fleet, v, t)
        self.cruise_kmh = v.rng.uniform(95, 110)

    def on_arrive(self, fleet: Fleet, t: float) -> None:
        self.done = True


class _HarshAcceleration(_Scenario):
    kind = ScenarioKind.HARSH_ACCELERATION

    def step(self, fleet: Fleet, t: float) -> None:
        i = self.v.row
        t0, ta = fleet.seg_t0[i], fleet.seg_ta[i]
        # The device reports the peak of each interval that overlaps the hard acceleration.
        if t > t0 and t - fleet.dt < t0 + ta:
            fleet.o_ax[i] = 4.5 + (self.v.rng.random() - 0.5) * 0.4
        elif t >= t0 + ta:
            self.done = True


class _OverRevving(_Scenario):
    kind = ScenarioKind.OVER_REVVING

    def __init__(self, fleet: Fleet, v: _Vehicle, t: float) -> None:
        super().__init__(fleet, v, t)
        self.duration = v.rng.uniform(6, 10)

    def step(self, fleet: Fleet, t: float) -> None:
        # The driver pulls away revving hard before each shift; the gear stays the right one.
        if t > self.t0 + self.duration:
            self.done = True
            return
        fleet.o_rpm[self.v.row] = round(6200 + 600 * self.v.rng.random())


class _HarshBraking(_Scenario):
    kind = ScenarioKind.HARSH_BRAKING

    def start(self, fleet: Fleet, t: float) -> None:
        v = self.v
        i = v.row
        v.resume = (float(fleet.seg_lat1[i]), float(fleet.seg_lon1[i]))
        self.brake_s = fleet._brake_to_stop(v, t, 8.5)
        v.stop_then = ("resume", v.rng.uniform(5, 15))

    def step(self, fleet: Fleet, t: float) -> None:
        i = self.v.row
        if t > self.t0 and t - fleet.dt < self.t0 + self.brake_s:
            fleet.o_ax[i] = -8.5 + (self.v.rng.random() - 0.5) * 0.4
        elif t >= self.t0 + self.brake_s:
            self.done = True


class _Crash(_Scenario):
    kind = ScenarioKind.CRASH

    def start(self, fleet: Fleet, t: float) -> None:
        v = self.v
        i = v.row
        fleet.v[i] = 0.0
        fleet._park(v, t, v.rng.uniform(1200, 1800), _After.TRIP)
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


class _Sos(_Scenario):
    kind = ScenarioKind.SOS

    def start(self, fleet: Fleet, t: float) -> None:
        fleet._stop(self.v, t, self.v.rng.uniform(30, 60), _After.DEPART)

    def step(self, fleet: Fleet, t: float) -> None:
        if fleet.mode[self.v.row] == _STOPPED:
            fleet.o_sos[self.v.row] = True
        else:
            self.done = True


class _Idling(_Scenario):
    kind = ScenarioKind.IDLING

    def start(self, fleet: Fleet, t: float) -> None:
        fleet._stop(self.v, t, self.v.rng.uniform(480, 720), _After.DEPART)

    def holds(self, fleet: Fleet, kind: ScenarioKind, i: int) -> bool:
        return bool(fleet.mode[i] == _STOPPED and fleet.o_ign[i] and fleet.o_speed[i] == 0)

    def step(self, fleet: Fleet, t: float) -> None:
        if fleet.mode[self.v.row] != _STOPPED:
            self.done = True


class _Offline(_Scenario):
    kind = ScenarioKind.OFFLINE

    def start(self, fleet: Fleet, t: float) -> None:
        v = self.v
        silence = v.rng.uniform(720, 900)
        self.until = t + silence
        self.last_before: int | None = None
        fleet._park(v, t, silence + v.rng.uniform(60, 600), _After.TRIP)

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


class _GeofenceExit(_Scenario):
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


class _CollisionRisk(_Scenario):
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
            fleet._add_extras(
                i,
                driving_events=(
                    (telemetry_pb2.DRIVING_EVENT_KIND_INTERVENTION, "collision risk ahead"),
                ),
            )


class _GearMismatch(_Scenario):
    kind = ScenarioKind.GEAR_MISMATCH

    def __init__(self, fleet: Fleet, v: _Vehicle, t: float) -> None:
        super().__init__(fleet, v, t)
        self.duration = v.rng.uniform(15, 20)

    def step(self, fleet: Fleet, t: float) -> None:
        i = self.v.row
        if t >= self.t0 + self.duration or fleet.mode[i] != _DRIVING:
            self.done = True
            return
        gear = min(int(fleet.o_gear[i]) + 2, 6)
        fleet.o_gear[i] = gear
        fleet.o_rpm[i] = round(800 + fleet.o_speed[i] * _RPM_PER_KMH[gear])


class _LowFuel(_Scenario):
    kind = ScenarioKind.LOW_FUEL

    def start(self, fleet: Fleet, t: float) -> None:
        v = self.v
        i = v.row
        fleet.fuel[i] = v.rng.uniform(13.0, 14.0)
        fleet.use_mult[i] = 1.6 / float(fleet.energy_per_km[i])
        v.keep_running = True
        self.refuelling = False

    def step(self, fleet: Fleet, t: float) -> None:
        v = self.v
        i = v.row
        if not self.refuelling and fleet.fuel[i] <= 7.0:
            self.refuelling = True
            fleet.use_mult[i] = 1.0
            v.refuel_next = True
        if self.refuelling and fleet.fuel[i] >= 20.0:
            self.done = True


class _LowBattery(_Scenario):
    kind = ScenarioKind.LOW_BATTERY

    def start(self, fleet: Fleet, t: float) -> None:
        v = self.v
        i = v.row
        fleet.battery[i] = v.rng.uniform(17.0, 17.5)
        fleet.use_mult[i] = 1.6 / float(fleet.energy_per_km[i])
        v.keep_running = True
        self.charging = False

    def step(self, fleet: Fleet, t: float) -> None:
        v = self.v
        i = v.row
        if not self.charging and fleet.battery[i] <= 12.0:
            self.charging = True
            fleet.use_mult[i] = 1.0
            v.charge_next = True
        if self.charging and fleet.battery[i] >= 20.0:
            self.done = True


class _Overheating(_Scenario):
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
            if fleet.mode[i] != _PARKED:
                self.temp = min(self.peak, self.temp + 1.0 * dt)
            if self.temp >= self.peak:
                self.phase, self.hold_until = "hold", t + 30.0
        elif self.phase == "hold":
            if t >= self.hold_until:
                self.phase = "pull_over"
                v.keep_running = False
                v.route, v.legs_left = [], 0
                if fleet.mode[i] == _DRIVING:
                    fleet._brake_to_stop(v, t, float(fleet.brake_rate[i]))
                    v.stop_then = ("park", v.rng.uniform(1200, 1800))
                else:
                    fleet._park(v, t, v.rng.uniform(1200, 1800), _After.TRIP)
        else:
            if fleet.mode[i] == _PARKED:
                self.temp = max(95.0, self.temp - 0.5 * dt)
            if self.temp <= 95.0:
                self.done = True
        fleet.coolant[i] = self.temp
        if self.temp > THRESHOLDS["overheating_c"]:
            fleet._add_extras(i, dtc_codes=("P0217",))


_SCENARIOS: Mapping[ScenarioKind, type[_Scenario]] = {
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
