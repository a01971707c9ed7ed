"""Sizing arithmetic (DESIGN §4): partitions, replicas, caps, and KEDA-style lag scaling."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_operator.sizing import (
    Autoscaler,
    Recommendation,
    lag_replicas,
    partitions_for,
    plan,
    replicas_for,
    stabilised,
)
from fleet_operator.spec import Component, FleetPipelineSpec, ServiceScaling, parse_spec

pytestmark = pytest.mark.unit


def spec(vehicles: int, **extra: Any) -> FleetPipelineSpec:
    raw: dict[str, Any] = {
        "fleet": {"vehicles": vehicles},
        "kafka": {"bootstrapServers": "kafka:9092"},
        "storage": {"databaseSecret": "db"},
        "notification": {"twilioSecret": "twilio"},
    }
    raw.update(extra)
    return parse_spec(raw)


@pytest.mark.parametrize(
    ("vehicles", "per_partition", "expected"),
    [
        pytest.param(50_000, 1000, 50, id="50K-reference"),
        pytest.param(100_000, 1000, 100, id="100K"),
        pytest.param(50_001, 1000, 51, id="rounds-up"),
        pytest.param(1, 1000, 1, id="tiny-fleet-one-partition"),
        pytest.param(1000, 1000, 1, id="exactly-one"),
        pytest.param(7, 2, 4, id="odd"),
    ],
)
def test_partitions_are_vehicles_over_vehicles_per_partition_rounded_up(
    vehicles: int, per_partition: int, expected: int
) -> None:
    assert partitions_for(vehicles, per_partition) == expected


@pytest.mark.parametrize(
    ("events", "capacity", "low", "high", "utilisation", "expected"),
    [
        pytest.param(50_000, 20_000, 1, 100, 0.7, 4, id="ceil(50000/20000/0.7)=ceil(3.57)"),
        pytest.param(100_000, 20_000, 1, 100, 0.7, 8, id="100K-ingest"),
        pytest.param(100_000, 10_000, 1, 100, 0.7, 15, id="100K-storage-writer"),
        pytest.param(40_000, 20_000, 1, 100, 1.0, 2, id="full-utilisation-exact"),
        pytest.param(10, 20_000, 2, 100, 0.7, 2, id="clamped-to-min"),
        pytest.param(10_000_000, 20_000, 1, 50, 0.7, 50, id="clamped-to-max"),
    ],
)
def test_replicas_are_clamped_ceil_of_events_over_capacity_over_utilisation(
    events: float, capacity: int, low: int, high: int, utilisation: float, expected: int
) -> None:
    scaling = ServiceScaling(capacity_per_replica=capacity, min_replicas=low, max_replicas=high)
    assert replicas_for(events, scaling, utilisation) == expected


@pytest.mark.parametrize(
    ("events", "capacity", "utilisation", "expected"),
    [
        # Each fleet fills exactly ``expected`` replicas at the target: in floats, every one of
        # these came out one replica higher (42000 / 20000 / 0.7 = 3.0000000000000004).
        pytest.param(42_000, 20_000, 0.7, 3, id="42000=3x20000x0.7"),
        pytest.param(84_000, 20_000, 0.7, 6, id="84000=6x20000x0.7"),
        pytest.param(98_000, 20_000, 0.7, 7, id="98000=7x20000x0.7"),
        pytest.param(336_000, 20_000, 0.7, 24, id="336000=24x20000x0.7"),
        pytest.param(31_500, 15_000, 0.7, 3, id="detection-31500=3x15000x0.7"),
        pytest.param(7_000, 10_000, 0.7, 1, id="storage-7000=1x10000x0.7"),
        pytest.param(21_000, 10_000, 0.7, 3, id="storage-21000=3x10000x0.7"),
        pytest.param(54_000, 20_000, 0.9, 3, id="54000=3x20000x0.9"),
        pytest.param(18_000, 20_000, 0.3, 3, id="18000=3x20000x0.3"),
        pytest.param(6_000, 20_000, 0.1, 3, id="6000=3x20000x0.1"),
        pytest.param(42_001, 20_000, 0.7, 4, id="one-event-more-needs-one-more"),
    ],
)
def test_a_fleet_that_is_an_exact_multiple_gets_exactly_that_many_replicas(
    events: int, capacity: int, utilisation: float, expected: int
) -> None:
    scaling = ServiceScaling(capacity_per_replica=capacity, min_replicas=1, max_replicas=1000)
    assert replicas_for(events, scaling, utilisation) == expected


@pytest.mark.parametrize(
    ("vehicles", "per_vehicle", "expected_ingest"),
    [
        # vehicles × events per vehicle is a float product too: 60000 × 0.7 = 42000 exactly.
        pytest.param(60_000, 0.7, 3, id="60000x0.7=42000"),
        pytest.param(120_000, 0.7, 6, id="120000x0.7=84000"),
        pytest.param(14_000, 3, 3, id="14000x3=42000"),
    ],
)
def test_the_fleet_rate_is_exact_too(
    vehicles: int, per_vehicle: float, expected_ingest: int
) -> None:
    sized = plan(
        spec(
            vehicles,
            fleet={"vehicles": vehicles, "eventsPerVehiclePerSecond": per_vehicle},
            services={"ingest": {"capacityPerReplica": 20_000, "minReplicas": 1}},
        )
    )
    assert sized.desired(Component.INGEST) == expected_ingest


@pytest.mark.parametrize(
    ("vehicles", "expected"),
    [
        pytest.param(
            50_000,
            {
                "ingest": 4,
                "enrichment": 4,
                "detection": 5,
                "notification": 1,
                "storage-writer": 8,
                "kpis": 4,
            },
            id="50K",
        ),
        pytest.param(
            100_000,
            {
                "ingest": 8,
                "enrichment": 8,
                "detection": 10,
                "notification": 2,
                "storage-writer": 15,
                "kpis": 8,
            },
            id="100K",
        ),
    ],
)
def test_default_sizing_of_the_reference_fleets(vehicles: int, expected: dict[str, int]) -> None:
    sized = plan(spec(vehicles))
    assert sized.partitions == vehicles // 1000
    assert {c.value: sized.desired(c) for c in Component} == expected


def test_consumers_are_capped_at_partitions_but_ingest_is_not() -> None:
    # 3000 vehicles at 100 events/s each: 300K events/s on only 3 partitions.
    sized = plan(spec(3000, fleet={"vehicles": 3000, "eventsPerVehiclePerSecond": 100}))
    assert sized.partitions == 3
    assert sized.desired(Component.INGEST) == 22  # ceil(300000/20000/0.7), a gRPC server
    for consumer in (Component.ENRICHMENT, Component.DETECTION, Component.STORAGE_WRITER):
        assert sized.desired(consumer) == 3


def test_the_cap_follows_the_partitions_topics_have_after_a_refused_shrink() -> None:
    # Back at 50K after 100K: topics keep 100 partitions, replicas follow the 50K fleet.
    sized = plan(spec(50_000), topic_partitions=100)
    assert sized.partitions == 50
    assert sized.desired(Component.STORAGE_WRITER) == 8
    capped = plan(
        spec(3000, fleet={"vehicles": 3000, "eventsPerVehiclePerSecond": 100}), topic_partitions=6
    )
    assert capped.desired(Component.ENRICHMENT) == 6


@pytest.mark.parametrize(
    ("lag", "threshold", "partitions", "expected"),
    [
        pytest.param(0, 1000, 12, 0, id="no-lag"),
        pytest.param(1, 1000, 12, 1, id="any-lag-one-replica"),
        pytest.param(7000, 1000, 12, 7, id="exact"),
        pytest.param(7001, 1000, 12, 8, id="rounds-up"),
        pytest.param(17_000, 1000, 12, 12, id="capped-at-partitions"),
    ],
)
def test_lag_replicas_follow_keda(lag: int, threshold: int, partitions: int, expected: int) -> None:
    assert lag_replicas(lag, threshold, partitions) == expected


@pytest.mark.parametrize(
    ("history", "now", "proposal", "expected"),
    [
        pytest.param([], 100.0, 5, 5, id="first"),
        pytest.param([(95.0, 3)], 100.0, 7, 7, id="rise-applies-at-once"),
        pytest.param([(95.0, 7)], 100.0, 3, 7, id="fall-waits-for-the-window"),
        pytest.param([(50.0, 7), (80.0, 5)], 100.0, 3, 5, id="old-entries-leave-the-window"),
        pytest.param([(10.0, 9)], 100.0, 2, 2, id="window-passed"),
    ],
)
def test_stabilisation_takes_the_highest_recommendation_in_the_window(
    history: list[tuple[float, int]], now: float, proposal: int, expected: int
) -> None:
    value, kept = stabilised(
        [Recommendation(at, r) for at, r in history], now=now, window_s=30.0, proposal=proposal
    )
    assert value == expected
    assert all(now - r.at < 30.0 for r in kept)


def test_recommend_reports_lag_replicas_and_keeps_the_sized_count() -> None:
    pipeline = spec(12_000, autoscaling={"mode": "Recommend", "lagThreshold": 1000})
    decisions = Autoscaler().decide(pipeline, {Component.ENRICHMENT: 7000}, now=0.0)
    sized = plan(pipeline, lag=decisions)
    enrichment = sized.services[Component.ENRICHMENT]
    assert enrichment.lag is not None
    assert (enrichment.lag.lag_replicas, enrichment.lag.recommended) == (7, 7)
    assert enrichment.desired == enrichment.sized == 1


def test_auto_applies_lag_replicas_capped_at_partitions() -> None:
    pipeline = spec(12_000, autoscaling={"mode": "Auto", "lagThreshold": 1000})
    decisions = Autoscaler().decide(pipeline, {Component.ENRICHMENT: 17_000}, now=0.0)
    assert plan(pipeline, lag=decisions).desired(Component.ENRICHMENT) == 12


def test_auto_scales_down_only_after_the_stabilisation_window() -> None:
    pipeline = spec(
        12_000, autoscaling={"mode": "Auto", "lagThreshold": 1000, "stabilisationSeconds": 60}
    )
    scaler = Autoscaler()
    assert (
        scaler.decide(pipeline, {Component.DETECTION: 9000}, now=0.0)[
            Component.DETECTION
        ].recommended
        == 9
    )
    assert (
        scaler.decide(pipeline, {Component.DETECTION: 0}, now=30.0)[Component.DETECTION].recommended
        == 9
    )
    # Back to the fleet sizing: ceil(12000 / 15000 / 0.7) = 2.
    assert (
        scaler.decide(pipeline, {Component.DETECTION: 0}, now=61.0)[Component.DETECTION].recommended
        == 2
    )


def test_off_mode_ignores_lag() -> None:
    pipeline = spec(12_000)
    decisions = Autoscaler().decide(pipeline, {Component.ENRICHMENT: 90_000}, now=0.0)
    sized = plan(pipeline, lag=decisions)
    assert sized.desired(Component.ENRICHMENT) == 1
    assert sized.services[Component.ENRICHMENT].lag is None


def test_auto_never_goes_below_the_fleet_sizing_or_above_max() -> None:
    pipeline = spec(
        100_000,
        autoscaling={"mode": "Auto", "lagThreshold": 10},
        services={"enrichment": {"maxReplicas": 20}},
    )
    decisions = Autoscaler().decide(
        pipeline, {Component.ENRICHMENT: 50_000, Component.DETECTION: 0}, now=0.0
    )
    sized = plan(pipeline, lag=decisions)
    assert sized.desired(Component.ENRICHMENT) == 20
    assert sized.desired(Component.DETECTION) == 10
