"""A hand-written producer for ingest's Kafka sink: it records what is produced and plays
librdkafka's delivery reports when a test says so."""

from __future__ import annotations

import asyncio

from fleetpipe.core.kafka import DeliveryCallback, Headers, ProducerClient
from fleetpipe.core.packs import PackLimits
from fleetpipe.ingest.sink import KafkaSink, SinkProducer


class FakeError:
    def __init__(self, text: str, fatal: bool = False) -> None:
        self._text, self._fatal = text, fatal

    def str(self) -> str:
        return self._text

    def fatal(self) -> bool:
        return self._fatal


class FakeMessage:
    def __init__(self, topic: str, partition: int = 0, offset: int = 0) -> None:
        self._topic = topic
        self._partition = partition
        self._offset = offset

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


class FakeClient(ProducerClient):
    """Records produced messages; ``report`` plays librdkafka's delivery reports."""

    def __init__(self, room: int = 10**9) -> None:
        self.queued: list[tuple[str, DeliveryCallback]] = []
        # What was produced, in order: (topic, partition, key, value, headers).
        self.produced: list[tuple[str, int, str | bytes | None, bytes, Headers | None]] = []
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
        assert isinstance(value, bytes)
        self.queued.append((topic, report))
        self.produced.append((topic, partition, key, value, headers))

    def poll(self, timeout: float = -1) -> int:
        if self.fatal is not None:
            raise self.fatal
        return 0

    # What poll raises from now on, as the library raises a fatal error.
    fatal: Exception | None = None

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

    def partitions(self, topic: str, *, timeout: float = 10.0) -> int:
        return PARTITIONS

    @property
    def principal(self) -> str:
        return "User:ingest"

    def close(self, timeout: float = 30.0) -> None:
        pass


PARTITIONS = 4


def sink(client: FakeClient, limit: int = 100, packing: PackLimits | None = None) -> KafkaSink:
    """A sink of one record per event, or of packs with ``packing``; the raw topic has
    ``PARTITIONS`` partitions."""
    made = KafkaSink(
        FakeProducer(client),
        raw_topic="raw",
        deadletter_topic="dl",
        max_inflight_events=limit,
        packing=packing if packing is not None else PackLimits.single(),
    )
    made.partitions = PARTITIONS  # what start() would have read, without its poller thread
    return made


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)
