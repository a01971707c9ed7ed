"""The alerting rules: pure functions of readings (and the rule's configuration).

Speeding, whose limit has a precedence of its own, is in :mod:`~.speeding`; the set of rules a
configuration enables, in :mod:`~.ruleset`.

A rule's ``check(columns, holding)`` looks at a whole batch of readings at once (numpy arrays,
one per field) and returns, per reading, the value that makes its condition true (the speed over
the limit, the fuel level under the threshold, ...) or NaN where the condition does not hold.
Evaluating a batch at a time keeps the per-event cost of a dozen rules to a few vector
operations; :meth:`Rule.check_one` asks about a single :class:`Reading`.

``holding`` is true for a vehicle whose episode is already open: the rule then applies its
hysteresis band, so a value hovering around a threshold does not open and resolve episodes in
turn. Rules whose ``lower_is_worse`` is set report values where smaller is more severe (fuel,
time to collision). A non-finite input never triggers (see :mod:`~.readings`). Time — minimum
durations, clearing, updates — is the episode machine's business (``episodes.py``); offline
detection, driven by processing time, is the detector's.
"""

from __future__ import annotations

import math

import numpy as np

from fleetpipe.detection.config import (
    CollisionRiskConfig,
    CrashConfig,
    DeviceAlarmConfig,
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
    ServiceDueConfig,
    Severity,
)
from fleetpipe.detection.readings import NAN, Bools, Columns, Floats, Reading
from fleetpipe.pb.v1 import alert_pb2, enriched_pb2

SEVERITY = {
    "info": alert_pb2.SEVERITY_INFO,
    "warning": alert_pb2.SEVERITY_WARNING,
    "critical": alert_pb2.SEVERITY_CRITICAL,
}


def where(condition: Bools, values: Floats) -> Floats:
    """``values`` where ``condition`` holds, NaN elsewhere."""
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

    def annotate(self, message: enriched_pb2.EnrichedTelemetry) -> str:
        """What the alert's message adds from the triggering event itself ("" for nothing)."""
        return ""


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
        return where(~c.electric & c.has_engine & (c.fuel < bound), c.fuel)

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
        return where(c.has_engine & (c.coolant > bound), c.coolant)

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
        return where(low, c.battery)

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
        return where(c.has_engine & (c.rpm > bound), c.rpm)

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
        return where(applies & (off > self.tolerance), off)

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
        return where((decel >= bound) & (decel < self.ceiling), decel)

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
        return where((c.accel_x >= bound) & (c.accel_x < self.ceiling), c.accel_x)

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
        return where(hit, np.nan_to_num(g, nan=0.0))

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
        return where(c.sos, np.ones(c.size))

    def describe(self, values: dict[str, float]) -> str:
        return "SOS button pressed"


class DeviceAlarm(Rule):
    """The device's own tamper or power-cut alarm, while it is raised."""

    def __init__(self, c: DeviceAlarmConfig, *, alarm: str) -> None:
        self.name = alarm
        super().__init__(c)
        self.alarm = alarm

    def check(self, c: Columns, holding: bool) -> Floats:
        raised: Bools = getattr(c, self.alarm)
        return where(raised, np.ones(c.size))

    def values(self, r: Reading) -> dict[str, float]:
        return {"speed_kmh": r.speed}

    def describe(self, values: dict[str, float]) -> str:
        return "device tampered with" if self.alarm == "tamper" else "device power cut"


class TroubleCodes(Rule):
    """Diagnostic trouble codes reported; the alert's message names them."""

    name = "diagnostic_trouble_code"

    def check(self, c: Columns, holding: bool) -> Floats:
        return where(c.dtc_count > 0, c.dtc_count)

    def values(self, r: Reading) -> dict[str, float]:
        return {"codes": r.dtc_count}

    def annotate(self, message: enriched_pb2.EnrichedTelemetry) -> str:
        return ", ".join(message.telemetry.dtc_codes)

    def describe(self, values: dict[str, float]) -> str:
        return "diagnostic trouble code reported"


class ServiceDue(Rule):
    """Past the service interval since the last recorded service."""

    name = "service_due"

    def __init__(self, c: ServiceDueConfig) -> None:
        super().__init__(c)
        self.interval = c.interval_km

    def check(self, c: Columns, holding: bool) -> Floats:
        since = c.odometer - c.last_service
        return where((c.last_service > 0) & (since >= self.interval), since)

    def values(self, r: Reading) -> dict[str, float]:
        return {
            "odometer_km": r.odometer,
            "last_service_km": r.last_service,
            "interval_km": self.interval,
        }

    def describe(self, values: dict[str, float]) -> str:
        since = values.get("odometer_km", 0) - values.get("last_service_km", 0)
        return f"service due: {since:,.0f} km since the last service"


class Idling(Rule):
    name = "idling"

    def __init__(self, c: IdlingConfig) -> None:
        super().__init__(c)
        self.max_speed = c.max_speed_kmh

    def check(self, c: Columns, holding: bool) -> Floats:
        return where(c.ignition & (c.speed <= self.max_speed), np.ones(c.size))

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
        return where(applies & (ttc < bound), ttc)

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
        return where(breach, np.ones(c.size))

    def values(self, r: Reading) -> dict[str, float]:
        return {"lat": r.lat, "lon": r.lon}

    def describe(self, values: dict[str, float]) -> str:
        verb = "left" if self.keep_in else "entered"
        return f"{verb} geofence {self.fence}"


def severity_of(name: Severity) -> int:
    return SEVERITY[name]
