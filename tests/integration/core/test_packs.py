"""The loop reads packs on the real broker: one record per event for the handler, offsets and
dead letters per Kafka record; a pack that does not parse is dead-lettered whole, and the loop
goes on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from fleetpipe.core.codecs import ProtoCodec
from fleetpipe.core.kafka import build_producer
from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.core.loop import BaseHandler, ConsumeProduceLoop, LoopConfig
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.packs import PACK_HEADER, PACK_HEADERS, PackCodec, event_field
from fleetpipe.core.records import Output, Record
from fleetpipe.core.settings import DeliveryMode, KafkaSettings, Topics
from fleetpipe.core.stopping import StopFlag
from fleetpipe.pb.v1 import deadletter_pb2, telemetry_pb2
from fleetpipe_dev.testing import (
    committed_total,
    end_offsets,
    read_all,
    read_events,
    start_passthrough,
    wait_committed,
    wait_for,
)
from fleetpipe_loadtest import synthetic
from support.messages import decoded, headers_of

pytestmark = pytest.mark.integration

PARTITIONS = 3


def _telemetry(vehicles: int, ticks: int) -> list[telemetry_pb2.Telemetry]:
    return [synthetic.telemetry(v, seq) for seq in range(1, ticks + 1) for v in range(vehicles)]


def _write(kafka: KafkaSettings, topic: str, records: list[tuple[int, bytes, bool]]) -> None:
    """Produce (partition, value, is a pack) records in order."""
    producer = build_producer(kafka, client_id="packs-test")
    for partition, value, pack in records:
        if pack:
            producer.produce(topic, value, None, PACK_HEADERS, partition)
        else:
            producer.produce(topic, value, None, None, partition)
    producer.flush(60)


def _packed(events: list[telemetry_pb2.Telemetry]) -> list[tuple[int, bytes, bool]]:
    """The events in one pack per partition, each on its vehicle's partition."""
    groups = KeyGroups()
    by_partition: dict[int, bytes] = {}
    for e in events:
        p = groups.partition(e.vehicle_id, PARTITIONS)
        by_partition[p] = by_partition.get(p, b"") + event_field(e.SerializeToString())
    return [(p, value, True) for p, value in sorted(by_partition.items())]


def test_an_unreadable_pack_is_dead_lettered_whole_with_its_coordinates_and_the_loop_goes_on(
    kafka_settings: KafkaSettings, make_topics: Any, tmp_path: Path
) -> None:
    topics: Topics = make_topics(PARTITIONS)
    before, after = _telemetry(6, 2), _telemetry(6, 4)[12:]
    broken = event_field(before[0].SerializeToString())[:-3]  # its last event cut short
    single = after[0]  # a single record beside the packs, as topics held before packs
    home = KeyGroups().partition(single.vehicle_id, PARTITIONS)
    records = [
        *_packed(before),
        (1, broken, True),
        (home, single.SerializeToString(), False),
        *_packed(after[1:]),
    ]
    broken_at = sum(1 for p, _, _ in _packed(before) if p == 1)
    _write(kafka_settings, topics.raw, records)

    group = f"packs-{topics.raw}"
    worker = start_passthrough(kafka_settings, topics, tmp_path / "worker.log", group=group)
    wait_committed([worker], kafka_settings, group, topics.raw, len(records), timeout=90)
    assert worker.stop() == 0

    passed = [
        decoded(e, telemetry_pb2.Telemetry) for e in read_events(kafka_settings, topics.enriched)
    ]
    assert sorted((t.vehicle_id, t.seq) for t in passed) == sorted(
        (t.vehicle_id, t.seq) for t in before + after
    ), "every event of the good packs, before and after the broken one"
    out = read_all(kafka_settings, topics.enriched)
    assert sum(PACK_HEADER in headers_of(m) for m in out) == len(records) - 2, "packs stay whole"

    (letter_msg,) = read_all(kafka_settings, topics.deadletter)
    headers = headers_of(letter_msg)
    assert headers["fp-reason"] == b"undecodable"
    assert headers["fp-source-topic"] == topics.raw.encode()
    letter = decoded(letter_msg, deadletter_pb2.DeadLetter)
    assert letter.payload == broken, "the pack, whole"
    assert (letter.source_partition, letter.source_offset) == (1, broken_at)
    assert f"{topics.raw}[1]@{broken_at}" in letter.error and "not a pack" in letter.error


class Recorder(BaseHandler):
    """Keeps what the handler was given: (partition, offset, vehicle, seq) per record."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, str, int]] = []

    def handle(self, records: list[Record[Any]], out: Output) -> None:
        for r in records:
            self.seen.append((r.partition, r.offset, r.value.vehicle_id, r.value.seq))


@contextmanager
def _running(loop: ConsumeProduceLoop) -> Iterator[None]:
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.stop.set()
        thread.join(30)
        assert not thread.is_alive(), "the loop must drain and stop"


def test_the_handler_gets_each_event_of_packs_and_single_records_in_order(
    kafka_settings: KafkaSettings, make_topics: Any
) -> None:
    topics: Topics = make_topics(PARTITIONS)
    events = _telemetry(9, 6)
    groups = KeyGroups()
    records: list[tuple[int, bytes, bool]] = []
    for tick in range(6):
        these = events[tick * 9 : (tick + 1) * 9]
        if tick % 3 == 2:  # every third tick as single records, as before packs
            records += [
                (groups.partition(e.vehicle_id, PARTITIONS), e.SerializeToString(), False)
                for e in these
            ]
        else:
            records += _packed(these)
    _write(kafka_settings, topics.raw, records)

    handler = Recorder()
    config = LoopConfig(
        service="test",
        group_id=f"packs-{topics.raw}",
        inputs={topics.raw: PackCodec(ProtoCodec(telemetry_pb2.Telemetry))},
        deadletter_topic=topics.deadletter,
        mode=DeliveryMode.EXACTLY_ONCE,
        instance_id="packs",
        max_batch=7,  # batches end inside runs of packs and single records
    )
    loop = ConsumeProduceLoop(
        config, kafka_settings, handler, metrics=Metrics("test"), stop=StopFlag()
    )
    with _running(loop):
        wait_for(lambda: len(handler.seen) >= len(events), timeout=60, what="every event")
        wait_for(
            lambda: committed_total(kafka_settings, config.group_id, topics.raw) == len(records),
            timeout=60,
            what="offsets committed per Kafka record",
        )
    assert sorted((v, s) for _, _, v, s in handler.seen) == sorted(
        (e.vehicle_id, e.seq) for e in events
    ), "each event once"
    by_vehicle: dict[str, list[tuple[int, int, int]]] = {}
    for partition, offset, vehicle, seq in handler.seen:
        assert partition == groups.partition(vehicle, PARTITIONS)
        by_vehicle.setdefault(vehicle, []).append((offset, seq, partition))
    for vehicle, seen in by_vehicle.items():
        assert [s for _, s, _ in seen] == list(range(1, 7)), f"{vehicle} in order"
    assert sum(end_offsets(kafka_settings, topics.raw).values()) == len(records)
