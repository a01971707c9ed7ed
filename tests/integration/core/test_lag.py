"""The lag reader on the real broker: committed offsets, end offsets and the gap per partition."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

import pytest

from fleetpipe.core.errors import GroupOffsetsUnavailable
from fleetpipe.core.kafka import build_admin, build_transactional_producer
from fleetpipe.core.lag import PartitionLag, commit_offsets, end_offsets, group_lag
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.topics import TopicSpec
from fleetpipe_dev.testing import committed_total, produce_all, wait_for

pytestmark = pytest.mark.integration

T = TypeVar("T")


def _topic(kafka: KafkaSettings, partitions: int) -> str:
    topic = f"lag-{uuid.uuid4().hex[:10]}"
    build_admin(kafka).ensure_topics([TopicSpec(topic, partitions)])
    return topic


def _once_available(call: Callable[[], T]) -> T:
    # On a fresh broker the first group request creates __consumer_offsets, and its
    # coordinator takes a moment to load: the reader says so instead of answering.
    def attempt() -> list[T]:
        try:
            return [call()]
        except GroupOffsetsUnavailable:
            return []

    return wait_for(attempt, timeout=60, what="the group coordinator")[0]


def test_a_group_that_never_committed_is_behind_by_every_retained_record(
    kafka_settings: KafkaSettings,
) -> None:
    topic = _topic(kafka_settings, 3)
    produce_all(kafka_settings, topic, ((f"key-{i}", b"x") for i in range(300)))
    admin = build_admin(kafka_settings)
    ends = end_offsets(admin, topic)
    assert sum(ends.values()) == 300

    lags = _once_available(lambda: group_lag(admin, f"never-{topic}", [topic]))

    assert lags == [
        PartitionLag(topic=topic, partition=p, committed=None, end=ends[p], lag=ends[p])
        for p in range(3)
    ]


def test_lag_is_the_end_minus_the_committed_offset_per_partition(
    kafka_settings: KafkaSettings,
) -> None:
    topic = _topic(kafka_settings, 3)
    produce_all(kafka_settings, topic, ((f"key-{i}", b"x") for i in range(300)))
    admin = build_admin(kafka_settings)
    ends = end_offsets(admin, topic)
    group = f"half-{topic}"
    # Partition 2 is left without a commit: the group counts every record there.
    _once_available(lambda: commit_offsets(admin, group, topic, {0: ends[0] // 2, 1: ends[1]}))

    lags = {p.partition: p for p in _once_available(lambda: group_lag(admin, group, [topic]))}

    assert lags[0] == PartitionLag(topic, 0, ends[0] // 2, ends[0], ends[0] - ends[0] // 2)
    assert lags[1] == PartitionLag(topic, 1, ends[1], ends[1], 0)
    assert lags[2] == PartitionLag(topic, 2, None, ends[2], ends[2])
    assert committed_total(kafka_settings, group, topic) == ends[0] // 2 + ends[1]


def test_lag_covers_every_topic_asked_for_that_exists(kafka_settings: KafkaSettings) -> None:
    first, second = _topic(kafka_settings, 2), _topic(kafka_settings, 1)
    admin = build_admin(kafka_settings)

    lags = _once_available(
        lambda: group_lag(admin, f"g-{first}", [first, second, f"missing-{first}", first])
    )

    assert [(p.topic, p.partition, p.lag) for p in lags] == [
        (first, 0, 0),
        (first, 1, 0),
        (second, 0, 0),
    ]


def test_committed_end_offsets_stop_before_an_open_transaction(
    kafka_settings: KafkaSettings,
) -> None:
    topic = _topic(kafka_settings, 1)
    produce_all(kafka_settings, topic, ((b"k", b"committed") for _ in range(10)))
    producer = build_transactional_producer(
        kafka_settings, client_id="lag-test", transactional_id=f"lag-{topic}"
    )
    producer.open()
    producer.client.begin_transaction()
    for _ in range(5):
        producer.produce(topic, b"open", b"k")
    producer.client.flush(10)
    try:
        admin = build_admin(kafka_settings)
        assert end_offsets(admin, topic) == {0: 15}
        assert end_offsets(admin, topic, read_committed=True) == {0: 10}
    finally:
        producer.client.abort_transaction(10)
