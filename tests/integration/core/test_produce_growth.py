"""Every record the broker acknowledges is on the topic, while the topic grows under the producer.

A partition added to a topic is in the metadata before its leader has created its log, and the
leader answers "not leader" until then. An idempotent producer with several requests in flight
could send a partition's second batch while its first was still being refused; the leader, which
accepts any first sequence from a producer it does not know yet, took the second, and librdkafka
counted the refused first batch as delivered ("implicitly acked by subsequent batch success").
Those records were acknowledged and lost. FleetPipe's producers keep one request in flight per
connection (core/kafka.py), and this test holds them to it.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from confluent_kafka import Message

from fleetpipe.core.kafka import Admin, build_producer
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.topics import TopicSpec
from fleetpipe_dev.testing import read_all, unique_name, wait_for

pytestmark = pytest.mark.integration

VEHICLES = 20_000
GROWN_TO = 400


def test_every_acknowledged_record_is_on_a_topic_grown_while_producing(
    kafka_settings: KafkaSettings,
) -> None:
    topic = unique_name("fleet.telemetry.grow")
    admin = Admin(kafka_settings)
    admin.ensure_topics([TopicSpec(topic, 1)])
    acked: dict[bytes, str] = {}
    partitions: set[int] = set()
    failed: list[str] = []

    def delivered(err: object, msg: Message) -> None:
        if err is None:
            acked[msg.value() or b""] = f"[{msg.partition()}]@{msg.offset()}"
            partitions.add(msg.partition() or 0)
        else:
            failed.append(str(err))

    producer = build_producer(
        kafka_settings,
        client_id="grow-while-producing",
        # Small batches, new partitions seen at once: many batches per new partition are ready
        # while the leader is still creating its log.
        overrides={"linger.ms": 2, "topic.metadata.refresh.interval.ms": 1000},
        report_every_delivery=True,
    )
    stop = threading.Event()
    sent = 0

    def send() -> None:
        nonlocal sent
        for n in itertools.count():
            if stop.is_set():
                break
            value = f"vehicle-{n % VEHICLES:06d} event {n}".encode()
            producer.produce(topic, value, value[:14], on_delivery=delivered)
            sent += 1
            if n % 200 == 0:
                producer.poll(0)
                time.sleep(0.01)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        wait_for(lambda: sent > 5000, timeout=30, what="the producer under way")
        admin.ensure_topics([TopicSpec(topic, GROWN_TO)])

        # Until every new partition has taken records: the window in which leaders refuse is
        # over.
        def everywhere() -> bool:
            assert sender.is_alive(), "the producer thread ended early"
            return len(partitions) == GROWN_TO

        wait_for(everywhere, timeout=120, interval=0.5, what=f"acks on all {GROWN_TO} partitions")
    finally:
        stop.set()
        sender.join(30)
    producer.flush(60)
    assert not failed
    assert len(acked) == sent

    held = {m.value() or b"" for m in read_all(kafka_settings, topic, read_committed=False)}
    gone = sorted(where for value, where in acked.items() if value not in held)
    assert not gone, f"{len(gone)} acknowledged record(s) are not on the topic: {gone[:20]}"
    assert len(held) == sent
