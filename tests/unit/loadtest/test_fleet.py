"""The fleet simulator: deterministic, sharding-invariant, normal driving within normal bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fleetpipe.registry import PHONE_RE, VehicleRegistry
from fleetpipe_loadtest.fleet import DEFAULT_START_US, Fleet
from fleetpipe_loadtest.loadrun import LoadPlan
from fleetpipe_loadtest.reference import normal_violations, simulate
from fleetpipe_loadtest.report import Step
from fleetpipe_loadtest.scenarios import ScenarioMix
from fleetpipe_loadtest.vehicles import VEHICLE_TYPES

pytestmark = pytest.mark.unit


def _payloads(fleet: Fleet, seconds: float) -> list[bytes]:
    return [m.SerializeToString() for m in fleet.events(seconds)]


def test_the_same_seed_gives_the_same_events_and_another_seed_does_not() -> None:
    mix = ScenarioMix.parse("all=2")
    a = _payloads(Fleet(30, seed=4, scenarios=mix), 900)
    b = _payloads(Fleet(30, seed=4, scenarios=mix), 900)
    c = _payloads(Fleet(30, seed=5, scenarios=mix), 900)
    assert a == b
    assert a != c


def test_a_shard_produces_exactly_the_whole_fleets_events_for_its_vehicles() -> None:
    mix = ScenarioMix.parse("all=2")
    whole = {(m.vehicle_id, m.seq): m for m in Fleet(40, seed=9, scenarios=mix).events(900)}
    parts: dict[tuple[str, int], object] = {}
    for k in range(3):
        for m in Fleet(40, seed=9, scenarios=mix, shard=(k, 3)).events(900):
            parts[(m.vehicle_id, m.seq)] = m
    assert parts == whole


@pytest.mark.parametrize(
    ("rate_hz", "vehicles", "hours"),
    [
        pytest.param(1.0, 120, 4.0, id="1Hz"),
        pytest.param(10.0, 10, 0.5, id="10Hz"),
        pytest.param(0.2, 150, 6.0, id="0.2Hz"),
    ],
)
def test_normal_driving_stays_within_normal_bounds(
    rate_hz: float, vehicles: int, hours: float
) -> None:
    run = simulate(Fleet(vehicles, seed=3, rate_hz=rate_hz), hours * 3600)
    assert normal_violations(run) == []
    # and the fleet actually drives: trips, stops, parking, refuelling and charging happen
    assert run.cols["speed_kmh"].max() > 40
    assert (run.cols["speed_kmh"] == 0).mean() > 0.2
    assert (~run.cols["ignition"]).any()


def test_seq_starts_at_one_and_event_time_follows_the_simulated_clock() -> None:
    fleet = Fleet(5, seed=1, rate_hz=2.0, start_time_us=DEFAULT_START_US)
    ticks = list(fleet.run(10))
    assert len(ticks) == 20
    first, last = ticks[0], ticks[-1]
    assert first.seq.tolist() == [1] * 5
    assert last.seq.tolist() == [20] * 5
    assert ((first.event_time_us - DEFAULT_START_US) < 500_000).all()
    assert (last.event_time_us - first.event_time_us == 19 * 500_000).all()
    assert fleet.now_s == 10.0


def test_vehicles_are_a_mix_of_types_with_their_own_traits() -> None:
    fleet = Fleet(2000, seed=2)
    counts = np.bincount(fleet.vtype, minlength=len(VEHICLE_TYPES)) / 2000
    for vt, share in zip(VEHICLE_TYPES, counts, strict=True):
        assert share == pytest.approx(vt.share, abs=0.04), vt.name
    only = Fleet(50, seed=2, mix={"robotaxi": 1.0})
    assert only.has_perception.all() and only.electric.all()


def test_the_registry_lists_every_vehicle_with_a_reachable_driver(tmp_path: Path) -> None:
    fleet = Fleet(300, seed=6, fleet_id="acme")
    path = tmp_path / "vehicles.csv"
    fleet.write_registry(path)
    registry = VehicleRegistry.load(path)
    assert len(registry) == 300
    v = registry.get("acme-veh-000001")
    assert v is not None and v.fleet_id == "acme" and v.driver_id
    for vehicle in registry:
        assert PHONE_RE.match(vehicle.driver_phone)
        assert vehicle.electric == (vehicle.vehicle_type in {"ev", "robotaxi"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"vehicles": 0}, "vehicles must be", id="no-vehicles"),
        pytest.param({"vehicles": 1, "rate_hz": 0}, "rate_hz", id="zero-rate"),
        pytest.param({"vehicles": 1, "start_time_us": 1_700_000_000}, "start_time_us", id="ms"),
        pytest.param({"vehicles": 1, "shard": (3, 3)}, "shard", id="bad-shard"),
        pytest.param({"vehicles": 1, "mix": {"tank": 1.0}}, "tank", id="unknown-type"),
    ],
)
def test_bad_parameters_are_refused_with_the_reason(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fleet(**kwargs)


def test_a_load_plan_registers_every_vehicle_whichever_sender_simulates_it(
    tmp_path: Path,
) -> None:
    plan = LoadPlan(
        target="", token="t", fleet_id="f", run_id="r1", steps=(Step(10, 5.0),), processes=3
    )
    # Each sender process simulates its own shard of the fleet.
    sent = [v.vehicle_id for k in range(3) for v in plan.fleet(k).registry()]
    assert len(set(sent)) == 10, "three senders, ten vehicles between them"
    path = tmp_path / "vehicles.csv"
    plan.write_registry(path)
    registry = VehicleRegistry.load(path)
    assert sorted(v.vehicle_id for v in registry) == sorted(sent)
    shard = {v.vehicle_id: v for v in plan.fleet(2).registry()}
    assert all(registry.get(vid) == v for vid, v in shard.items()), "the same rows as a shard's"
