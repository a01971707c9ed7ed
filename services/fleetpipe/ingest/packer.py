"""Ingest's packs: validated events gathered per partition across calls, one Kafka record each.

A pack is open per partition of the raw topic. Events join it in the order ingest accepts them
(so a vehicle's events stay in order: one vehicle, one partition, one open pack at a time),
from whichever call brought them, and it is produced when it reaches the event or byte bound or
when it has been open for the linger (:class:`fleetpipe.core.packs.PackLimits`).

A call is acknowledged only once Kafka holds every one of its events: each call counts the
packs it joined as parts of its :class:`~fleetpipe.ingest.sink.BatchDelivery`, and a pack's
delivery report counts once for each call whose events it holds. The sampled events' spans end
with their pack's report, which names the partition and offset.

Everything here runs on the event loop's thread (calls and linger timers); only delivery
reports come from the poller thread, and they touch the deliveries, not the open packs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from fleetpipe.core.kafka import Headers
from fleetpipe.core.packs import PackLimits, event_field, trace_field


class BatchDeliveryLike(Protocol):
    """What a pack needs of a call's delivery: :class:`fleetpipe.ingest.sink.BatchDelivery`."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def on_delivery(self, err: Any, msg: Any) -> None: ...


class TracedEvent(Protocol):
    """A sampled event: its trace headers go into the pack, its span ends with the report."""

    @property
    def headers(self) -> Headers: ...

    def end(self, err: Any, msg: Any) -> None: ...


class PackReport:
    """The delivery report of one pack: ends its sampled spans, then counts once for each call
    whose events it holds."""

    __slots__ = ("deliveries", "traced")

    def __init__(self) -> None:
        # Insertion-ordered and unique: a call joins a pack once however many events it adds.
        self.deliveries: dict[BatchDeliveryLike, None] = {}
        self.traced: list[TracedEvent] = []

    def __call__(self, err: Any, msg: Any) -> None:
        for traced in self.traced:
            traced.end(err, msg)
        for delivery in self.deliveries:
            delivery.on_delivery(err, msg)


class _OpenPack:
    __slots__ = ("events", "nbytes", "parts", "report", "timer")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.events = 0
        self.nbytes = 0
        self.report = PackReport()
        self.timer: asyncio.TimerHandle | None = None


# produce(partition, value, report): hands a closed pack to Kafka.
ProducePack = Callable[[int, bytes, PackReport], None]


class Packer:
    """The open packs of one topic, one per partition."""

    def __init__(self, produce: ProducePack, limits: PackLimits) -> None:
        self._produce = produce
        self._max_events = limits.events
        self._max_bytes = limits.max_bytes
        self._linger_s = limits.linger_s
        self._open: dict[int, _OpenPack] = {}

    @property
    def lingers(self) -> bool:
        """Whether packs wait for later calls (else each call's packs close at its end)."""
        return self._linger_s > 0

    def open_events(self) -> int:
        return sum(pack.events for pack in self._open.values())

    def add(
        self,
        partition: int,
        event: bytes,
        delivery: BatchDeliveryLike,
        traced: TracedEvent | None = None,
    ) -> int:
        """Put one event in its partition's pack; 1 when ``delivery`` joined a pack it was not
        yet part of (the caller counts those parts), else 0."""
        field = event_field(event)
        pack = self._open.get(partition)
        if pack is not None and pack.nbytes + len(field) > self._max_bytes:
            # Close before the bound rather than after: only an event larger than the bound
            # by itself makes a pack exceed it.
            self._close(partition, pack)
            pack = None
        if pack is None:
            pack = self._open[partition] = _OpenPack()
            if self._linger_s > 0:
                pack.timer = delivery.loop.call_later(self._linger_s, self._expire, partition, pack)
        report = pack.report
        joined = 0
        if delivery not in report.deliveries:
            report.deliveries[delivery] = None
            joined = 1
        if traced is not None:
            pack.parts.append(trace_field(pack.events, traced.headers))
            report.traced.append(traced)
        pack.parts.append(field)
        pack.events += 1
        pack.nbytes += len(field)
        if pack.events >= self._max_events:
            self._close(partition, pack)
        return joined

    def flush(self) -> None:
        """Produce every open pack now (the end of a call without linger, or shutdown)."""
        for partition, pack in list(self._open.items()):
            self._close(partition, pack)

    def _expire(self, partition: int, pack: _OpenPack) -> None:
        if self._open.get(partition) is pack:
            self._close(partition, pack)

    def _close(self, partition: int, pack: _OpenPack) -> None:
        del self._open[partition]
        if pack.timer is not None:
            pack.timer.cancel()
        self._produce(partition, b"".join(pack.parts), pack.report)
