"""Keys land where fleetpipe.core.partitioner (librdkafka) and fleetpipe.core.keygroups (the
pipeline's producers) say, on the real broker; changelogs read back."""

from __future__ import annotations

import uuid

import confluent_kafka
import pytest

from fleetpipe.core.kafka import Admin, Producer
from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.core.partitioner import partition_for
from fleetpipe.core.readers import read_table
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.topics import TopicSpec
from fleetpipe_dev.testing import produce_all, read_all, wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("partitions", [pytest.param(3, id="3"), pytest.param(7, id="7")])
def test_producers_place_keys_as_the_partitioner_module_computes(
    kafka_settings: KafkaSettings, partitions: int
) -> None:
    topic = f"partitioner-{uuid.uuid4().hex[:8]}"
    Admin(kafka_settings).ensure_topics([TopicSpec(topic, partitions)])
    keys = [f"fleet-{i % 3}-veh-{i:06d}" for i in range(300)] + ["", "ü-ñ", "x" * 77]
    producer = Producer(kafka_settings, client_id="partitioner-test")
    for key in keys:
        producer.produce(topic, b"service", key)
    producer.flush()
    produce_all(kafka_settings, topic, ((key, b"testing") for key in keys))
    msgs = wait_for(
        lambda: [m for m in [read_all(kafka_settings, topic)] if len(m) >= 2 * len(keys)],
        timeout=60,
        what="every record readable",
    )[0]
    assert len(msgs) == 2 * len(keys)
    placed = {(m.key(), m.value(), m.partition()) for m in msgs}
    groups = KeyGroups()
    # librdkafka's own partitioner (records whose producer names no partition: dead letters)
    # computes murmur2 as the partitioner module does; the pipeline's producers name the
    # partition by key group, as produce_all does.
    assert placed == {(k.encode(), b"service", partition_for(k, partitions)) for k in keys} | {
        (k.encode(), b"testing", groups.partition(k, partitions)) for k in keys
    }
    for value in (b"service", b"testing"):
        spread = {p for _, v, p in placed if v == value}
        assert len(spread) == partitions, "the keys spread over every partition"


def test_read_table_returns_the_newest_committed_value_per_key(
    kafka_settings: KafkaSettings,
) -> None:
    topic = f"table-{uuid.uuid4().hex[:8]}"
    Admin(kafka_settings).ensure_topics([TopicSpec(topic, 3, config={"cleanup.policy": "compact"})])
    producer = confluent_kafka.Producer(
        {**kafka_settings.client_config(), "transactional.id": f"t-{topic}"}
    )
    producer.init_transactions(30)
    expected = {}
    for round_ in range(3):
        producer.begin_transaction()
        for i in range(200):
            key = f"k{i}".encode()
            producer.produce(topic, f"v{round_}-{i}".encode(), key)
            expected[key] = f"v{round_}-{i}".encode()
        producer.commit_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, None, b"k7")  # a tombstone removes its key
    producer.commit_transaction(30)
    del expected[b"k7"]
    producer.begin_transaction()
    for i in range(200):
        producer.produce(topic, b"aborted", f"k{i}".encode())
    producer.flush(30)
    producer.abort_transaction(30)
    assert read_table(kafka_settings, topic, client_id="table-test", timeout_s=60) == expected
