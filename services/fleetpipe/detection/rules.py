"""The alerting rules: pure functions of readings (and the rule's configuration).

A rule's ``check(columns, holding)`` looks at a whole batch of readings at once (numpy arrays,
one per field) and returns, per reading, the value that makes its condition true (the speed over
the limit, the fuel level under the threshold, ...) or NaN where the condition does not hold.
Evaluating a batch at a time keeps the per-event cost of a dozen rules to a few vector
operations; :meth:`Rule.check_one` asks about a single :class:`Reading`.

``holding`` is true for a vehicle whose episode is already open: the rule then applies its
hysteresis band, so a value hovering around a threshold does not open and resolve episodes in
turn. Rules whose ``lower_is_worse`` is set report values where smaller is more severe (fuel,
time to collision). A non-finite input never triggers: :class:`Columns` holds ±inf as NaN, and
no comparison with NaN holds. Time — minimum durations, clearing, updates — is the episode machine's
business (``episodes.py``); offline detection, driven by processing time, is the detector's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from fleetpipe.detection.config import (
    CollisionRiskConfig,
    CrashConfig,
    Fence,
    GearMismatchConfig,
    GeofenceConfig,
    HarshConfig,
    IdlingConfig,
    LowBatteryConfig,
    LowFuelConfig,
    OverheatingConfig,
    OverRevvingConfig,
    RuleConfig,
    Rules,
    Severity,
    SpeedingConfig,
)
from fleetpipe.pb.v1 import alert_pb2

SEVERITY = {
    "info": alert_pb2.SEVERITY_INFO,
    "warning": alert_pb2.SEVERITY_WARNING,
    "critical": alert_pb2.SEVERITY_CRITICAL,
}

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
NAN = math.nan


class Reading:
    """The fields of one enriched event the rules look at, read once from the protobuf."""

    __slots__ = (
        "accel_x",
        "accel_y",
        "battery",
        "charging",
        "closing_speed",
        "coolant",
        "crash_alarm",
        "electric",
        "expected_gear",
        "fleet_id",
        "fuel",
        "gear",
        "has_battery",
        "has_engine",
        "has_perception",
        "ignition",
        "inside",
        "lat",
        "limit",
        "lon",
        "object_distance",
        "rpm",
        "seq",
        "sos",
        "speed",
        "t_us",
    )

    def __init__(
        self,
        *,
        seq: int = 1,
        t_us: int = 0,
        lat: float = 0.0,
        lon: float = 0.0,
        speed: float = 0.0,
        accel_x: float = 0.0,
        accel_y: float = 0.0,
        has_engine: bool = True,
        rpm: float = 0.0,
        gear: int = 0,
        fuel: float = 50.0,
        coolant: float = 90.0,
        ignition: bool = True,
        has_battery: bool = True,
        battery: float = 80.0,
        charging: bool = False,
        sos: bool = False,
        crash_alarm: bool = False,
        has_perception: bool = False,
        object_distance: float = 0.0,
        closing_speed: float = 0.0,
        limit: float = 0.0,
        expected_gear: int = 0,
        electric: bool = False,
        fleet_id: str = "",
        inside: tuple[bool, ...] = (),
    ) -> None:
        self.seq = seq
        self.t_us = t_us
        self.lat = lat
        self.lon = lon
        self.speed = speed
        self.accel_x = accel_x
        self.accel_y = accel_y
        self.has_engine = has_engine
        self.rpm = rpm
        self.gear = gear
        self.fuel = fuel
        self.coolant = coolant
        self.ignition = ignition
        self.has_battery = has_battery
        self.battery = battery
        self.charging = charging
        self.sos = sos
        self.crash_alarm = crash_alarm
        self.has_perception = has_perception
        self.object_distance = object_distance
        self.closing_speed = closing_speed
        self.limit = limit
        self.expected_gear = expected_gear
        self.electric = electric
        self.fleet_id = fleet_id
        # Per configured fence (in order): is the position inside it? Filled per batch.
        self.inside = inside


FLOAT_FIELDS = (
    "speed",
    "accel_x",
    "accel_y",
    "rpm",
    "gear",
    "fuel",
    "coolant",
    "battery",
    "object_distance",
    "closing_speed",
    "limit",
    "expected_gear",
    "lat",
    "lon",
)
BOOL_FIELDS = (
    "ignition",
    "charging",
    "has_engine",
    "has_battery",
    "sos",
    "crash_alarm",
    "has_perception",
    "electric",
)


class Columns:
    """A batch of readings as one numpy array per field (see :class:`Reading` for each field)."""

    speed: Floats
    accel_x: Floats
    accel_y: Floats
    rpm: Floats
    gear: Floats
    fuel: Floats
    coolant: Floats
    battery: Floats
    object_distance: Floats
    closing_speed: Floats
    limit: Floats
    expected_gear: Floats
    lat: Floats
    lon: Floats
    ignition: Bools
    charging: Bools
    has_engine: Bools
    has_battery: Bools
    sos: Bools
    crash_alarm: Bools
    has_perception: Bools
    electric: Bools

    def __init__(
        self,
        floats: dict[str, Sequence[float]],
        bools: dict[str, Sequence[bool]],
        *,
        fleet_ids: Sequence[str],
        inside: Sequence[tuple[bool, ...]] = (),
    ) -> None:
        for name in FLOAT_FIELDS:
            column = np.array(floats[name], dtype=np.float64)
            # ±inf would pass a threshold (an infinite deceleration is no crash); NaN passes none.
            column[np.isinf(column)] = NAN
            setattr(self, name, column)
        for name in BOOL_FIELDS:
            setattr(self, name, np.asarray(bools[name], dtype=np.bool_))
        self.size = len(fleet_ids)
        self.fleet_ids = np.asarray(fleet_ids, dtype=object)
        # Per configured fence (in order), a column: is the position inside it?
        self.inside: list[Bools] = (
            [np.asarray(col, dtype=np.bool_) for col in zip(*inside, strict=True)] if inside else []
        )

    @classmethod
    def of(cls, readings: Sequence[Reading]) -> Columns:
        return cls(
            {name: [getattr(r, name) for r in readings] for name in FLOAT_FIELDS},
            {name: [getattr(r, name) for r in readings] for name in BOOL_FIELDS},
            fleet_ids=[r.fleet_id for r in readings],
            inside=[r.inside for r in readings],
        )

    def reading(self, i: int) -> Reading:
        """Row ``i`` as a :class:`Reading` (times and seq are the caller's to fill in)."""
        r = Reading(fleet_id=str(self.fleet_ids[i]))
        for name in FLOAT_FIELDS:
            setattr(r, name, float(getattr(self, name)[i]))
        for name in BOOL_FIELDS:
            setattr(r, name, bool(getattr(self, name)[i]))
        r.inside = tuple(bool(col[i]) for col in self.inside)
        return r


def _where(condition: Bools, values: Floats) -> Floats:
    return np.where(condition, values, NAN)


class Rule:
    """Common parts of a rule: its name, episode timing and severity."""

    name = ""
    lower_is_worse = False

    def __init__(self, config: RuleConfig) -> None:
        self.key = self.name
        self.severity = SEVERITY[config.severity]
        self.min_us = int(config.min_duration_s * 1e6)
        self.clear_us = int(config.clear_after_s * 1e6)
        self.update_us = int(config.update_interval_s * 1e6)

    def check(self, c: Columns, holding: bool) -> Floats:
        """Per reading, the triggering value, or NaN where the condition does not hold."""
        raise NotImplementedError

    def check_one(self, r: Reading, holding: bool) -> float | None:
        value = float(self.check(Columns.of([r]), holding)[0])
        return None if math.isnan(value) else value

    def values(self, r: Reading) -> dict[str, float]:
        """What triggered it, for the alert's ``values``."""
        return {}

    def describe(self, values: dict[str, float]) -> str:
        """One line a driver or dispatcher can read."""
        return self.name.replace("_", " ")


class Speeding(Rule):
    name = "speeding"

    def __init__(self, c: SpeedingConfig) -> None:
        super().__init__(c)
        self.threshold = c.threshold_kmh
        self.use_zone = c.use_zone_limit
        self.tolerance = c.tolerance_kmh
        self.hysteresis = c.hysteresis_kmh

    def limits(self, c: Columns) -> Floats:
        if not self.use_zone:
            return np.full(c.size, self.threshold)
        return np.where(c.limit > 0, c.limit, self.threshold)

    def limit(self, r: Reading) -> float:
        return r.limit if self.use_zone and r.limit > 0 else self.threshold

    def check(self, c: Columns, holding: bool) -> Floats:
        bound = self.limits(c) + (self.tolerance - (self.hysteresis if holding else 0.0))
        return _where(c.speed > bound, c.speed)

    def values(self, r: Reading) -> dict[str, float]:
        return {"speed_kmh": r.speed, "limit_kmh": self.limit(r)}

    def describe(self, values: dict[str, float]) -> str:
        return (
            f"speeding: {values.get('speed_kmh', 0):.0f} km/h where the limit is "
            f"{values.get('limit_kmh', 0):.0f} km/h"
        )


class LowFuel(Rule):
    name = "low_fuel"
    lower_is_worse = True

    def __init__(self, c: LowFuelConfig) -> None:
        super().__init__(c)
        self.threshold = c.threshold_pct
        self.hysteresis = c.hysteresis_pct

    def check(self, c: Columns, holding: bool) -> Floats:
        # Electric vehicles report no fuel; a missing engine block says nothing about fuel.
        bound = self.threshold + self.hysteresis if holding else self.threshold
        return _where(~c.electric & c.has_engine & (c.fuel < bound), c.fuel)

    def values(self, r: Reading) -> dict[str, float]:
        return {"fuel_pct": r.fuel, "threshold_pct": self.threshold}

    def describe(self, values: dict[str, float]) -> str:
        return f"low fuel: {values.get('fuel_pct', 0):.0f} % left"


class Overheating(Rule):
    name = "overheating"

    def __init__(self, c: OverheatingConfig) -> None:
        super().__init__(c)
        self.threshold = c.threshold_c
        self.hysteresis = c.hysteresis_c

    def check(self, c: Columns, holding: bool) -> Floats:
        bound = self.threshold - self.hysteresis if holding else self.threshold
        return _where(c.has_engine & (c.coolant > bound), c.coolant)

    def values(self, r: Reading) -> dict[str, float]:
        return {"coolant_temp_c": r.coolant, "threshold_c": self.threshold}

    def describe(self, values: dict[str, float]) -> str:
        return f"engine overheating: coolant at {values.get('coolant_temp_c', 0):.0f} °C"


class LowBattery(Rule):
    name = "low_battery"
    lower_is_worse = True

    def __init__(self, c: LowBatteryConfig) -> None:
        super().__init__(c)
        self.threshold = c.threshold_pct
        self.hysteresis = c.hysteresis_pct
        self.electric_only = c.electric_only

    def check(self, c: Columns, holding: bool) -> Floats:
        bound = self.threshold + self.hysteresis if holding else self.threshold
        low = c.has_battery & ~c.charging & (c.battery < bound)
        if self.electric_only:
            low &= c.electric
        return _where(low, c.battery)

    def values(self, r: Reading) -> dict[str, float]:
        return {"battery_pct": r.battery, "threshold_pct": self.threshold}

    def describe(self, values: dict[str, float]) -> str:
        return f"low battery: {values.get('battery_pct', 0):.0f} % and not charging"


class OverRevving(Rule):
    name = "over_revving"

    def __init__(self, c: OverRevvingConfig) -> None:
        super().__init__(c)
        self.threshold = c.threshold_rpm
        self.hysteresis = c.hysteresis_rpm

    def check(self, c: Columns, holding: bool) -> Floats:
        bound = self.threshold - self.hysteresis if holding else self.threshold
        return _where(c.has_engine & (c.rpm > bound), c.rpm)

    def values(self, r: Reading) -> dict[str, float]:
        return {"rpm": r.rpm, "threshold_rpm": self.threshold}

    def describe(self, values: dict[str, float]) -> str:
        return f"over-revving: {values.get('rpm', 0):.0f} rpm"


class GearMismatch(Rule):
    name = "gear_mismatch"

    def __init__(self, c: GearMismatchConfig) -> None:
        super().__init__(c)
        self.tolerance = c.tolerance_gears
        self.min_speed = c.min_speed_kmh

    def check(self, c: Columns, holding: bool) -> Floats:
        # expected_gear is 0 when it does not apply (stationary, electric).
        off = np.abs(c.gear - c.expected_gear)
        applies = (c.expected_gear > 0) & ~c.electric & c.has_engine & (c.speed >= self.min_speed)
        return _where(applies & (off > self.tolerance), off)

    def values(self, r: Reading) -> dict[str, float]:
        return {"gear": r.gear, "expected_gear": r.expected_gear, "speed_kmh": r.speed}

    def describe(self, values: dict[str, float]) -> str:
        return (
            f"gear mismatch: gear {values.get('gear', 0):.0f} at "
            f"{values.get('speed_kmh', 0):.0f} km/h, expected {values.get('expected_gear', 0):.0f}"
        )


class HarshBraking(Rule):
    name = "harsh_braking"

    def __init__(self, c: HarshConfig, *, crash_ms2: float = math.inf) -> None:
        super().__init__(c)
        self.threshold = c.threshold_ms2
        self.hysteresis = c.hysteresis_ms2
        # A spike at crash level is the crash rule's, not a driving-style event.
        self.ceiling = crash_ms2

    def check(self, c: Columns, holding: bool) -> Floats:
        decel = -c.accel_x
        bound = self.threshold - self.hysteresis if holding else self.threshold
        return _where((decel >= bound) & (decel < self.ceiling), decel)

    def values(self, r: Reading) -> dict[str, float]:
        return {"decel_ms2": -r.accel_x, "speed_kmh": r.speed}

    def describe(self, values: dict[str, float]) -> str:
        return f"harsh braking: {values.get('decel_ms2', 0):.1f} m/s²"


class HarshAcceleration(Rule):
    name = "harsh_acceleration"

    def __init__(self, c: HarshConfig, *, crash_ms2: float = math.inf) -> None:
        super().__init__(c)
        self.threshold = c.threshold_ms2
        self.hysteresis = c.hysteresis_ms2
        self.ceiling = crash_ms2  # a rear impact is a crash, not a launch

    def check(self, c: Columns, holding: bool) -> Floats:
        bound = self.threshold - self.hysteresis if holding else self.threshold
        return _where((c.accel_x >= bound) & (c.accel_x < self.ceiling), c.accel_x)

    def values(self, r: Reading) -> dict[str, float]:
        return {"accel_ms2": r.accel_x, "speed_kmh": r.speed}

    def describe(self, values: dict[str, float]) -> str:
        return f"harsh acceleration: {values.get('accel_ms2', 0):.1f} m/s²"


class Crash(Rule):
    name = "crash"

    def __init__(self, c: CrashConfig) -> None:
        super().__init__(c)
        self.threshold = c.accel_threshold_ms2
        self.use_alarm = c.use_device_alarm

    def check(self, c: Columns, holding: bool) -> Floats:
        g = np.hypot(c.accel_x, c.accel_y)
        hit = g >= self.threshold
        if self.use_alarm:
            hit |= c.crash_alarm
        # The device's alarm stands on its own when the accelerometer read nothing usable.
        return _where(hit, np.nan_to_num(g, nan=0.0))

    def values(self, r: Reading) -> dict[str, float]:
        return {
            "accel_ms2": math.hypot(r.accel_x, r.accel_y),
            "device_alarm": 1.0 if r.crash_alarm else 0.0,
            "speed_kmh": r.speed,
        }

    def describe(self, values: dict[str, float]) -> str:
        how = "device crash alarm" if values.get("device_alarm") else "deceleration spike"
        return f"possible crash ({how}, {values.get('accel_ms2', 0):.0f} m/s²)"


class Sos(Rule):
    name = "sos"

    def check(self, c: Columns, holding: bool) -> Floats:
        return _where(c.sos, np.ones(c.size))

    def describe(self, values: dict[str, float]) -> str:
        return "SOS button pressed"


class Idling(Rule):
    name = "idling"

    def __init__(self, c: IdlingConfig) -> None:
        super().__init__(c)
        self.max_speed = c.max_speed_kmh

    def check(self, c: Columns, holding: bool) -> Floats:
        return _where(c.ignition & (c.speed <= self.max_speed), np.ones(c.size))

    def describe(self, values: dict[str, float]) -> str:
        return f"idling for {values.get('duration_s', 0) / 60:.0f} min"


class CollisionRisk(Rule):
    name = "collision_risk"
    lower_is_worse = True

    def __init__(self, c: CollisionRiskConfig) -> None:
        super().__init__(c)
        self.ttc = c.ttc_s
        self.hysteresis = c.hysteresis_s
        self.min_closing = c.min_closing_speed_ms

    def check(self, c: Columns, holding: bool) -> Floats:
        closing = c.closing_speed
        applies = c.has_perception & (closing >= self.min_closing) & (closing > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ttc = np.where(applies, c.object_distance / np.where(applies, closing, 1.0), NAN)
        bound = self.ttc + self.hysteresis if holding else self.ttc
        return _where(applies & (ttc < bound), ttc)

    def values(self, r: Reading) -> dict[str, float]:
        closing = r.closing_speed
        return {
            "ttc_s": r.object_distance / closing if closing > 0 else math.inf,
            "distance_m": r.object_distance,
            "closing_speed_ms": closing,
        }

    def describe(self, values: dict[str, float]) -> str:
        return (
            f"collision risk: object {values.get('distance_m', 0):.0f} m ahead, "
            f"{values.get('ttc_s', 0):.1f} s to impact"
        )


class FenceRule(Rule):
    """geofence_exit for a keep-in fence, geofence_entry for a keep-out fence."""

    def __init__(self, c: GeofenceConfig, fence: Fence, index: int) -> None:
        self.name = "geofence_exit" if fence.kind == "keep_in" else "geofence_entry"
        super().__init__(c)
        self.key = f"{self.name}:{fence.name}"
        self.fence = fence.name
        self.index = index
        self.keep_in = fence.kind == "keep_in"
        self.fleets = sorted(set(fence.fleets))

    def check(self, c: Columns, holding: bool) -> Floats:
        inside = c.inside[self.index]
        breach = ~inside if self.keep_in else inside
        breach &= ~(np.isnan(c.lat) | np.isnan(c.lon))  # no position says nothing of a fence
        if self.fleets:
            breach &= np.isin(c.fleet_ids, self.fleets)
        return _where(breach, np.ones(c.size))

    def values(self, r: Reading) -> dict[str, float]:
        return {"lat": r.lat, "lon": r.lon}

    def describe(self, values: dict[str, float]) -> str:
        verb = "left" if self.keep_in else "entered"
        return f"{verb} geofence {self.fence}"


def build_rules(rules: Rules) -> list[Rule]:
    """The enabled alerting rules, in evaluation order (offline is the detector's own)."""
    crash_ms2 = rules.crash.accel_threshold_ms2 if rules.crash.enabled else math.inf
    candidates: list[tuple[RuleConfig, Rule]] = [
        (rules.speeding, Speeding(rules.speeding)),
        (rules.low_fuel, LowFuel(rules.low_fuel)),
        (rules.overheating, Overheating(rules.overheating)),
        (rules.low_battery, LowBattery(rules.low_battery)),
        (rules.over_revving, OverRevving(rules.over_revving)),
        (rules.gear_mismatch, GearMismatch(rules.gear_mismatch)),
        (rules.harsh_braking, HarshBraking(rules.harsh_braking, crash_ms2=crash_ms2)),
        (
            rules.harsh_acceleration,
            HarshAcceleration(rules.harsh_acceleration, crash_ms2=crash_ms2),
        ),
        (rules.crash, Crash(rules.crash)),
        (rules.sos, Sos(rules.sos)),
        (rules.idling, Idling(rules.idling)),
        (rules.collision_risk, CollisionRisk(rules.collision_risk)),
    ]
    built = [rule for config, rule in candidates if config.enabled]
    if rules.geofence.enabled:
        built.extend(
            FenceRule(rules.geofence, fence, i) for i, fence in enumerate(rules.geofence.fences)
        )
    return built


def severity_of(name: Severity) -> int:
    return SEVERITY[name]
