"""The exactly-once loop while its input topic grows under load and workers join.

The pipeline's growth from 50K to 100K vehicles, on the core loop alone: two exactly-once
workers consume a 50-partition topic that already holds a first run; a second run starts at 300
vehicles a second, the topics grow to 100 partitions within its first second (records still
keyed by the producer's 50-partition view for a while) and two more workers join later. Every
event must come out exactly once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Message

from fleetpipe.core.kafka import Admin, build_producer
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.core.topics import topic_specs
from fleetpipe_dev.testing import (
    ServiceProcess,
    committed_total,
    end_offsets,
    produce_all,
    read_all,
    start_passthrough,
    wait_committed,
    wait_for,
)
from fleetpipe_loadtest import synthetic
from support.servers import MakeTopics

pytestmark = pytest.mark.integration

VEHICLES = 300
FIRST_RUN_S = 30
SECOND_RUN_S = 40


def _worker(kafka: KafkaSettings, topics: Topics, name: str, log: Path) -> ServiceProcess:
    extra = {
        "FLEET_INSTANCE_ID": name,
        # As in the pods: new partitions are seen within seconds.
        "FLEET_KAFKA__METADATA_MAX_AGE_MS": "5000",
    }
    return start_passthrough(kafka, topics, log, group=f"pt-{topics.raw}", extra=extra)


def _send_second_run(
    kafka: KafkaSettings,
    topic: str,
    started: threading.Event,
    sent: list[bytes],
    acked: dict[bytes, str],
) -> None:
    """One event per vehicle and second, as the load driver sends them; ``acked`` gets where
    the broker said it put each one."""

    def delivered(err: object, msg: Message) -> None:
        if err is None:
            acked[msg.value() or b""] = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"

    producer = build_producer(
        kafka,
        client_id="growth-load",
        overrides={"topic.metadata.refresh.interval.ms": 5000},
        report_every_delivery=True,
    )
    begin = time.monotonic()
    for second in range(SECOND_RUN_S):
        for v in range(VEHICLES):
            event = synthetic.telemetry(v, FIRST_RUN_S + second + 1)
            value = event.SerializeToString()
            producer.produce(topic, value, event.vehicle_id.encode(), on_delivery=delivered)
            sent.append(value)
        producer.poll(0)
        started.set()
        time.sleep(max(0.0, begin + second + 1 - time.monotonic()))
    producer.flush(60)


@pytest.fixture
def workers() -> Iterator[list[ServiceProcess]]:
    """The test's workers; any still running at the end (a failed assertion) are killed."""
    started: list[ServiceProcess] = []
    yield started
    for w in started:
        if w.alive():
            w.kill()


def test_exactly_once_through_partition_growth_and_joining_workers(
    kafka_settings: KafkaSettings,
    make_topics: MakeTopics,
    tmp_path: Path,
    workers: list[ServiceProcess],
) -> None:
    topics = make_topics(50)
    group = f"pt-{topics.raw}"
    first = [
        (e.vehicle_id.encode(), e.SerializeToString())
        for e in synthetic.stream(VEHICLES, VEHICLES * FIRST_RUN_S)
    ]
    workers += [_worker(kafka_settings, topics, f"w{i}", tmp_path / f"w{i}.log") for i in range(2)]
    # Both hold partitions before the run, so that growth moves partitions between them: the
    # range assignor gives one 0-24 and the other 25-49, then 0-49 and 50-99.
    wait_for(
        lambda: all("assigned fleet" in w.log() for w in workers),
        timeout=60,
        what="both workers holding partitions",
    )
    produce_all(kafka_settings, topics.raw, first)
    wait_for(
        lambda: committed_total(kafka_settings, group, topics.raw) >= len(first),
        timeout=120,
        what="the first run consumed",
    )

    sent: list[bytes] = []
    acked: dict[bytes, str] = {}
    started = threading.Event()
    load = threading.Thread(
        target=_send_second_run,
        args=(kafka_settings, topics.raw, started, sent, acked),
        daemon=True,
    )
    load.start()
    started.wait(10)
    time.sleep(0.4)
    Admin(kafka_settings).ensure_topics(topic_specs(topics, 100))
    time.sleep(15)
    workers += [
        _worker(kafka_settings, topics, f"w{i}", tmp_path / f"w{i}.log") for i in range(2, 4)
    ]
    load.join(SECOND_RUN_S + 60)
    total = len(first) + len(sent)
    assert len(acked) == len(sent), "the broker acknowledged every event of the second run"
    held = {m.value() or b"" for m in read_all(kafka_settings, topics.raw, read_committed=True)}
    gone = sorted(where for value, where in acked.items() if value not in held)
    assert not gone, f"acknowledged but not on the input topic: {gone[:20]}"
    assert sum(end_offsets(kafka_settings, topics.raw).values()) == total

    wait_committed(workers, kafka_settings, group, topics.raw, total, timeout=180)
    for w in workers:
        assert w.stop() == 0

    out = Counter(
        m.value() or b"" for m in read_all(kafka_settings, topics.enriched, read_committed=True)
    )
    expected = Counter([v for _k, v in first] + sent)
    missing = expected - out
    if missing:
        where = {
            m.value() or b"": f"{topics.raw}[{m.partition()}]@{m.offset()}"
            for m in read_all(kafka_settings, topics.raw, read_committed=True)
        }
        lost = sorted(where.get(v, "not on the input") for v in missing)
        raise AssertionError(f"{len(lost)} event(s) never came out, from {lost[:20]}")
    assert max(out.values()) == 1, "no event may come out twice"
