"""A producer whose queue fills up with no broker to drain it: bounded by the clock.

Nothing listens at the bootstrap address; librdkafka's own timers (the queue-full deadline,
``delivery.timeout.ms``) decide the outcome, so these take a second or so of real time.
"""

from __future__ import annotations

import time

import pytest

from fleetpipe.core.errors import DeliveryError, ProducerQueueFull
from fleetpipe.core.kafka import build_producer
from fleetpipe.core.settings import KafkaSettings

pytestmark = pytest.mark.integration

# Nothing listens on port 1: no broker ever takes a record.
NOWHERE = KafkaSettings(bootstrap_servers="127.0.0.1:1")


def test_produce_into_a_queue_that_stays_full_raises_with_the_topic_after_the_deadline() -> None:
    producer = build_producer(
        NOWHERE,
        client_id="t",
        overrides={"queue.buffering.max.messages": 1},
        queue_full_timeout_s=0.3,
    )
    producer.produce("fleet.test.v1", b"first", b"k")  # fills the queue: no broker takes it
    started = time.monotonic()
    with pytest.raises(ProducerQueueFull, match=r"fleet\.test\.v1") as raised:
        producer.produce("fleet.test.v1", b"second", b"k")
    assert raised.value.topic == "fleet.test.v1"
    assert 0.3 <= time.monotonic() - started < 5


def test_produce_waits_for_room_as_long_as_a_record_may_take_to_deliver_by_default() -> None:
    producer = build_producer(
        NOWHERE,
        client_id="t",
        overrides={"queue.buffering.max.messages": 1, "delivery.timeout.ms": 400},
    )
    producer.produce("fleet.test.v1", b"first", b"k")
    # The first record fails (nothing delivers it) about a second later, which frees its room:
    # the second produce returns only once that failure has been reported, and the second
    # record's own (delivery.timeout.ms after it) cannot have been yet. (The queue's length is
    # no measure here: librdkafka counts the connection errors it queues for the application.)
    producer.produce("fleet.test.v1", b"second", b"k")
    with pytest.raises(DeliveryError, match=r"fleet\.test\.v1") as raised:
        producer.raise_for_failures()
    assert len(raised.value.failures) == 1
