"""Injected scenarios, their ground truth, and the bounds that normal driving keeps.

The simulator (:mod:`fleetpipe_loadtest.fleet`) drives every vehicle normally and, now and then,
injects one of the scenarios below. Each injected scenario leaves a :class:`GroundTruth` per
episode: the vehicle, the kind, and the event times (``event_time_us``) of the first and the last
event on which the scenario's *ground-truth predicate* holds. The predicates use the thresholds
below (``THRESHOLDS``); a detection rule whose threshold lies anywhere in the gap between the
normal bound and the scenario's value (``SAFE_BANDS``) sees exactly one episode per scenario and
none in normal driving, with nearly the same start and end.

Normal driving (outside scenarios) stays within ``NORMAL``:

=====================  ==========================================================================
speed                  ≤ 56 km/h (70 % of the 80 km/h seed limit); cruise 28–52 km/h by type
longitudinal accel     |accel_x| ≤ 3.0 m/s² (accelerating ≤ 2.2, braking ≤ 2.5, small noise)
fuel (combustion)      ≥ 20 % (vehicles refuel at trip end below 25 %)
battery (electric)     ≥ 20 % (vehicles charge at trip end below 30 %); combustion vehicles report
                       their 12 V battery at 88–100 %, charging while the engine runs
coolant (combustion)   ≤ 100 °C (warms towards 88–94 °C); electric vehicles report ~25–40 °C
rpm                    0 (ignition off), 750–850 idle, ≤ 3,300 driving; electric vehicles report 0
gear                   the expected gear of the speed (fleetpipe.core.gearbox); electric: always 0
idling                 stationary with ignition on for at most 90 s at a time
perception (robotaxi)  nearest object ≥ 8 m away; time to collision ≥ 8 s (or not closing)
location               inside the fleet's operating area (:meth:`Fleet.geofence`), ≤ 9 km from
                       its centre; the geofence is a 16-gon of radius 15 km
alarms                 sos, crash, tamper and power_cut all false
telemetry              one event per vehicle per tick, no gap, ``seq`` strictly increasing from 1
=====================  ==========================================================================

What each scenario produces (ground-truth predicate in brackets; durations at 1 Hz):

``speeding`` [speed_kmh > 80]
    From rest, a 3–4 km leg cruising at 95–110 km/h, normal acceleration and braking; above
    80 km/h for about 80–140 s. Gear and rpm stay consistent (6th gear, ≤ 3,300 rpm).
``harsh_braking`` [accel_x ≤ -7]
    While cruising at ≥ 25 km/h the vehicle brakes to a standstill at -8.5 m/s²; every event
    whose interval overlaps the braking reports accel_x -8.3 … -8.7 (1–2 events at 1 Hz). It then
    stands 5–15 s with ignition on and carries on.
``harsh_acceleration`` [accel_x ≥ 4] (not trucks or buses)
    From rest at 4.5 m/s² up to cruise speed; events overlapping the acceleration report
    accel_x 4.3 … 4.7 (2–4 events at 1 Hz).
``crash`` [crash alarm or accel_x ≤ -30]
    While cruising at ≥ 25 km/h: one event with accel_x -38 … -48 m/s², a lateral and vertical
    spike, speed 0 and ``alarms.crash`` set; the alarm stays set for 30 s while the vehicle stands
    with ignition off, then it stays parked for 20–30 min. Implies ``harsh_braking`` on the spike
    event (recorded with ``cause="crash"``).
``sos`` [alarms.sos]
    At a stop: stationary, ignition on, ``alarms.sos`` set on every event for 30–60 s.
``idling`` [ignition on and speed 0, during the scenario's stop]
    At a stop: stationary with ignition on (rpm ~800, gear 0) for 8–12 min.
``offline`` [no events between start and end]
    At the end of a trip, parked with ignition off: the device sends nothing for 12–15 min, then
    resumes (``seq`` continues without a gap). ``start_us`` is the event time of the last event
    before the silence and ``end_us`` that of the first event after it. An offline rule driven
    by processing time fires 10 min after the silence starts when the stream runs in real time.
``geofence_exit`` [location outside :meth:`Fleet.geofence`]
    A trip leg to a point 17.5–19 km from the centre, 1–2 km outside and back to ≤ 9 km, at
    normal speeds; outside for roughly 6–20 min.
``collision_risk`` [perception closing speed > 0 and distance / closing speed < 2 s]
    A robotaxi cruising at ≥ 25 km/h perceives an object 30 m ahead closing at 9 m/s for 3.5 s
    (time to collision 3.3 s → 0.3 s; 2 events below 2 s at 1 Hz); an INTERVENTION driving event
    rides on the first event below 2 s.
``low_fuel`` [fuel_pct < 10] (combustion)
    From the first event of a trip the gauge reads 13–14 % (the last refuelling was skipped),
    then falls about 0.02 %/s while driving until 7 %, a little further (normal use) to the end
    of that leg, where the vehicle refuels (ignition off, +0.5 %/s to 100 %). Below 10 % for
    about 3–7 min; lowest reading 6.5–7 %.
``low_battery`` [battery.pct < 15 and not charging] (electric)
    From the first event of a trip the state of charge reads 17–17.5 %, then falls about
    0.02 %/s while driving until 12 %, a little further to the end of that leg, where the vehicle
    charges (``charging`` true, +0.1 %/s to 80 %). Below 15 % and not charging for about
    3–7 min; lowest reading 11.5–12 %.
``overheating`` [coolant_temp_c > 110] (combustion)
    From a trip start the coolant climbs 1 °C/s with the engine running up to the peak
    (default 215 °C, so both the realistic > 110 °C and the seed's > 200 °C rules fire), holds it
    30 s, then the driver pulls over and switches off; the coolant falls 0.5 °C/s to 95 °C.
    Above 110 °C for about 6 min, above 200 °C for about 80 s. DTC ``P0217`` is reported while
    the coolant is above 110 °C.
``over_revving`` [rpm > 6000] (combustion)
    Pulling away from rest, the driver revs hard: rpm 6,200–6,800 for 6–10 s while
    accelerating normally; the gear stays the expected one.
``gear_mismatch`` [gear ≠ expected_gear(speed_kmh)] (combustion)
    While cruising at ≥ 25 km/h the gear is two above the expected one (lugging, rpm ~1,000–1,800)
    for 15–20 s.

One scenario runs at a time per vehicle, and a vehicle drives normally for at least 5 minutes
between two of its scenarios, so episodes never overlap or merge.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path


class ScenarioKind(StrEnum):
    SPEEDING = "speeding"
    HARSH_BRAKING = "harsh_braking"
    HARSH_ACCELERATION = "harsh_acceleration"
    CRASH = "crash"
    SOS = "sos"
    IDLING = "idling"
    OFFLINE = "offline"
    GEOFENCE_EXIT = "geofence_exit"
    COLLISION_RISK = "collision_risk"
    LOW_FUEL = "low_fuel"
    LOW_BATTERY = "low_battery"
    OVERHEATING = "overheating"
    OVER_REVVING = "over_revving"
    GEAR_MISMATCH = "gear_mismatch"


# The thresholds of the ground-truth predicates (see the module docstring).
THRESHOLDS: Mapping[str, float] = {
    "speeding_kmh": 80.0,
    "harsh_braking_ms2": -7.0,
    "harsh_acceleration_ms2": 4.0,
    "crash_ms2": -30.0,
    "low_fuel_pct": 10.0,
    "low_battery_pct": 15.0,
    "overheating_c": 110.0,
    "overheating_seed_c": 200.0,
    "over_revving_rpm": 6000.0,
    "collision_ttc_s": 2.0,
    "offline_s": 600.0,
}

# What normal driving never exceeds.
NORMAL: Mapping[str, float] = {
    "max_speed_kmh": 56.0,
    "max_abs_accel_ms2": 3.0,
    "min_fuel_pct": 20.0,
    "min_battery_pct": 20.0,
    "max_coolant_c": 100.0,
    "max_rpm": 3300.0,
    "max_idle_s": 90.0,
    "min_ttc_s": 8.0,
    "route_radius_km": 9.0,
    "geofence_radius_km": 15.0,
}

# Where a detection threshold can sit: above the normal bound, below the scenario's value.
SAFE_BANDS: Mapping[ScenarioKind, tuple[float, float]] = {
    ScenarioKind.SPEEDING: (56.0, 95.0),  # km/h
    ScenarioKind.HARSH_BRAKING: (-8.3, -3.0),  # m/s²
    ScenarioKind.HARSH_ACCELERATION: (3.0, 4.3),  # m/s²
    ScenarioKind.CRASH: (-38.0, -8.7),  # m/s² (or the device's crash alarm)
    ScenarioKind.IDLING: (90.0, 480.0),  # seconds stationary with ignition on
    ScenarioKind.OFFLINE: (1.0, 720.0),  # seconds without telemetry (ticks are ≤ 1 s apart)
    ScenarioKind.COLLISION_RISK: (0.4, 8.0),  # seconds to collision
    ScenarioKind.LOW_FUEL: (7.0, 20.0),  # %
    ScenarioKind.LOW_BATTERY: (12.0, 20.0),  # %
    ScenarioKind.OVERHEATING: (100.0, 215.0),  # °C (the peak is configurable)
    ScenarioKind.OVER_REVVING: (3300.0, 6200.0),  # rpm
}

# Kinds that only some vehicles can have.
COMBUSTION_ONLY = frozenset(
    {
        ScenarioKind.LOW_FUEL,
        ScenarioKind.OVERHEATING,
        ScenarioKind.OVER_REVVING,
        ScenarioKind.GEAR_MISMATCH,
    }
)
ELECTRIC_ONLY = frozenset({ScenarioKind.LOW_BATTERY})
PERCEPTION_ONLY = frozenset({ScenarioKind.COLLISION_RISK})
NOT_HEAVY = frozenset({ScenarioKind.HARSH_ACCELERATION})

# Other rules a scenario necessarily trips; recorded as ground truth with ``cause`` set.
IMPLIED_KINDS: Mapping[ScenarioKind, tuple[ScenarioKind, ...]] = {
    ScenarioKind.CRASH: (ScenarioKind.HARSH_BRAKING,),
}


def time_to_collision_s(distance_m: float, closing_speed_ms: float) -> float:
    """Seconds until contact at the current closing speed; infinite when not closing."""
    if closing_speed_ms <= 0.0:
        return math.inf
    return distance_m / closing_speed_ms


@dataclass(frozen=True, slots=True, order=True)
class GroundTruth:
    """One injected episode: the first and last event time on which its predicate holds.

    ``cause`` is empty for the injected scenario itself and names the scenario for an episode of
    another rule that the scenario necessarily trips (``IMPLIED_KINDS``).
    """

    vehicle_id: str
    kind: str
    start_us: int
    end_us: int
    cause: str = ""

    def as_dict(self) -> dict[str, str | int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Injection:
    """Start ``kind`` on vehicle ``vehicle`` (1-based index) at the first chance after ``at_s``.

    The chance depends on the kind: a trip start, a departure from rest, cruising, a stop or a
    park (see the module docstring); vehicles drive through all of them within minutes.
    """

    vehicle: int
    kind: ScenarioKind
    at_s: float


@dataclass(frozen=True)
class ScenarioMix:
    """Random injection: episodes per vehicle-hour for each kind, deterministic from the seed.

    A kind that a vehicle cannot have (``low_battery`` on a diesel van) is not drawn for it.
    """

    rates_per_vehicle_hour: Mapping[ScenarioKind, float]

    @classmethod
    def parse(cls, spec: str) -> ScenarioMix:
        """``"speeding=0.5,crash=0.01"`` or ``"all=0.02"``; ``""`` or ``"none"`` injects nothing.

        Rates are episodes per vehicle per hour of simulated time.
        """
        rates: dict[ScenarioKind, float] = {}
        spec = spec.strip()
        if spec in {"", "none"}:
            return cls({})
        for part in spec.split(","):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep:
                raise ValueError(f"scenario {part!r}: expected kind=rate, e.g. speeding=0.5")
            try:
                rate = float(value)
            except ValueError:
                raise ValueError(f"scenario {name}: rate {value!r} is not a number") from None
            if not math.isfinite(rate) or rate < 0:
                raise ValueError(f"scenario {name}: rate {value!r} must be ≥ 0")
            if name == "all":
                rates.update(dict.fromkeys(ScenarioKind, rate))
                continue
            try:
                rates[ScenarioKind(name)] = rate
            except ValueError:
                known = ", ".join(k.value for k in ScenarioKind)
                raise ValueError(f"unknown scenario {name!r}; known: all, {known}") from None
        return cls({k: r for k, r in rates.items() if r > 0})

    def applicable(
        self, *, electric: bool, perception: bool, heavy: bool
    ) -> list[tuple[ScenarioKind, float]]:
        out = []
        for kind, rate in self.rates_per_vehicle_hour.items():
            if kind in COMBUSTION_ONLY and electric:
                continue
            if kind in ELECTRIC_ONLY and not electric:
                continue
            if kind in PERCEPTION_ONLY and not perception:
                continue
            if kind in NOT_HEAVY and heavy:
                continue
            out.append((kind, rate))
        return out


def write_ground_truth(truths: Iterable[GroundTruth], path: Path) -> int:
    """Write ground truth as JSON lines (``.jsonl``/``.json``) or CSV (``.csv``); returns rows."""
    rows = sorted(truths, key=lambda g: (g.start_us, g.vehicle_id, g.kind))
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as f:
        if path.suffix.lower() == ".csv":
            writer = csv.writer(f)
            writer.writerow(("vehicle_id", "kind", "start_us", "end_us", "cause"))
            for g in rows:
                writer.writerow((g.vehicle_id, g.kind, g.start_us, g.end_us, g.cause))
        else:
            for g in rows:
                f.write(json.dumps(g.as_dict()) + "\n")
    tmp.replace(path)
    return len(rows)


def read_ground_truth(path: Path) -> list[GroundTruth]:
    """Read what :func:`write_ground_truth` wrote."""
    text = path.read_text()
    if path.suffix.lower() == ".csv":
        return [
            GroundTruth(
                r["vehicle_id"], r["kind"], int(r["start_us"]), int(r["end_us"]), r["cause"]
            )
            for r in csv.DictReader(text.splitlines())
        ]
    out = []
    for line in text.splitlines():
        if line.strip():
            d = json.loads(line)
            out.append(
                GroundTruth(
                    d["vehicle_id"], d["kind"], d["start_us"], d["end_us"], d.get("cause", "")
                )
            )
    return out


def episodes(
    times_us: Sequence[int], flags: Sequence[bool], *, max_gap_us: int
) -> list[tuple[int, int]]:
    """Maximal runs of flagged events: (first, last) event time, split where a gap > max_gap_us.

    A reference implementation of "when does a predicate hold", used by tests to check ground
    truth against the events themselves.
    """
    out: list[tuple[int, int]] = []
    start = last = None
    for t, flag in zip(times_us, flags, strict=True):
        if flag:
            if start is None or last is None or t - last > max_gap_us:
                if start is not None and last is not None:
                    out.append((start, last))
                start = t
            last = t
        elif start is not None and last is not None:
            out.append((start, last))
            start = last = None
    if start is not None and last is not None:
        out.append((start, last))
    return out
