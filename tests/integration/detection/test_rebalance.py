"""Vehicle state follows vehicles between replicas and across a partition increase."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from fleetpipe.core.kafka import Admin
from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.core.topics import TopicSpec
from fleetpipe.detection.config import Rules
from fleetpipe.detection.engine import Detector
from fleetpipe.pb.v1 import alert_pb2, enriched_pb2, trip_pb2
from fleetpipe_dev.drills import Timeline, cruise
from fleetpipe_dev.testing import produce_all, read_all, wait_for
from support.messages import key_of

from .conftest import Detection, assigned_partitions, expected_alerts, said

pytestmark = pytest.mark.integration

Events = list[enriched_pb2.EnrichedTelemetry]


def _fleet(n: int) -> list[Timeline]:
    return [
        Timeline(f"veh-{i:03d}", lat=52.0 + i * 1e-3, start_us=1_767_225_600_000_000 + i)
        for i in range(n)
    ]


def _merge(lines: Sequence[Events]) -> Events:
    return list(heapq.merge(*lines, key=lambda e: e.telemetry.event_time_us))


def _expected_trips(events: Events) -> set[tuple[str, int, float]]:
    out = Detector(Rules()).process([(e, 0) for e in events], now_us=0)
    return {
        (t.trip_id, t.state, round(t.distance_km, 9))
        for t in (trip_pb2.Trip.FromString(v) for _, v in out.trips)
    }


def _assert_one_episode_per_vehicle(run: Detection, events: Events, vehicles: int) -> None:
    alerts = run.alerts()
    assert said(alerts) == expected_alerts(events)
    per_vehicle = Counter((a.vehicle_id, a.rule, a.state) for a in alerts)
    assert per_vehicle == Counter(
        {
            (f"veh-{i:03d}", "speeding", s): 1
            for i in range(vehicles)
            for s in (alert_pb2.ALERT_STATE_OPEN, alert_pb2.ALERT_STATE_RESOLVED)
        }
    )
    trips = {(t.trip_id, t.state, round(t.distance_km, 9)) for t in run.trips()}
    assert trips == _expected_trips(events), "one trip per vehicle, its distance unbroken"


def test_a_second_replica_joining_and_leaving_keeps_every_vehicles_state(
    detection: Callable[..., Detection],
) -> None:
    run = detection(4)
    fleet = _fleet(40)
    # Speeding begins in phase 1 and opens (10 s minimum) before the second replica joins; the
    # episode continues on whichever replica owns the vehicle, and resolves in phase 3.
    phases = [
        _merge([cruise(tl, 20) + tl.emit(15, speed=95.0) for tl in fleet]),
        _merge([tl.emit(30, speed=95.0) for tl in fleet]),
        _merge([cruise(tl, 30) + tl.emit(3, speed=0.0, ignition=False) for tl in fleet]),
    ]
    first = run.start("a")
    run.produce(phases[0])
    run.wait_processed()

    second = run.start("b")
    wait_for(
        lambda: assigned_partitions(first) > 0 and assigned_partitions(second) > 0,
        timeout=120,
        what="the second replica to take a share",
    )
    run.produce(phases[1])
    run.wait_processed()
    status, metrics = second.get("/metrics")
    assert status == 200 and "fleetpipe_detection_state_records_total" in metrics
    assert "fleetpipe_detection_state_records_total 0.0" not in metrics, "b did real work"

    assert second.stop() == 0
    wait_for(lambda: assigned_partitions(first) == 4, timeout=120, what="a to own all again")
    run.produce(phases[2])
    run.wait_processed()

    _assert_one_episode_per_vehicle(run, [e for p in phases for e in p], 40)


def _produce_stale(run: Detection, events: Events, partitions: int) -> int:
    """Produce as a producer that still believes the topic has ``partitions`` partitions."""
    return produce_all(
        run.kafka,
        run.topics.enriched,
        ((e.telemetry.vehicle_id, e.SerializeToString()) for e in events),
        partitions=partitions,
    )


def test_growing_the_input_partitions_does_not_reopen_an_ongoing_episode(
    detection: Callable[..., Detection],
) -> None:
    run = detection(2)
    topic = run.topics.enriched
    fleet = _fleet(40)
    # Phase 1: speeding starts (pending). Partitions grow 2 -> 4. Phase 2a, from a producer
    # that has not noticed yet (records on the old partitions): the episodes OPEN. Phase 2b,
    # from one that has (records on the new ones): still speeding. Phase 3: it ends.
    phases = [
        _merge([cruise(tl, 20) + tl.emit(5, speed=95.0) for tl in fleet]),
        _merge([tl.emit(10, speed=95.0) for tl in fleet]),
        _merge([tl.emit(20, speed=95.0) for tl in fleet]),
        _merge([cruise(tl, 30) + tl.emit(3, speed=0.0, ignition=False) for tl in fleet]),
    ]
    groups = KeyGroups()
    # Growing 2 -> 4 splits each partition's key groups in two halves: 0 -> {0, 1}, 1 -> {2, 3}.
    moved = [
        v.vehicle_id
        for v in fleet
        if groups.partition(v.vehicle_id, 4) != groups.partition(v.vehicle_id, 2)
    ]
    assert len(moved) >= 10, "enough vehicles change partition"

    replicas = [run.start("a"), run.start("b")]
    wait_for(
        lambda: [assigned_partitions(p) for p in replicas] == [1, 1],
        timeout=120,
        what="both replicas with one partition each",
    )
    run.produced += _produce_stale(run, phases[0], 2)
    run.wait_processed()

    Admin(run.kafka).ensure_topics([TopicSpec(topic, 4)])
    wait_for(
        lambda: sum(assigned_partitions(p) for p in replicas) == 4,
        timeout=120,
        what="the replicas to take the new partitions",
    )
    run.produced += _produce_stale(run, phases[1], 2)
    run.wait_processed()
    run.produce(phases[2])
    run.produce(phases[3])
    run.wait_processed()

    placed = {
        (key_of(m).decode(), m.partition())
        for m in read_all(run.kafka, topic)
        if key_of(m).decode() in moved
    }
    assert {p for _, p in placed} == {0, 1, 2, 3}, "moved vehicles' records on old and new"
    _assert_one_episode_per_vehicle(run, [e for p in phases for e in p], 40)
