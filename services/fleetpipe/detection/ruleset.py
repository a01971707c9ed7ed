"""The alerting rules a configuration enables, in evaluation order."""

from __future__ import annotations

import math

from fleetpipe.detection.config import RuleConfig, Rules
from fleetpipe.detection.rules import (
    CollisionRisk,
    Crash,
    DeviceAlarm,
    FenceRule,
    GearMismatch,
    HarshAcceleration,
    HarshBraking,
    Idling,
    LowBattery,
    LowFuel,
    Overheating,
    OverRevving,
    Rule,
    ServiceDue,
    Sos,
    TroubleCodes,
)
from fleetpipe.detection.speeding import speeding_rules


def build_rules(rules: Rules) -> list[Rule]:
    """The enabled alerting rules, in evaluation order (offline is the detector's own)."""
    crash_ms2 = rules.crash.accel_threshold_ms2 if rules.crash.enabled else math.inf
    built: list[Rule] = list(speeding_rules(rules.speeding)) if rules.speeding.enabled else []
    candidates: list[tuple[RuleConfig, Rule]] = [
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
        (rules.tamper, DeviceAlarm(rules.tamper, alarm="tamper")),
        (rules.power_cut, DeviceAlarm(rules.power_cut, alarm="power_cut")),
        (rules.dtc, TroubleCodes(rules.dtc)),
        (rules.service_due, ServiceDue(rules.service_due)),
        (rules.idling, Idling(rules.idling)),
        (rules.collision_risk, CollisionRisk(rules.collision_risk)),
    ]
    built.extend(rule for config, rule in candidates if config.enabled)
    if rules.geofence.enabled:
        built.extend(
            FenceRule(rules.geofence, fence, i) for i, fence in enumerate(rules.geofence.fences)
        )
    return built
