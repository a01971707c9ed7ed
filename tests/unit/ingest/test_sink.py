"""Per-batch delivery tracking and the in-flight bound, with a hand-written fake producer."""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import KafkaError, KafkaException

from fleetpipe.ingest.sink import SinkFailed, SinkFull
from support.sinkfakes import FakeClient, FakeError, settle, sink

pytestmark = pytest.mark.unit


def test_a_batch_resolves_when_kafka_has_every_record_and_not_before() -> None:
    async def go() -> None:
        client = FakeClient()
        s = sink(client)
        d = s.reserve(3, asyncio.get_running_loop())
        s.submit(d, [b"1", b"2"], ["v1", "v2"], [(b"dl", b"v3", [])])
        assert [q[0] for q in client.queued] == ["raw", "raw", "dl"]
        client.report(2)
        await settle()
        assert not d.future.done() and s.inflight == 3
        client.report()
        await settle()
        assert d.future.done() and d.future.result() is None and s.inflight == 0

    asyncio.run(go())


def test_one_failed_record_fails_the_batch() -> None:
    async def go() -> None:
        client = FakeClient()
        s = sink(client)
        d = s.reserve(2, asyncio.get_running_loop())
        s.submit(d, [b"1", b"2"], ["v1", "v2"], [])
        client.report(1, FakeError("Broker: timed out"))
        client.report()
        await settle()
        with pytest.raises(SinkFailed, match="raw\\[0\\]: Broker: timed out"):
            d.future.result()
        assert s.inflight == 0

    asyncio.run(go())


def test_the_in_flight_bound_refuses_without_waiting() -> None:
    async def go() -> None:
        client = FakeClient()
        s = sink(client, limit=5)
        loop = asyncio.get_running_loop()
        d = s.reserve(4, loop)
        s.submit(d, [b"x"] * 4, ["v"] * 4, [])
        with pytest.raises(SinkFull, match="4 events are awaiting Kafka"):
            s.reserve(2, loop)
        client.report()
        await settle()
        s.reserve(5, loop)  # room again once Kafka confirmed

    asyncio.run(go())


def test_a_full_local_queue_refuses_the_batch_and_keeps_the_count_right() -> None:
    async def go() -> None:
        client = FakeClient(room=2)
        s = sink(client)
        d = s.reserve(4, asyncio.get_running_loop())
        with pytest.raises(SinkFull, match="local queue is full"):
            s.submit(d, [b"x"] * 4, ["v"] * 4, [])
        assert s.inflight == 2  # only what was handed over is still awaited
        client.report()
        await settle()
        assert s.inflight == 0

    asyncio.run(go())


def test_a_fatal_producer_error_stops_accepting() -> None:
    async def go() -> None:
        client = FakeClient()
        s = sink(client)
        d = s.reserve(1, asyncio.get_running_loop())
        s.submit(d, [b"x"], ["v"], [])
        client.report(error=FakeError("fenced", fatal=True))
        await settle()
        assert s.fatal.is_set()
        with pytest.raises(SinkFailed, match="fenced"):
            s.reserve(1, asyncio.get_running_loop())

    asyncio.run(go())


def test_an_empty_batch_resolves_at_once() -> None:
    async def go() -> None:
        s = sink(FakeClient())
        d = s.reserve(0, asyncio.get_running_loop())
        s.submit(d, [], [], [])
        assert d.future.done()

    asyncio.run(go())


class _Unplaced:
    """A delivery report of a record that failed before it had a topic or a partition."""

    def topic(self) -> str | None:
        return None

    def partition(self) -> int | None:
        return None

    def offset(self) -> int:
        return -1


def test_a_failed_report_without_a_topic_still_fails_the_batch_by_name() -> None:
    async def go() -> None:
        client = FakeClient()
        s = sink(client)
        d = s.reserve(1, asyncio.get_running_loop())
        s.submit(d, [b"1"], ["v1"], [])
        [(_topic, report)] = client.queued
        report(FakeError("Fatal: producer id refused", fatal=True), _Unplaced())
        await settle()
        with pytest.raises(SinkFailed, match=r"^one of dl, raw: Fatal: producer id refused$"):
            d.future.result()
        assert s.fatal_error is not None

    asyncio.run(go())


def test_a_producer_id_refused_with_no_record_waiting_stops_the_sink_in_words() -> None:
    async def go() -> None:
        client = FakeClient()
        s = sink(client)
        s.start()
        try:
            # What the library's poll raises when the broker refuses the principal a
            # producer id: the poller must neither die silently nor leave ingest running.
            client.fatal = KafkaException(
                KafkaError(
                    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
                    "Failed to acquire idempotence PID",
                    fatal=True,
                )
            )
            await asyncio.wait_for(s.fatal.wait(), timeout=10)
        finally:
            s.close(1.0)
        assert s.fatal_error is not None
        assert s.fatal_error.startswith("Kafka refused User:ingest a producer id"), s.fatal_error
        with pytest.raises(SinkFailed, match="User:ingest"):
            s.reserve(1, asyncio.get_running_loop())

    asyncio.run(go())
