"""Per-batch delivery tracking and the in-flight bound, with a hand-written fake producer."""

from __future__ import annotations

import asyncio

import pytest

from fleetpipe.core.kafka import DeliveryCallback, Headers, ProducerClient
from fleetpipe.ingest.sink import KafkaSink, SinkFailed, SinkFull, SinkProducer

pytestmark = pytest.mark.unit


class FakeError:
    def __init__(self, text: str, fatal: bool = False) -> None:
        self._text, self._fatal = text, fatal

    def str(self) -> str:
        return self._text

    def fatal(self) -> bool:
        return self._fatal


class FakeMessage:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0


class FakeClient(ProducerClient):
    """Records produced messages; ``report`` plays librdkafka's delivery reports."""

    def __init__(self, room: int = 10**9) -> None:
        self.queued: list[tuple[str, DeliveryCallback]] = []
        self.room = room

    def produce(
        self,
        topic: str,
        value: str | bytes | None = None,
        key: str | bytes | None = None,
        partition: int = -1,
        callback: DeliveryCallback | None = None,
        on_delivery: DeliveryCallback | None = None,
        timestamp: int = 0,
        headers: Headers | None = None,
    ) -> None:
        if len(self.queued) >= self.room:
            raise BufferError("queue full")
        # librdkafka takes the callback positionally (``callback``) or by keyword (``on_delivery``).
        report = on_delivery or callback
        assert report is not None, "the sink asks a report for every record"
        self.queued.append((topic, report))

    def poll(self, timeout: float = -1) -> int:
        return 0

    def flush(self, timeout: float = -1) -> int:
        return len(self.queued)

    def report(self, n: int | None = None, error: FakeError | None = None) -> None:
        n = len(self.queued) if n is None else n
        for topic, cb in self.queued[:n]:
            cb(error, FakeMessage(topic))
        del self.queued[:n]


class FakeProducer(SinkProducer):
    def __init__(self, client: FakeClient) -> None:
        self._client = client

    @property
    def client(self) -> FakeClient:
        return self._client

    def open(self, *, init_timeout_s: float = 60.0) -> None:
        pass

    def in_flight(self) -> int:
        return len(self._client.queued)

    def close(self, timeout: float = 30.0) -> None:
        pass


def sink(client: FakeClient, limit: int = 100) -> KafkaSink:
    return KafkaSink(
        FakeProducer(client),
        raw_topic="raw",
        deadletter_topic="dl",
        max_inflight_events=limit,
    )


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


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
