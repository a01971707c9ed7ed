"""Every rule as a table: a reading, whether an episode is already open, and the verdict."""

from __future__ import annotations

from typing import Any

import pytest

from fleetpipe.core.errors import ConfigError
from fleetpipe.detection.config import Fence, Rules, SpeedTier
from fleetpipe.detection.readings import Reading
from fleetpipe.detection.rules import (
    SEVERITY,
    CollisionRisk,
    Crash,
    FenceRule,
    GearMismatch,
    HarshAcceleration,
    HarshBraking,
    Idling,
    LowBattery,
    LowFuel,
    Overheating,
    OverRevving,
    Sos,
)
from fleetpipe.detection.ruleset import build_rules
from fleetpipe.detection.speeding import Speeding, SpeedingTier, speeding_rules

pytestmark = pytest.mark.unit

RULES = Rules()
R = Reading


def _case(
    reading: dict[str, Any], expected: float | None, *, holding: bool = False, id: str
) -> object:
    return pytest.param(reading, holding, expected, id=id)


@pytest.mark.parametrize(
    ("reading", "holding", "expected"),
    [
        _case({"speed": 80.0}, None, id="at-the-seed-limit"),
        _case({"speed": 80.5}, 80.5, id="over-the-seed-limit"),
        _case({"speed": 55.0, "zone_limit": 50.0}, 55.0, id="over-the-zone-limit"),
        _case({"speed": 95.0, "zone_limit": 100.0}, None, id="under-a-higher-zone-limit"),
        _case({"speed": 85.0, "vehicle_limit": 80.0, "zone_limit": 100.0}, 85.0, id="type-caps"),
        _case({"speed": 45.0, "vehicle_limit": 80.0, "zone_limit": 40.0}, 45.0, id="zone-lower"),
        _case({"speed": 77.0}, 77.0, holding=True, id="inside-hysteresis-still-holds"),
        _case({"speed": 75.0}, None, holding=True, id="below-hysteresis-clears"),
    ],
)
def test_speeding(reading: dict[str, Any], holding: bool, expected: float | None) -> None:
    assert Speeding(RULES.speeding).check_one(R(**reading), holding) == expected


def test_speeding_can_ignore_the_zone_limit_and_tolerate_a_margin() -> None:
    rule = Speeding(RULES.speeding.model_copy(update={"use_zone_limit": False, "tolerance_kmh": 5}))
    assert rule.check_one(R(speed=84.0, zone_limit=30.0), False) is None
    assert rule.check_one(R(speed=85.5, zone_limit=30.0), False) == 85.5


@pytest.mark.parametrize(
    ("speeding", "reading", "limit"),
    [
        pytest.param({"threshold_kmh": 120}, {}, 120.0, id="threshold-where-no-zone"),
        pytest.param({"threshold_kmh": 120}, {"zone_limit": 50.0}, 50.0, id="zone-replaces-it"),
        pytest.param({"threshold_kmh": 60}, {"zone_limit": 110.0}, 110.0, id="higher-zone-too"),
        pytest.param(
            {"threshold_kmh": 120}, {"vehicle_limit": 90.0}, 90.0, id="vehicle-caps-threshold"
        ),
        pytest.param(
            {"threshold_kmh": 80}, {"vehicle_limit": 90.0}, 80.0, id="vehicle-never-raises"
        ),
        pytest.param(
            {"use_zone_limit": False}, {"zone_limit": 30.0}, 80.0, id="zone-limit-switched-off"
        ),
        pytest.param(
            {"use_vehicle_limit": False}, {"vehicle_limit": 60.0}, 80.0, id="vehicle-switched-off"
        ),
    ],
)
def test_the_limit_that_applies_follows_the_stated_precedence(
    speeding: dict[str, Any], reading: dict[str, Any], limit: float
) -> None:
    rule = Speeding(Rules.parse({"speeding": speeding}).speeding)
    assert rule.limit(R(**reading)) == limit


def test_a_tier_opens_its_own_episode_with_its_own_severity() -> None:
    config = Rules.parse(
        {
            "speeding": {
                "tiers": [
                    {"severity": "critical", "above_kmh": 120},
                    {"severity": "info", "over_limit_kmh": 10},
                ]
            }
        }
    ).speeding
    base, critical, info = speeding_rules(config)
    assert isinstance(critical, SpeedingTier) and isinstance(info, SpeedingTier)
    assert (base.key, critical.key, info.key) == ("speeding", "speeding:critical", "speeding:info")
    assert critical.severity == SEVERITY["critical"] and base.severity == SEVERITY["warning"]
    in_town = R(speed=62.0, zone_limit=50.0)
    assert [rule.check_one(in_town, False) for rule in (base, critical, info)] == [62.0, None, 62.0]
    motorway = R(speed=121.0, zone_limit=130.0)
    assert [rule.check_one(motorway, False) for rule in (base, critical, info)] == [
        None,
        121.0,
        None,
    ]


@pytest.mark.parametrize(
    ("speeding", "problem"),
    [
        pytest.param({"tiers": [{"severity": "critical"}]}, "exactly one", id="no-bound"),
        pytest.param(
            {"tiers": [{"severity": "critical", "above_kmh": 100, "over_limit_kmh": 5}]},
            "exactly one",
            id="two-bounds",
        ),
        pytest.param(
            {"tiers": [{"severity": "warning", "above_kmh": 100}]}, "severity", id="same-as-base"
        ),
    ],
)
def test_a_tier_is_refused_unless_it_has_one_bound_and_its_own_severity(
    speeding: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        Rules.parse({"speeding": speeding})


def test_the_default_tiers_hold_seed_000_and_002_at_once() -> None:
    assert RULES.speeding.threshold_kmh == 80
    assert RULES.speeding.tiers == [SpeedTier(severity="critical", above_kmh=120)]


@pytest.mark.parametrize(
    ("reading", "holding", "expected"),
    [
        _case({"fuel": 9.5}, 9.5, id="below-10-pct"),
        _case({"fuel": 10.0}, None, id="at-10-pct"),
        _case({"fuel": 11.0}, 11.0, holding=True, id="hysteresis-holds"),
        _case({"fuel": 12.5}, None, holding=True, id="refuelled"),
        _case({"fuel": 0.0, "electric": True}, None, id="electric-has-no-fuel"),
        _case({"fuel": 0.0, "has_engine": False}, None, id="no-engine-block"),
    ],
)
def test_low_fuel(reading: dict[str, Any], holding: bool, expected: float | None) -> None:
    assert LowFuel(RULES.low_fuel).check_one(R(**reading), holding) == expected


@pytest.mark.parametrize(
    ("reading", "holding", "expected"),
    [
        _case({"coolant": 201.0}, 201.0, id="above-200-as-the-seed"),
        _case({"coolant": 200.0}, None, id="at-200"),
        _case({"coolant": 120.0}, None, id="hot-but-under-seed-threshold"),
        _case({"coolant": 196.0}, 196.0, holding=True, id="hysteresis-holds"),
        _case({"coolant": 300.0, "has_engine": False}, None, id="no-engine-block"),
    ],
)
def test_overheating(reading: dict[str, Any], holding: bool, expected: float | None) -> None:
    assert Overheating(RULES.overheating).check_one(R(**reading), holding) == expected


def test_overheating_realistic_profile_uses_a_coolant_threshold() -> None:
    rules = Rules.parse({"profile": "realistic"})
    assert Overheating(rules.overheating).check_one(R(coolant=112.0), False) == 112.0
    assert Overheating(rules.overheating).check_one(R(coolant=105.0), False) is None


@pytest.mark.parametrize(
    ("reading", "holding", "expected"),
    [
        _case({"battery": 14.0}, 14.0, id="below-15-not-charging"),
        _case({"battery": 14.0, "charging": True}, None, id="charging"),
        _case({"battery": 15.0}, None, id="at-15"),
        _case({"battery": 16.0}, 16.0, holding=True, id="hysteresis-holds"),
        _case({"battery": 5.0, "has_battery": False}, None, id="no-battery-block"),
    ],
)
def test_low_battery(reading: dict[str, Any], holding: bool, expected: float | None) -> None:
    assert LowBattery(RULES.low_battery).check_one(R(**reading), holding) == expected


def test_low_battery_electric_only() -> None:
    rule = LowBattery(RULES.low_battery.model_copy(update={"electric_only": True}))
    assert rule.check_one(R(battery=5.0), False) is None
    assert rule.check_one(R(battery=5.0, electric=True), False) == 5.0


@pytest.mark.parametrize(
    ("reading", "holding", "expected"),
    [
        _case({"rpm": 6500}, 6500, id="above-6000"),
        _case({"rpm": 6000}, None, id="at-6000"),
        _case({"rpm": 5800}, 5800, holding=True, id="hysteresis-holds"),
        _case({"rpm": 5600}, None, holding=True, id="clears"),
    ],
)
def test_over_revving(reading: dict[str, Any], holding: bool, expected: float | None) -> None:
    assert OverRevving(RULES.over_revving).check_one(R(**reading), holding) == expected


@pytest.mark.parametrize(
    ("reading", "holding", "expected"),
    [
        _case({"speed": 60.0, "gear": 4, "expected_gear": 4}, None, id="right-gear"),
        _case({"speed": 60.0, "gear": 3, "expected_gear": 4}, 1.0, id="one-off-as-the-seed"),
        _case({"speed": 60.0, "gear": 2, "expected_gear": 4}, 2.0, id="two-off"),
        _case({"speed": 60.0, "gear": -1, "expected_gear": 4}, 5.0, id="reverse-at-speed"),
        _case({"speed": 3.0, "gear": 5, "expected_gear": 1}, None, id="too-slow-to-judge"),
        _case({"speed": 60.0, "gear": 1, "expected_gear": 0}, None, id="not-applicable"),
        _case(
            {"speed": 60.0, "gear": 1, "expected_gear": 4, "electric": True}, None, id="electric"
        ),
    ],
)
def test_gear_mismatch(reading: dict[str, Any], holding: bool, expected: float | None) -> None:
    assert GearMismatch(RULES.gear_mismatch).check_one(R(**reading), holding) == expected


def test_gear_mismatch_realistic_profile_tolerates_one_gear() -> None:
    rule = GearMismatch(Rules.parse({"profile": "realistic"}).gear_mismatch)
    assert rule.check_one(R(speed=60.0, gear=3, expected_gear=4), False) is None
    assert rule.check_one(R(speed=60.0, gear=2, expected_gear=4), False) == 2.0


@pytest.mark.parametrize(
    ("reading", "holding", "expected"),
    [
        _case({"accel_x": -4.5}, 4.5, id="hard-stop"),
        _case({"accel_x": -3.0}, None, id="firm-stop"),
        _case({"accel_x": -3.6}, 3.6, holding=True, id="hysteresis-holds"),
        _case({"accel_x": 5.0}, None, id="accelerating"),
        _case({"accel_x": -45.0}, None, id="crash-level-is-the-crash-rules"),
    ],
)
def test_harsh_braking(reading: dict[str, Any], holding: bool, expected: float | None) -> None:
    rule = HarshBraking(RULES.harsh_braking, crash_ms2=RULES.crash.accel_threshold_ms2)
    assert rule.check_one(R(**reading), holding) == expected


@pytest.mark.parametrize(
    ("reading", "holding", "expected"),
    [
        _case({"accel_x": 4.0}, 4.0, id="launch"),
        _case({"accel_x": 3.0}, None, id="brisk"),
        _case({"accel_x": -6.0}, None, id="braking"),
    ],
)
def test_harsh_acceleration(reading: dict[str, Any], holding: bool, expected: float | None) -> None:
    assert HarshAcceleration(RULES.harsh_acceleration).check_one(R(**reading), holding) == expected


@pytest.mark.parametrize(
    ("reading", "holding", "expected"),
    [
        _case({"accel_x": -35.0}, 35.0, id="deceleration-spike"),
        _case({"accel_x": -18.0, "accel_y": 24.0}, 30.0, id="side-impact"),
        _case({"crash_alarm": True}, 0.0, id="device-alarm"),
        _case({"accel_x": -9.0}, None, id="emergency-stop-is-no-crash"),
    ],
)
def test_crash(reading: dict[str, Any], holding: bool, expected: float | None) -> None:
    assert Crash(RULES.crash).check_one(R(**reading), holding) == expected


def test_crash_can_ignore_the_device_alarm() -> None:
    rule = Crash(RULES.crash.model_copy(update={"use_device_alarm": False}))
    assert rule.check_one(R(crash_alarm=True), False) is None


@pytest.mark.parametrize(
    ("reading", "holding", "expected"),
    [
        _case({"sos": True}, 1.0, id="pressed"),
        _case({"sos": False}, None, id="not-pressed"),
    ],
)
def test_sos(reading: dict[str, Any], holding: bool, expected: float | None) -> None:
    assert Sos(RULES.sos).check_one(R(**reading), holding) == expected


@pytest.mark.parametrize(
    ("reading", "holding", "expected"),
    [
        _case({"speed": 0.0, "ignition": True}, 1.0, id="engine-on-stationary"),
        _case({"speed": 1.5, "ignition": True}, 1.0, id="creeping"),
        _case({"speed": 0.0, "ignition": False}, None, id="parked"),
        _case({"speed": 20.0, "ignition": True}, None, id="driving"),
    ],
)
def test_idling(reading: dict[str, Any], holding: bool, expected: float | None) -> None:
    assert Idling(RULES.idling).check_one(R(**reading), holding) == expected


@pytest.mark.parametrize(
    ("reading", "holding", "expected"),
    [
        _case(
            {"has_perception": True, "object_distance": 15.0, "closing_speed": 10.0},
            1.5,
            id="ttc-1-5-s",
        ),
        _case(
            {"has_perception": True, "object_distance": 30.0, "closing_speed": 10.0},
            None,
            id="ttc-3-s",
        ),
        _case(
            {"has_perception": True, "object_distance": 22.0, "closing_speed": 10.0},
            2.2,
            holding=True,
            id="hysteresis-holds",
        ),
        _case(
            {"has_perception": True, "object_distance": 0.5, "closing_speed": -3.0},
            None,
            id="gap-growing",
        ),
        _case({"has_perception": False}, None, id="no-perception"),
    ],
)
def test_collision_risk(reading: dict[str, Any], holding: bool, expected: float | None) -> None:
    value = CollisionRisk(RULES.collision_risk).check_one(R(**reading), holding)
    assert value == (pytest.approx(expected) if expected is not None else None)


DEPOT = Fence(
    name="depot", kind="keep_in", polygon=[(52.0, 4.0), (52.0, 5.0), (53.0, 5.0), (53.0, 4.0)]
)
CENTRE = Fence(name="centre", kind="keep_out", polygon=DEPOT.polygon, fleets=["fleet-b"])


@pytest.mark.parametrize(
    ("fence", "reading", "expected"),
    [
        pytest.param(DEPOT, {"inside": (True,)}, None, id="keep-in-inside"),
        pytest.param(DEPOT, {"inside": (False,)}, 1.0, id="keep-in-outside"),
        pytest.param(CENTRE, {"inside": (True,), "fleet_id": "fleet-b"}, 1.0, id="keep-out-in"),
        pytest.param(CENTRE, {"inside": (False,), "fleet_id": "fleet-b"}, None, id="keep-out-out"),
        pytest.param(CENTRE, {"inside": (True,), "fleet_id": "fleet-a"}, None, id="other-fleet"),
    ],
)
def test_geofence(fence: Fence, reading: dict[str, Any], expected: float | None) -> None:
    rule = FenceRule(RULES.geofence, fence, 0)
    assert rule.check_one(R(**reading), False) == expected
    assert rule.key == f"{rule.name}:{fence.name}"


def test_every_rule_of_the_design_is_built_with_its_severity() -> None:
    rules = Rules.parse({"geofence": {"fences": [DEPOT.model_dump(), CENTRE.model_dump()]}})
    built = {r.key: r for r in build_rules(rules)}
    assert set(built) == {
        "speeding",
        "speeding:critical",
        "low_fuel",
        "overheating",
        "low_battery",
        "over_revving",
        "gear_mismatch",
        "harsh_braking",
        "harsh_acceleration",
        "crash",
        "sos",
        "tamper",
        "power_cut",
        "diagnostic_trouble_code",
        "service_due",
        "idling",
        "collision_risk",
        "geofence_exit:depot",
        "geofence_entry:centre",
    }
    assert built["crash"].severity == built["sos"].severity == SEVERITY["critical"]
    assert built["speeding"].severity == SEVERITY["warning"]
    assert built["speeding:critical"].severity == SEVERITY["critical"]
    assert built["tamper"].severity == built["power_cut"].severity == SEVERITY["critical"]
    assert built["diagnostic_trouble_code"].severity == SEVERITY["warning"]
    assert built["speeding"].min_us == 10_000_000


def test_disabled_rules_are_not_built() -> None:
    rules = Rules.parse({"sos": {"enabled": False}, "speeding": {"enabled": False}})
    assert not {"sos", "speeding"} & {r.name for r in build_rules(rules)}


_NON_FINITE = [float("nan"), float("inf"), float("-inf")]
_SKEWED = {"accel_x", "accel_y", "speed", "fuel", "coolant", "battery", "rpm", "gear"}


@pytest.mark.parametrize("value", _NON_FINITE, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(
    "field",
    sorted(
        _SKEWED
        | {
            "object_distance",
            "closing_speed",
            "zone_limit",
            "vehicle_limit",
            "expected_gear",
            "lat",
            "lon",
        }
    ),
)
def test_a_non_finite_input_never_triggers_a_rule(field: str, value: float) -> None:
    fences = Rules.parse(
        {
            "geofence": {
                "fences": [
                    {"name": "yard", "kind": "keep_out", "polygon": [[52, 4], [53, 4], [53, 5]]}
                ]
            }
        }
    )
    reading = R(
        speed=50.0,
        ignition=False,
        has_perception=True,
        fuel=50.0,
        lat=52.6,
        lon=4.2,
        zone_limit=80.0,
    )
    setattr(reading, field, value)
    # Inside a keep-out fence by the index's word: a position that is not a number must not count.
    reading.inside = (field in ("lat", "lon"),)
    fired = {
        rule.key: rule.check_one(reading, holding)
        for rule in build_rules(fences)
        for holding in (False, True)
        if rule.check_one(reading, holding) is not None
    }
    assert fired == {}


def test_an_infinite_deceleration_is_not_a_crash_but_the_device_alarm_still_is() -> None:
    crash = Crash(RULES.crash)
    assert crash.check_one(R(accel_x=float("-inf")), False) is None
    assert crash.check_one(R(accel_x=float("nan"), crash_alarm=True), False) == 0.0


@pytest.mark.parametrize(
    ("reading", "expected"),
    [
        pytest.param({"tamper": True}, {"tamper": 1.0}, id="tamper"),
        pytest.param({"power_cut": True}, {"power_cut": 1.0}, id="power-cut"),
        pytest.param({"dtc_count": 2.0}, {"diagnostic_trouble_code": 2.0}, id="two-codes"),
        pytest.param({}, {}, id="quiet"),
    ],
)
def test_device_alarms_and_trouble_codes(
    reading: dict[str, Any], expected: dict[str, float]
) -> None:
    rules = build_rules(RULES)
    wanted = {"tamper", "power_cut", "diagnostic_trouble_code"}
    fired = {
        rule.key: value
        for rule in rules
        if rule.key in wanted and (value := rule.check_one(R(**reading), False)) is not None
    }
    assert fired == expected


@pytest.mark.parametrize(
    ("reading", "expected"),
    [
        pytest.param({"odometer": 30_000.0, "last_service": 14_000.0}, 16_000.0, id="due"),
        pytest.param({"odometer": 28_999.0, "last_service": 14_000.0}, None, id="not-yet"),
        pytest.param({"odometer": 90_000.0, "last_service": 0.0}, None, id="never-recorded"),
    ],
)
def test_service_due(reading: dict[str, Any], expected: float | None) -> None:
    rule = next(r for r in build_rules(RULES) if r.key == "service_due")
    assert rule.check_one(R(**reading), False) == expected
