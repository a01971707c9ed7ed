"""Ingest's packs: events of many calls per partition, each call answered once all its packs are
on Kafka; bounds by count, bytes and linger. With the hand-written fake producer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.core.packs import PACK_HEADERS, PackLimits, scan
from fleetpipe.core.tracing import TRACEPARENT
from fleetpipe.ingest.sink import TracedDelivery
from support.sinkfakes import PARTITIONS, FakeClient, FakeError, settle, sink

pytestmark = pytest.mark.unit

VEHICLES = [f"veh-{i:04d}" for i in range(40)]
NO_LINGER = PackLimits(events=1000, max_bytes=1 << 20, linger_s=0.0)


def _values(n: int, tag: str) -> list[bytes]:
    return [f"{tag}-{i}".encode() for i in range(n)]


def _packs(client: FakeClient) -> Iterator[tuple[int, list[bytes]]]:
    for topic, partition, key, value, headers in client.produced:
        assert topic == "raw" and key is None and headers == PACK_HEADERS
        yield partition, [value[a:b] for a, b in scan(value).spans]


def test_a_calls_events_go_in_one_pack_per_partition_in_order() -> None:
    async def go() -> None:
        client = FakeClient()
        s = sink(client, packing=NO_LINGER)
        values = _values(40, "a")
        d = s.reserve(40, asyncio.get_running_loop())
        s.submit(d, values, VEHICLES, [])
        groups = KeyGroups()
        expected: dict[int, list[bytes]] = {}
        for v, value in zip(VEHICLES, values, strict=True):
            expected.setdefault(groups.partition(v, PARTITIONS), []).append(value)
        assert dict(_packs(client)) == expected
        assert len(client.queued) == len(expected) <= PARTITIONS
        client.report(len(expected) - 1)
        await settle()
        assert not d.future.done(), "one pack still unconfirmed"
        client.report()
        await settle()
        assert d.future.done() and d.future.result() is None and s.inflight == 0

    asyncio.run(go())


def test_packs_gather_several_calls_and_each_call_waits_for_its_own_packs() -> None:
    groups = KeyGroups()
    x = VEHICLES[0]
    y = next(
        v for v in VEHICLES if groups.partition(v, PARTITIONS) != groups.partition(x, PARTITIONS)
    )

    async def go() -> None:
        client = FakeClient()
        s = sink(client, packing=PackLimits(events=1000, max_bytes=1 << 20, linger_s=0.05))
        loop = asyncio.get_running_loop()
        first = s.reserve(2, loop)
        s.submit(first, [b"a-x", b"a-y"], [x, y], [])
        second = s.reserve(1, loop)
        s.submit(second, [b"b-x"], [x], [])
        assert client.produced == [], "lingering for more calls"
        await asyncio.sleep(0.1)
        packs = dict(_packs(client))
        assert packs == {
            groups.partition(x, PARTITIONS): [b"a-x", b"b-x"],
            groups.partition(y, PARTITIONS): [b"a-y"],
        }, "the two calls' events of one partition share a pack"
        at_y = [p for _, p, *_ in client.produced].index(groups.partition(y, PARTITIONS))
        _report_one(client, at_y)
        await settle()
        assert not first.future.done() and not second.future.done()
        _report_one(client, 1 - at_y)
        await settle()
        assert first.future.done() and second.future.done() and s.inflight == 0

    asyncio.run(go())


def _report_one(client: FakeClient, index: int) -> None:
    """Play the delivery report of the ``index``-th produced record."""
    topic, report = client.queued[index]
    client.queued[index] = (topic, _reported)
    report(None, _Delivered(topic))


def _reported(_err: object, _msg: object) -> None:
    raise AssertionError("reported twice")


class _Delivered:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7


@pytest.mark.parametrize(
    ("limits", "events", "packs"),
    [
        pytest.param(PackLimits(events=10, max_bytes=1 << 20, linger_s=0.0), 25, 3, id="count"),
        pytest.param(PackLimits(events=1000, max_bytes=100, linger_s=0.0), 25, 5, id="bytes"),
    ],
)
def test_a_pack_closes_at_its_count_or_byte_bound(
    limits: PackLimits, events: int, packs: int
) -> None:
    async def go() -> None:
        client = FakeClient()
        s = sink(client, packing=limits)
        d = s.reserve(events, asyncio.get_running_loop())
        one = VEHICLES[0]
        values = [f"ev-{i:02d}-{'x' * 10}".encode() for i in range(events)]
        s.submit(d, values, [one] * events, [])
        got = list(_packs(client))
        assert len(got) == packs
        assert [e for _, events in got for e in events] == values, "one vehicle, in order"
        assert all(len(scan_value) <= limits.max_bytes for scan_value in _values_of(client))
        client.report()
        await settle()
        assert d.future.done()

    asyncio.run(go())


def _values_of(client: FakeClient) -> list[bytes]:
    return [value for _, _, _, value, _ in client.produced]


def test_a_failed_pack_fails_every_call_in_it() -> None:
    async def go() -> None:
        client = FakeClient()
        s = sink(client, packing=PackLimits(events=1000, max_bytes=1 << 20, linger_s=0.02))
        loop = asyncio.get_running_loop()
        calls = [s.reserve(1, loop) for _ in range(3)]
        for i, d in enumerate(calls):
            s.submit(d, [f"c{i}".encode()], [VEHICLES[0]], [])
        await asyncio.sleep(0.05)
        assert len(client.queued) == 1
        client.report(error=FakeError("Broker: not enough replicas"))
        await settle()
        for d in calls:
            with pytest.raises(Exception, match="not enough replicas"):
                d.future.result()
        assert s.inflight == 0

    asyncio.run(go())


def test_a_sampled_events_trace_context_travels_in_the_pack_and_its_span_ends_on_delivery() -> None:
    async def go() -> None:
        client = FakeClient()
        s = sink(client, packing=NO_LINGER)
        d = s.reserve(3, asyncio.get_running_loop())
        span = _Span()
        traced = {1: TracedDelivery(span, d)}  # type: ignore[arg-type]
        s.submit(d, _values(3, "t"), [VEHICLES[0]] * 3, [], traced)
        (_, _, _, value, _) = client.produced[0]
        found = scan(value)
        assert found.traces == {1: [(TRACEPARENT, span.headers[0][1])]}
        assert not span.ended
        client.report()
        await settle()
        assert span.ended and span.attributes["messaging.kafka.offset"] == 0
        assert d.future.done()

    asyncio.run(go())


class _Span:
    """What the sink uses of a span: its headers, attributes and end."""

    def __init__(self) -> None:
        self.headers = [(TRACEPARENT, b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
        self.attributes: dict[str, object] = {}
        self.ended = False

    def set(self, name: str, value: object) -> None:
        self.attributes[name] = value

    def fail(self, error: object) -> None:
        self.attributes["error"] = error

    def end(self) -> None:
        self.ended = True
