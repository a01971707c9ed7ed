"""One FleetPipeline per topic of a Kafka cluster: the claims, and the reconciler keeping a second
claimant from applying anything or deleting the holder's topics."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_operator.claims import Claim, broker_addresses, conflict

pytestmark = pytest.mark.unit

SPEC: dict[str, Any] = {
    "fleet": {"vehicles": 50_000},
    "kafka": {"bootstrapServers": "kafka.streams.svc:9092", "replicationFactor": 1},
    "storage": {"databaseSecret": "db"},
    "notification": {"twilioSecret": "twilio"},
}


@pytest.mark.parametrize(
    ("bootstrap", "namespace", "expected"),
    [
        pytest.param("kafka:9092", "a", {"kafka.a.svc:9092"}, id="bare-service-name"),
        pytest.param(
            "Kafka.Streams.svc.cluster.local:9092,kafka-1.streams.svc:9093",
            "a",
            {"kafka.streams.svc:9092", "kafka-1.streams.svc:9093"},
            id="cluster-domain-removed",
        ),
        pytest.param("127.0.0.1:19092", "a", {"127.0.0.1:19092"}, id="address"),
        pytest.param("[::1]:9092", "a", {"::1:9092"}, id="ipv6"),
        pytest.param("localhost:9092", "b", {"localhost:9092"}, id="localhost"),
        pytest.param("broker.example.com", "a", {"broker.example.com:9092"}, id="default-port"),
    ],
)
def test_brokers_compare_by_qualified_address(
    bootstrap: str, namespace: str, expected: set[str]
) -> None:
    assert broker_addresses(bootstrap, namespace) == expected


def _claim(name: str, created: str, *, holds: bool = False, topics: str = "t1,t2") -> Claim:
    return Claim(
        namespace=name,
        name="fleet",
        uid=name,
        created=created,
        holds=holds,
        brokers=frozenset({"kafka:9092"}),
        topics=frozenset(topics.split(",")),
    )


def test_the_holder_keeps_its_topics_then_the_oldest_wins() -> None:
    old, new = _claim("a", "2026-01-01T00:00:00Z"), _claim("b", "2026-02-01T00:00:00Z")
    assert conflict(old, [old, new]) is None
    found = conflict(new, [old, new])
    assert found is not None and found.holder is old and found.topics == {"t1", "t2"}
    # A pipeline already holding its topics keeps them when an older one is edited onto them.
    running = _claim("b", "2026-02-01T00:00:00Z", holds=True)
    assert conflict(running, [old, running]) is None
    assert conflict(old, [old, running]) is not None
    apart = _claim("c", "2026-03-01T00:00:00Z", topics="t3")
    assert conflict(apart, [old, new, apart]) is None


def test_a_second_pipeline_on_the_same_topics_applies_nothing_and_says_why(world: Any) -> None:
    first = world.kube.add_pipeline("fleet", SPEC, namespace="a")
    second = world.kube.add_pipeline("fleet", SPEC, namespace="b")
    world.reconcile(first)
    assert world.kube.condition(first, "TopicsClaimed")["status"] == "True"
    world.journal.calls.clear()
    world.reconcile(second)
    assert world.journal.calls == ["patch status"], "no topic touched, nothing applied"
    claimed = world.kube.condition(second, "TopicsClaimed")
    assert (claimed["status"], claimed["reason"]) == ("False", "TopicsConflict")
    assert "held by FleetPipeline a/fleet" in claimed["message"]
    assert world.kube.condition(second, "Ready")["status"] == "False"
    warnings = [p for p in world.events.posted if p[1] == "TopicsConflict"]
    assert len(warnings) == 1 and warnings[0][0] == "Warning"
    world.reconcile(second)  # a timer tick changes nothing: no second Warning
    assert [p[1] for p in world.events.posted].count("TopicsConflict") == 1
    # The same spec with a topic suffix runs apart.
    world.kube.update_spec(second, kafka={**SPEC["kafka"], "topicSuffix": "b"})
    world.reconcile(second)
    assert world.kube.condition(second, "TopicsClaimed")["status"] == "True"
    assert "TopicsClaimed" in world.events.reasons()


def test_deleting_the_second_claimant_never_deletes_the_holders_topics(world: Any) -> None:
    first = world.kube.add_pipeline("fleet", SPEC, namespace="a")
    doomed = {**SPEC, "deletionPolicy": "Delete"}
    second = world.kube.add_pipeline("fleet", doomed, namespace="b")
    world.reconcile(first)
    world.reconcile(second)
    del world.kube.pipelines[("b", "fleet")]
    world.reconciler.delete(second, doomed)
    assert world.kafka.deleted == []
    assert "TopicsKept" in world.events.reasons()


def test_the_second_pipeline_takes_over_once_the_holder_is_gone(world: Any) -> None:
    first = world.kube.add_pipeline("fleet", SPEC, namespace="a")
    second = world.kube.add_pipeline("fleet", SPEC, namespace="b")
    world.reconcile(first)
    world.reconcile(second)
    del world.kube.pipelines[("a", "fleet")]
    world.reconcile(second)
    assert world.kube.condition(second, "TopicsClaimed")["status"] == "True"
    assert any(c.startswith("apply Deployment/") for c in world.journal.calls)
