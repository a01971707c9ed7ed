"""The simulator's injected scenarios, through enrichment and detection with the simulated
city's zones (as the demo and the samples ship them): exactly their episodes — with the
telemetry topics carrying packs, as ingest and enrichment write them, and with one record per
event, as before packs: the same alerts (ids, rules, states, episodes) either way.

Each ground-truth episode must show as one OPEN and one RESOLVED alert of its rule on its vehicle
(same alert id, the episode overlapping the truth), and nothing else may alert: normal driving
stays quiet. One deliberate difference from the simulator's bookkeeping: it records the crash
spike as an implied harsh braking (``cause="crash"``), while detection reports a crash-level
deceleration only as the crash (see ``rules.HarshBraking``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from fleetpipe.core.settings import KafkaSettings
from fleetpipe.pb.v1 import alert_pb2
from fleetpipe_dev.scenarios import write_city_files
from fleetpipe_dev.testing import produce_all, produce_packed
from fleetpipe_loadtest.fleet import DEFAULT_CENTER, Fleet
from fleetpipe_loadtest.scenarios import (
    COMBUSTION_ONLY,
    ELECTRIC_ONLY,
    NOT_HEAVY,
    PERCEPTION_ONLY,
    GroundTruth,
    Injection,
    ScenarioKind,
)
from fleetpipe_loadtest.vehicles import VEHICLE_TYPES
from support.replays import alert_set, packed_and_per_event

from .conftest import Detection

pytestmark = pytest.mark.integration

VEHICLES = 24
SECONDS = 4 * 3600
SLACK_US = 60_000_000  # where a rule's episode may start or end relative to the truth's
TYPES = {t.name: t for t in VEHICLE_TYPES}
# Every vehicle type, robotaxis and electric vehicles well represented.
MIX = {"car": 0.25, "van": 0.2, "truck": 0.1, "bus": 0.05, "motorcycle": 0.05, "ev": 0.2,
       "robotaxi": 0.15}  # fmt: skip


def _can(kind: ScenarioKind, vehicle_type: str) -> bool:
    t = TYPES[vehicle_type]
    return not (
        (kind in COMBUSTION_ONLY and t.electric)
        or (kind in ELECTRIC_ONLY and not t.electric)
        or (kind in PERCEPTION_ONLY and not t.perception)
        or (kind in NOT_HEAVY and t.heavy)
    )


def _injections(fleet: Fleet, per_kind: int = 2) -> list[Injection]:
    """Every kind ``per_kind`` times, each on a vehicle that can have it, spread over the run."""
    types = {int(v.vehicle_id.rsplit("-", 1)[1]): v.vehicle_type for v in fleet.registry()}
    load: dict[int, int] = defaultdict(int)
    out = []
    for _ in range(per_kind):
        for kind in ScenarioKind:
            able = [n for n, t in sorted(types.items()) if _can(kind, t)]
            assert able, f"the fleet has no vehicle for {kind}"
            num = min(able, key=lambda n: (load[n], n))
            out.append(Injection(num, kind, at_s=120.0 + load[num] * 2700.0))
            load[num] += 1
    return out


def _simulate() -> tuple[Fleet, list[GroundTruth], list[tuple[str, bytes]]]:
    probe = Fleet(VEHICLES, seed=7, mix=MIX)
    fleet = Fleet(VEHICLES, seed=7, mix=MIX, injections=_injections(probe))
    events = [(t.vehicle_id, t.SerializeToString()) for t in fleet.events(SECONDS)]
    truths = fleet.ground_truth()
    assert fleet.missed == []
    assert truths == fleet.ground_truth(include_active=True), "every scenario has finished"
    assert {g.kind for g in truths if not g.cause} == {k.value for k in ScenarioKind}
    return fleet, truths, events


def _assert_episodes(alerts: list[alert_pb2.Alert], truths: list[GroundTruth]) -> None:
    expected = [g for g in truths if g.cause != "crash"]
    # The overheating scenario reports DTC P0217 while the coolant is above 110 °C: the trouble
    # code rule has an episode of its own over the same window.
    expected += [
        replace(g, kind="diagnostic_trouble_code")
        for g in truths
        if g.kind == ScenarioKind.OVERHEATING and not g.cause
    ]
    assert len(expected) >= 2 * len(ScenarioKind)
    by_key: dict[tuple[str, str], list[alert_pb2.Alert]] = defaultdict(list)
    for a in alerts:
        by_key[(a.vehicle_id, a.rule)].append(a)
    problems = []
    matched: set[str] = set()
    for g in expected:
        episode = [
            a
            for a in by_key[(g.vehicle_id, g.kind)]
            if a.episode_start_us <= g.end_us + SLACK_US
            and (a.episode_end_us or a.episode_start_us) >= g.start_us - SLACK_US
        ]
        states = sorted(a.state for a in episode)
        if (
            states != [alert_pb2.ALERT_STATE_OPEN, alert_pb2.ALERT_STATE_RESOLVED]
            or len({a.alert_id for a in episode}) != 1
        ):
            problems.append(f"{g}: {[(a.alert_id[:8], a.state) for a in episode]}")
        matched |= {a.alert_id for a in episode}
    unexpected = [
        (a.vehicle_id, a.rule, a.state, a.episode_start_us)
        for a in alerts
        if a.alert_id not in matched
    ]
    assert problems == [], "\n".join(problems)
    assert unexpected == [], "alerts without an injected episode (normal driving must be quiet)"
    assert len(alerts) == 2 * len(expected)


def test_simulated_scenarios_produce_exactly_their_episodes_packed_or_per_event(
    kafka_settings: KafkaSettings,
    detection: Callable[..., Detection],
    tmp_path: Path,
) -> None:
    fleet, truths, events = _simulate()
    registry = tmp_path / "vehicles.csv"
    fleet.write_registry(registry)
    # The city the demo and the samples ship: the operating area as a keep-in fence and a
    # 60 km/h speed zone, through enrichment's speed-limit table and detection's rules.
    assert fleet.center == DEFAULT_CENTER
    city = write_city_files(tmp_path)

    packed, per_event = packed_and_per_event(
        kafka_settings,
        lambda: detection(4),
        lambda raw: produce_packed(kafka_settings, raw, events),
        lambda raw: produce_all(kafka_settings, raw, events),
        registry=registry,
        city=city,
        name="truth",
    )
    _assert_episodes(packed, truths)
    _assert_episodes(per_event, truths)
    assert alert_set(packed) == alert_set(per_event)
