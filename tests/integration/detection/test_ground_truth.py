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
from fleetpipe_dev.scenarios import CityFiles, write_city_files
from fleetpipe_dev.testing import (
    ServiceProcess,
    committed_total,
    produce_all,
    produce_packed,
    read_all,
    service_env,
    wait_for,
)
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


def _records_on(kafka: KafkaSettings, topic: str) -> int:
    """Offsets up to each partition's last record: what a consumer has committed once it has
    read them all (a transaction's marker after the last record is not counted)."""
    last: dict[int, int] = {}
    for m in read_all(kafka, topic, read_committed=True, idle_s=0.5):
        partition, offset = m.partition(), m.offset()
        assert partition is not None and offset is not None
        last[partition] = max(last.get(partition, -1), offset)
    return sum(o + 1 for o in last.values())


def _drill(
    kafka_settings: KafkaSettings,
    run: Detection,
    events: list[tuple[str, bytes]],
    files: tuple[Path, CityFiles],
    *,
    packed: bool,
) -> list[alert_pb2.Alert]:
    """The events through real enrichment and detection; the alerts detection committed."""
    topics = run.topics
    registry, city = files
    mode = "packed" if packed else "per-event"
    # PACK_EVENTS=1 is the one-record-per-event form of the telemetry topics.
    form = {} if packed else {"FLEET_KAFKA__PACK_EVENTS": "1"}
    enrichment = ServiceProcess(
        "fleetpipe.enrichment",
        service_env(
            kafka_settings,
            topics,
            {
                "FLEET_REGISTRY_PATH": str(registry),
                "FLEET_SPEED_LIMITS_PATH": str(city.speed_limits),
                "FLEET_GROUP_ID": f"enrich-{topics.raw}",
                "FLEET_INSTANCE_ID": f"truth-{mode}",
                **form,
            },
        ),
        run.logs / f"enrichment-{mode}.log",
    ).start()
    run.processes.append(enrichment)
    run.start(f"truth-{mode}", FLEET_RULES_PATH=str(city.rules), FLEET_KAFKA__MAX_BATCH="2000")
    if packed:
        produce_packed(kafka_settings, topics.raw, events)
    else:
        produce_all(kafka_settings, topics.raw, events)
    # Wait for enrichment past the raw topic's last records, then for detection past the
    # enriched topic's: packs make the record counts smaller than the event counts.
    raw = _records_on(kafka_settings, topics.raw)
    wait_for(
        lambda: committed_total(kafka_settings, f"enrich-{topics.raw}", topics.raw) >= raw,
        timeout=600,
        what=f"enrichment to commit every event ({mode})",
    )
    run.produced = _records_on(kafka_settings, topics.enriched)
    run.wait_processed(timeout=600)
    return run.alerts()


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


def _alert_set(alerts: list[alert_pb2.Alert]) -> set[tuple[str, str, str, int, int, int]]:
    return {
        (a.alert_id, a.vehicle_id, a.rule, a.state, a.episode_start_us, a.episode_end_us)
        for a in alerts
    }


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
    files = (registry, write_city_files(tmp_path))

    packed = _drill(kafka_settings, detection(4), events, files, packed=True)
    _assert_episodes(packed, truths)
    per_event = _drill(kafka_settings, detection(4), events, files, packed=False)
    _assert_episodes(per_event, truths)
    assert _alert_set(packed) == _alert_set(per_event)
