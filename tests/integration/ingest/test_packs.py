"""Ingest's packs on the real broker: calls answered only once their pack is on Kafka, events of
several calls in one pack, every vehicle on its key group's partition; and packs turned off."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.core.packs import PACK_HEADER
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2
from fleetpipe_dev.testing import end_offsets, read_all, read_events
from support.ingest import StartIngest
from support.messages import decoded, headers_of, key_of

from .test_ingest import batch, fleet_events

pytestmark = pytest.mark.integration

LINGER_MS = 1500


def test_calls_are_answered_only_once_the_pack_holding_their_events_is_on_kafka(
    start_ingest: StartIngest, topics: Topics, kafka_settings: KafkaSettings
) -> None:
    # A long linger and no count bound: the packs close only when the linger ends.
    ingest = start_ingest(
        topics, FLEET_KAFKA__PACK_LINGER_MS=str(LINGER_MS), FLEET_KAFKA__PACK_EVENTS="100000"
    )
    ticks = fleet_events(12, 2)
    stub = ingest.stub()
    with ThreadPoolExecutor(2) as pool:
        started = time.monotonic()
        calls = [
            pool.submit(stub.Publish, batch(i + 1, tick), metadata=ingest.auth())
            for i, tick in enumerate(ticks)
        ]
        # While the packs linger, nothing is on Kafka and no call has been answered.
        while time.monotonic() - started < LINGER_MS / 1000 * 0.6:
            assert sum(end_offsets(kafka_settings, topics.raw).values()) == 0
            assert not any(c.done() for c in calls), "answered before Kafka held its events"
            time.sleep(0.1)
        acks: list[ingest_pb2.PublishAck] = [c.result(timeout=30) for c in calls]
        answered = time.monotonic() - started
    assert [(a.batch_id, a.accepted) for a in acks] == [(1, 12), (2, 12)]
    assert answered >= LINGER_MS / 1000 * 0.9, "the answer waited for the pack"

    records = read_all(kafka_settings, topics.raw)
    partitions = len(end_offsets(kafka_settings, topics.raw))
    assert 1 <= len(records) <= partitions, "one pack per partition, for both calls"
    assert all(headers_of(m)[PACK_HEADER] == b"1" and m.key() is None for m in records)
    events = read_events(kafka_settings, topics.raw)
    assert len(events) == 24
    groups = KeyGroups()
    seqs: dict[str, list[int]] = {}
    for e in events:
        t = decoded(e, telemetry_pb2.Telemetry)
        assert e.partition() == groups.partition(t.vehicle_id, partitions)
        seqs.setdefault(t.vehicle_id, []).append(t.seq)
    # Both calls' events of each vehicle, in the order ingest accepted them: the two calls
    # run at once, so which one ingest accepted first is not fixed, but one vehicle's events
    # are in one pack, each call's where its call put them.
    assert all(len(set(s)) == 2 for s in seqs.values()), "both calls' events of each vehicle"
    firsts = {s[0] for s in seqs.values()}
    assert len(firsts) == 1, "one call's events before the other's, for every vehicle"


def test_with_packs_off_every_event_is_its_own_record_keyed_by_vehicle(
    start_ingest: StartIngest, topics: Topics, kafka_settings: KafkaSettings
) -> None:
    ingest = start_ingest(topics, FLEET_KAFKA__PACK_EVENTS="1")
    (tick,) = fleet_events(10, 1)
    ack = ingest.stub().Publish(batch(1, tick), metadata=ingest.auth())
    assert ack.accepted == 10
    records = read_all(kafka_settings, topics.raw)
    partitions = len(end_offsets(kafka_settings, topics.raw))
    groups = KeyGroups()
    assert len(records) == 10
    for m in records:
        t = decoded(m, telemetry_pb2.Telemetry)
        assert key_of(m) == t.vehicle_id.encode() and PACK_HEADER not in headers_of(m)
        assert m.partition() == groups.partition(t.vehicle_id, partitions)
