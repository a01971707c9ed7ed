"""Injected scenarios: each produces what its ground truth says, and nothing else fires."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetpipe_loadtest.fleet import Fleet
from fleetpipe_loadtest.reference import (
    Run,
    reference_episodes,
    simulate,
    simulate_until,
    truth_episodes,
)
from fleetpipe_loadtest.scenarios import (
    GroundTruth,
    Injection,
    ScenarioKind,
    ScenarioMix,
    read_ground_truth,
    write_ground_truth,
)

pytestmark = pytest.mark.unit

K = ScenarioKind


def _compare(run: Run, truths: list[GroundTruth]) -> list[str]:
    """Differences between the episodes in the events and the ground truth."""
    last_time = int(run.cols["event_time_us"].max())
    ref, tru = reference_episodes(run), truth_episodes(truths)
    diffs = []
    for key in sorted(set(ref) | set(tru)):
        a, b = ref.get(key, []), tru.get(key, [])
        # An episode still running when the run stops is cut short on both sides.
        a = [e for e in a if e[1] < last_time - 200e6]
        b = [e for e in b if e[1] < last_time - 200e6]
        if a != b:
            diffs.append(f"{key}: events say {a}, ground truth says {b}")
    return diffs


@pytest.mark.parametrize("rate_hz", [pytest.param(1.0, id="1Hz"), pytest.param(0.2, id="0.2Hz")])
def test_random_scenarios_produce_exactly_their_ground_truth(rate_hz: float) -> None:
    fleet = Fleet(
        120, seed=21, rate_hz=rate_hz, scenarios=ScenarioMix.parse("all=0.8"),
        mix={"car": 0.3, "van": 0.2, "truck": 0.1, "ev": 0.2, "robotaxi": 0.2},
    )  # fmt: skip
    run = simulate(fleet, 4 * 3600)
    truths = fleet.ground_truth(include_active=True)
    assert _compare(run, truths) == []
    assert fleet.missed == []
    assert {g.kind for g in truths} == {k.value for k in ScenarioKind}


MIXES = {K.LOW_BATTERY: {"ev": 1.0}, K.COLLISION_RISK: {"robotaxi": 1.0}}


def _inject(
    kind: ScenarioKind, *, seed: int = 1, rate_hz: float = 1.0
) -> tuple[Run, list[GroundTruth]]:
    fleet = Fleet(
        3,
        seed=seed,
        rate_hz=rate_hz,
        mix=MIXES.get(kind, {"car": 1.0}),
        injections=[Injection(v, kind, at_s=60.0) for v in (1, 2, 3)],
    )
    run = simulate_until(fleet, lambda f: len(f.ground_truth()) >= 3, max_s=4 * 3600)
    truths = fleet.ground_truth()
    assert fleet.missed == []
    assert [g.kind for g in truths if not g.cause] == [kind.value] * 3
    assert _compare(run, truths) == []
    return run, truths


def _during(run: Run, g: GroundTruth, column: str) -> list[float]:
    c = run.cols
    num = int(g.vehicle_id.rsplit("-", 1)[1])
    t = c["event_time_us"]
    m = (c["vehicle"] == num) & (t >= g.start_us) & (t <= g.end_us)
    return [float(x) for x in c[column][m]]


# What the docstring of fleetpipe_loadtest.scenarios promises, at 1 Hz.
@pytest.mark.parametrize(
    ("kind", "column", "low", "high", "min_s", "max_s"),
    [
        pytest.param(K.SPEEDING, "speed_kmh", 80, 110.5, 80, 140, id="speeding"),
        pytest.param(K.HARSH_BRAKING, "accel_x", -8.71, -8.29, 0, 2, id="harsh-braking"),
        pytest.param(K.HARSH_ACCELERATION, "accel_x", 4.29, 4.71, 1, 4, id="harsh-accel"),
        pytest.param(K.CRASH, "speed_kmh", 0, 0, 30, 30, id="crash"),
        pytest.param(K.SOS, "speed_kmh", 0, 0, 29, 60, id="sos"),
        pytest.param(K.IDLING, "rpm", 750, 850, 479, 720, id="idling"),
        pytest.param(K.OFFLINE, "speed_kmh", 0, 0, 720, 901, id="offline"),
        pytest.param(K.GEOFENCE_EXIT, "speed_kmh", 0, 56, 360, 1200, id="geofence"),
        pytest.param(K.COLLISION_RISK, "p_distance", 2, 18, 1, 2, id="collision-risk"),
        pytest.param(K.LOW_FUEL, "fuel", 6.5, 10, 150, 420, id="low-fuel"),
        pytest.param(K.LOW_BATTERY, "battery_pct", 11.5, 15, 150, 420, id="low-battery"),
        pytest.param(K.OVERHEATING, "coolant", 110, 215, 330, 380, id="overheating"),
        pytest.param(K.OVER_REVVING, "rpm", 6200, 6800, 5, 10, id="over-revving"),
        pytest.param(K.GEAR_MISMATCH, "gear", 3, 6, 14, 20, id="gear-mismatch"),
    ],
)
def test_an_injected_scenario_produces_the_documented_values(
    kind: ScenarioKind, column: str, low: float, high: float, min_s: float, max_s: float
) -> None:
    run, truths = _inject(kind)
    for g in truths:
        if g.cause:
            continue
        assert min_s <= (g.end_us - g.start_us) / 1e6 <= max_s, g
        values = _during(run, g, column)
        assert values, g
        if kind == K.OFFLINE:
            assert len(values) == 2  # the last event before the silence and the first after
        else:
            assert low <= min(values) and max(values) <= high, (g, min(values), max(values))


def test_a_crash_also_shows_as_harsh_braking_caused_by_the_crash() -> None:
    run, truths = _inject(K.CRASH)
    crashes = [g for g in truths if g.kind == "crash"]
    implied = [g for g in truths if g.cause == "crash"]
    assert [g.kind for g in implied] == ["harsh_braking"] * 3
    for c, h in zip(crashes, implied, strict=True):
        assert h.start_us == h.end_us == c.start_us
        assert _during(run, h, "accel_x")[0] <= -38


def test_overheating_reports_the_coolant_trouble_code() -> None:
    fleet = Fleet(1, seed=3, mix={"van": 1.0}, injections=[Injection(1, K.OVERHEATING, 0)])
    codes = {c for m in fleet.events(3600) if m.engine.coolant_temp_c > 110 for c in m.dtc_codes}
    assert codes == {"P0217"}


def test_robotaxis_report_perception_and_driving_events() -> None:
    fleet = Fleet(20, seed=8, mix={"robotaxi": 1.0})
    events = list(fleet.events(2 * 3600))
    driving = [m for m in events if m.motion.speed_kmh > 5]
    assert all(m.HasField("perception") for m in driving)
    kinds = {e.kind for m in events for e in m.driving_events}
    assert kinds == {1, 2}  # interventions and disengagements
    parked = [m for m in events if not m.engine.ignition]
    assert not any(m.HasField("perception") for m in parked)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("", {}, id="empty"),
        pytest.param("none", {}, id="none"),
        pytest.param("speeding=0.5,crash=0.01", {K.SPEEDING: 0.5, K.CRASH: 0.01}, id="two"),
        pytest.param("all=0.1,sos=0", {k: 0.1 for k in K if k != K.SOS}, id="all-but"),
    ],
)
def test_scenario_mix_parses_kinds_and_rates(
    spec: str, expected: dict[ScenarioKind, float]
) -> None:
    assert ScenarioMix.parse(spec).rates_per_vehicle_hour == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("speeding", "expected kind=rate", id="no-rate"),
        pytest.param("teleport=1", "unknown scenario 'teleport'", id="unknown"),
        pytest.param("sos=fast", "not a number", id="not-a-number"),
        pytest.param("sos=-1", "must be ≥ 0", id="negative"),
    ],
)
def test_bad_scenario_specs_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScenarioMix.parse(spec)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_ground_truth_round_trips_through_a_file(tmp_path: Path, suffix: str) -> None:
    truths = [
        GroundTruth("fleet-1-veh-000002", "crash", 10, 40),
        GroundTruth("fleet-1-veh-000002", "harsh_braking", 10, 10, "crash"),
        GroundTruth("fleet-1-veh-000001", "sos", 5, 9),
    ]
    path = tmp_path / f"truth{suffix}"
    assert write_ground_truth(truths, path) == 3
    assert sorted(read_ground_truth(path)) == sorted(truths)
