"""The alerting rules: pure functions of one reading (and the rule's configuration).

A rule's ``check(reading, holding)`` returns the value that makes the condition true (the speed
over the limit, the fuel level under the threshold, ...) or ``None`` when it does not hold.
``holding`` is true while an episode is already open: the rule then applies its hysteresis
band, so a value hovering around a threshold does not open and resolve episodes in turn. Rules
whose ``lower_is_worse`` is set report values where smaller is more severe (fuel, time to
collision). Time — minimum durations, clearing, updates — is the episode machine's business
(``episodes.py``); offline detection, driven by processing time, lives in the detector.
"""

from __future__ import annotations

import math

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
    SosConfig,
    SpeedingConfig,
)
from fleetpipe.pb.v1 import alert_pb2

SEVERITY = {
    "info": alert_pb2.SEVERITY_INFO,
    "warning": alert_pb2.SEVERITY_WARNING,
    "critical": alert_pb2.SEVERITY_CRITICAL,
}


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
        "ingest_us",
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
        ingest_us: int = 0,
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
        self.ingest_us = ingest_us
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

    def check(self, r: Reading, holding: bool) -> float | None:
        raise NotImplementedError

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

    def limit(self, r: Reading) -> float:
        return r.limit if self.use_zone and r.limit > 0 else self.threshold

    def check(self, r: Reading, holding: bool) -> float | None:
        bound = self.limit(r) + self.tolerance
        if holding:
            bound -= self.hysteresis
        return r.speed if r.speed > bound else None

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

    def check(self, r: Reading, holding: bool) -> float | None:
        # Electric vehicles report no fuel; a missing engine block says nothing about fuel.
        if r.electric or not r.has_engine:
            return None
        bound = self.threshold + self.hysteresis if holding else self.threshold
        return r.fuel if r.fuel < bound else None

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

    def check(self, r: Reading, holding: bool) -> float | None:
        if not r.has_engine:
            return None
        bound = self.threshold - self.hysteresis if holding else self.threshold
        return r.coolant if r.coolant > bound else None

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

    def check(self, r: Reading, holding: bool) -> float | None:
        if not r.has_battery or r.charging or (self.electric_only and not r.electric):
            return None
        bound = self.threshold + self.hysteresis if holding else self.threshold
        return r.battery if r.battery < bound else None

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

    def check(self, r: Reading, holding: bool) -> float | None:
        if not r.has_engine:
            return None
        bound = self.threshold - self.hysteresis if holding else self.threshold
        return r.rpm if r.rpm > bound else None

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

    def check(self, r: Reading, holding: bool) -> float | None:
        # expected_gear is 0 when it does not apply (stationary, electric).
        if r.expected_gear <= 0 or r.electric or not r.has_engine or r.speed < self.min_speed:
            return None
        off = abs(r.gear - r.expected_gear)
        return float(off) if off > self.tolerance else None

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

    def check(self, r: Reading, holding: bool) -> float | None:
        decel = -r.accel_x
        bound = self.threshold - self.hysteresis if holding else self.threshold
        return decel if bound <= decel < self.ceiling else None

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

    def check(self, r: Reading, holding: bool) -> float | None:
        bound = self.threshold - self.hysteresis if holding else self.threshold
        return r.accel_x if bound <= r.accel_x < self.ceiling else None

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

    def check(self, r: Reading, holding: bool) -> float | None:
        g = math.hypot(r.accel_x, r.accel_y)
        if g >= self.threshold or (self.use_alarm and r.crash_alarm):
            return g
        return None

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

    def __init__(self, c: SosConfig) -> None:
        super().__init__(c)

    def check(self, r: Reading, holding: bool) -> float | None:
        return 1.0 if r.sos else None

    def describe(self, values: dict[str, float]) -> str:
        return "SOS button pressed"


class Idling(Rule):
    name = "idling"

    def __init__(self, c: IdlingConfig) -> None:
        super().__init__(c)
        self.max_speed = c.max_speed_kmh

    def check(self, r: Reading, holding: bool) -> float | None:
        return 1.0 if r.ignition and r.speed <= self.max_speed else None

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

    def check(self, r: Reading, holding: bool) -> float | None:
        if not r.has_perception or r.closing_speed < self.min_closing or r.closing_speed <= 0:
            return None
        ttc = r.object_distance / r.closing_speed
        bound = self.ttc + self.hysteresis if holding else self.ttc
        return ttc if ttc < bound else None

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
        self.fleets = frozenset(fence.fleets)

    def check(self, r: Reading, holding: bool) -> float | None:
        if self.fleets and r.fleet_id not in self.fleets:
            return None
        inside = r.inside[self.index]
        return 1.0 if inside != self.keep_in else None

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
