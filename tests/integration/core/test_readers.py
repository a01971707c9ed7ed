"""The topic reader on the real broker: offsets of partitions whose leader has just appeared."""

from __future__ import annotations

import uuid

import pytest

from fleetpipe.core.errors import KafkaError
from fleetpipe.core.kafka import build_admin, build_producer
from fleetpipe.core.readers import build_reader, read_latest
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.topics import TopicSpec

pytestmark = pytest.mark.integration


def test_watermarks_of_a_topic_created_a_moment_ago_are_answered(
    kafka_settings: KafkaSettings,
) -> None:
    """A restore right after the topics are created (a fresh pipeline) asks for the offsets
    of partitions whose leaders may not serve yet: the reader asks again instead of failing."""
    topic = f"readers-{uuid.uuid4().hex[:10]}"
    reader = build_reader(kafka_settings, client_id="test-readers", read_committed=True)
    try:
        build_admin(kafka_settings).ensure_topics([TopicSpec(topic, 100)])
        marks = {p: reader.watermarks(topic, p) for p in range(100)}
        assert marks == {p: (0, 0) for p in range(100)}
    finally:
        reader.close()


def test_watermarks_of_a_missing_partition_name_it_after_the_timeout(
    kafka_settings: KafkaSettings,
) -> None:
    topic = f"readers-{uuid.uuid4().hex[:10]}"
    build_admin(kafka_settings).ensure_topics([TopicSpec(topic, 1)])
    reader = build_reader(kafka_settings, client_id="test-readers", read_committed=True)
    try:
        with pytest.raises(KafkaError, match=rf"{topic}\[7\]"):
            reader.watermarks(topic, 7, timeout_s=1.0)
    finally:
        reader.close()


def test_a_key_in_two_partitions_is_resolved_by_its_values_not_by_read_order(
    kafka_settings: KafkaSettings,
) -> None:
    """After a topic grows, a key's records sit in its old and its new partition: whichever
    the read meets last must not win by that alone."""
    topic = f"readers-{uuid.uuid4().hex[:10]}"
    build_admin(kafka_settings).ensure_topics([TopicSpec(topic, 2)])
    producer = build_producer(kafka_settings, client_id="test-readers")
    # The newer value (7) in partition 0, the older (3) in partition 1, written after it, and
    # a key whose only other copy is tombstoned in a third place.
    producer.produce(topic, b"7", b"v", None, 0)
    producer.produce(topic, b"3", b"v", None, 1)
    producer.produce(topic, b"5", b"w", None, 0)
    producer.produce(topic, None, b"w", None, 1)
    producer.flush(30)

    def newer(candidate: bytes, held: bytes) -> bool:
        return int(candidate) >= int(held)

    latest = read_latest(kafka_settings, topic, client_id="test-readers", newer=newer)
    assert {k: v.value for k, v in latest.items()} == {b"v": b"7", b"w": b"5"}
    assert latest[b"v"].partition == 0
