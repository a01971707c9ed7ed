"""The loop in-process: rebalance hooks, RetryLater, health and metrics."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from prometheus_client import generate_latest

from fleetpipe.core.health import Health, HealthServer
from fleetpipe.core.loop import BaseHandler, ConsumeProduceLoop, RetryLater
from fleetpipe.core.records import Output, Record
from fleetpipe.core.settings import DeliveryMode, KafkaSettings, Topics
from fleetpipe_dev.testing import produce_all, read_all, wait_for
from fleetpipe_loadtest import synthetic
from support.loops import running_loop, telemetry_loop

pytestmark = pytest.mark.integration


class Recorder(BaseHandler):
    """Copies records to an output topic and records what the loop told it."""

    def __init__(self, output: str, *, fail_first: int = 0) -> None:
        self.output = output
        self.fail_first = fail_first
        self.assigned: set[tuple[str, int]] = set()
        self.revoked: list[set[tuple[str, int]]] = []
        self.seen = 0
        self.retries = 0

    def handle(self, records: list[Record[Any]], out: Output) -> None:
        if self.retries < self.fail_first:
            self.retries += 1
            out.send_many(self.output, [(b"doomed", b"must never be visible")])
            raise RetryLater("database unavailable")
        self.seen += len(records)
        out.send_many(self.output, [(r.key, r.msg.value()) for r in records])

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned |= {(tp.topic, tp.partition) for tp in partitions}

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self.revoked.append(gone)
        self.assigned -= gone


def _loop(
    kafka: KafkaSettings, topics: Topics, handler: Recorder, *, instance: str, mode: DeliveryMode
) -> ConsumeProduceLoop:
    return telemetry_loop(
        kafka,
        topics,
        handler,
        group=f"hooks-{topics.raw}",
        instance=instance,
        mode=mode,
        max_batch=500,
    )


def _load(kafka: KafkaSettings, topic: str, n: int) -> None:
    produce_all(
        kafka, topic, ((e.vehicle_id, e.SerializeToString()) for e in synthetic.stream(60, n))
    )


def test_rebalance_hands_partitions_over_and_back(
    kafka_settings: KafkaSettings, make_topics: Any
) -> None:
    topics = make_topics(4)
    first, second = Recorder(topics.enriched), Recorder(topics.enriched)
    everything = {(topics.raw, p) for p in range(4)}
    with running_loop(
        _loop(kafka_settings, topics, first, instance="a", mode=DeliveryMode.EXACTLY_ONCE)
    ):
        wait_for(lambda: first.assigned == everything, timeout=60, what="first to own all")
        with running_loop(
            _loop(kafka_settings, topics, second, instance="b", mode=DeliveryMode.EXACTLY_ONCE)
        ):
            wait_for(lambda: second.assigned and first.assigned, timeout=60, what="a split")
            assert first.revoked, "the first member was told before losing partitions"
            assert first.assigned | second.assigned == everything
            assert not first.assigned & second.assigned
        wait_for(lambda: first.assigned == everything, timeout=60, what="first to own all again")


def test_retry_later_rewinds_and_discards_the_failed_batch(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    _load(kafka_settings, topics.raw, 600)
    handler = Recorder(topics.enriched, fail_first=3)
    loop = _loop(kafka_settings, topics, handler, instance="r", mode=DeliveryMode.EXACTLY_ONCE)
    with running_loop(loop):
        wait_for(lambda: handler.seen >= 600, timeout=60, what="all records after the retries")
    out = read_all(kafka_settings, topics.enriched)
    assert handler.retries == 3
    assert len(out) == 600, "aborted attempts leave nothing behind"
    assert all(m.value() != b"must never be visible" for m in out)
    metrics = generate_latest(loop.metrics.registry).decode()
    assert 'fleetpipe_transactions_total{outcome="aborted"} 3.0' in metrics


def test_health_endpoints_and_metrics_follow_the_loop(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    import urllib.error
    import urllib.request

    _load(kafka_settings, topics.raw, 300)
    handler = Recorder(topics.enriched)
    loop = _loop(kafka_settings, topics, handler, instance="h", mode=DeliveryMode.AT_LEAST_ONCE)
    health = Health()
    loop.health = health
    server = HealthServer(health, loop.metrics, host="127.0.0.1", port=0)
    server.start()

    def get(path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=2) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    try:
        assert get("/readyz") == 503, "not ready before partitions are assigned"
        assert get("/healthz") == 200
        with running_loop(loop):
            wait_for(lambda: handler.seen >= 300, timeout=60, what="records processed")
            assert get("/readyz") == 200
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics") as r:
                text = r.read().decode()
            assert f'fleetpipe_records_consumed_total{{topic="{topics.raw}"}} 300.0' in text
            assert f'fleetpipe_records_produced_total{{topic="{topics.enriched}"}} 300.0' in text
        assert get("/readyz") == 503, "not ready once stopped"
    finally:
        server.stop()


class SlowRestore(Recorder):
    """Takes ``restore_s`` to take partitions on, as a stage reading its state back does; with
    ``fail_first``, only the restore of a rewind (the second ``on_assign``) is slow."""

    def __init__(self, output: str, *, restore_s: float, fail_first: int = 0) -> None:
        super().__init__(output, fail_first=fail_first)
        self.restore_s = restore_s
        self.restoring = threading.Event()
        self.assigns = 0

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        self.assigns += 1
        if not self.fail_first or self.assigns > 1:
            self.restoring.set()
            time.sleep(self.restore_s)
        super().on_assign(partitions)


@pytest.mark.parametrize(("bound_s", "alive"), [(30.0, True), (0.0, False)])
def test_a_restore_longer_than_the_heartbeat_is_alive_within_its_bound(
    kafka_settings: KafkaSettings, topics: Topics, bound_s: float, alive: bool
) -> None:
    _load(kafka_settings, topics.raw, 50)
    handler = SlowRestore(topics.enriched, restore_s=4.0)
    loop = _loop(kafka_settings, topics, handler, instance="r", mode=DeliveryMode.EXACTLY_ONCE)
    loop.config = dataclasses.replace(loop.config, assign_bound_s=bound_s)
    loop.health = Health(liveness_timeout_s=1.0)
    with running_loop(loop):
        wait_for(handler.restoring.is_set, timeout=60, what="the restore to begin")
        time.sleep(2.0)  # past the heartbeat's timeout, inside the restore
        assert loop.health.alive is alive
        wait_for(lambda: handler.seen >= 50, timeout=60, what="records processed")
        assert loop.health.alive, "the heartbeat counts again once the restore is over"


@pytest.mark.parametrize(("bound_s", "alive"), [(30.0, True), (0.0, False)])
def test_the_restore_of_a_rewind_is_alive_within_the_same_bound(
    kafka_settings: KafkaSettings, topics: Topics, bound_s: float, alive: bool
) -> None:
    """A failed window rewinds and the handler rebuilds its state from the committed offsets:
    that restore waits for Kafka as much as an assignment's and has the same bound."""
    _load(kafka_settings, topics.raw, 50)
    handler = SlowRestore(topics.enriched, restore_s=4.0, fail_first=1)
    loop = _loop(kafka_settings, topics, handler, instance="w", mode=DeliveryMode.EXACTLY_ONCE)
    loop.config = dataclasses.replace(loop.config, assign_bound_s=bound_s)
    loop.health = Health(liveness_timeout_s=1.0)
    with running_loop(loop):
        wait_for(handler.restoring.is_set, timeout=60, what="the rewind's restore to begin")
        assert handler.retries == 1, "the slow restore is the rewind's, after the failure"
        time.sleep(2.0)  # past the heartbeat's timeout, inside the restore
        assert loop.health.alive is alive
        wait_for(lambda: handler.seen >= 50, timeout=60, what="records processed")
        assert loop.health.alive, "the heartbeat counts again once the restore is over"
