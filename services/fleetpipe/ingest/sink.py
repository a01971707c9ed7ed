"""The Kafka side of ingest: produce a batch's records and learn when Kafka holds all of them.

librdkafka reports each record's delivery from ``poll()``, which a dedicated thread calls; each
batch counts its own deliveries and, on the last one, resolves its asyncio future through
``loop.call_soon_threadsafe``. No call ever flushes the shared producer, so one slow batch never
holds up another's acknowledgement.

Memory is bounded twice: events reserved by batches whose deliveries are not all reported
(``max_inflight_events``, checked before producing) and librdkafka's own queue (a full queue
refuses the batch). Neither ever waits for room: the caller answers RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from fleetpipe.core.kafka import Headers, KafkaException, ProducerClient

log = logging.getLogger(__name__)

# The few records of a batch that carry trace context: position -> (headers, delivery callback).
Traced = Mapping[int, tuple[Headers, Callable[[Any, Any], None]]]


class SinkProducer(Protocol):
    """What the sink needs of its producer: :class:`fleetpipe.core.kafka.Producer`."""

    @property
    def client(self) -> ProducerClient: ...

    def open(self, *, init_timeout_s: float = 60.0) -> None: ...

    def in_flight(self) -> int: ...

    def close(self, timeout: float = 30.0) -> None: ...


class SinkFull(Exception):
    """Too many events are waiting for Kafka: the batch was not (entirely) produced."""


class SinkFailed(Exception):
    """Kafka refused or failed the batch; the client should retry later."""


class BatchDelivery:
    """Counts one batch's delivery reports; resolves ``future`` when all are in."""

    __slots__ = ("_sink", "done", "error", "expected", "fatal", "future", "loop", "reserved")

    def __init__(self, sink: KafkaSink, loop: asyncio.AbstractEventLoop, reserved: int) -> None:
        self._sink = sink
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.reserved = reserved
        self.expected = -1  # set once every record is handed to the producer
        self.done = 0  # written by the poller thread only
        self.error: str | None = None
        self.fatal = False

    def on_delivery(self, err: Any, msg: Any) -> None:
        """librdkafka's report for one record, on the poller thread."""
        if err is not None:
            if self.error is None:
                self.error = f"{msg.topic()}[{msg.partition()}]: {err.str()}"
            if err.fatal():
                self.fatal = True
        self.done += 1
        if self.done == self.expected:
            self._post()

    def seal(self, produced: int) -> None:
        """All records are handed over (on the event loop): resolve now if all are reported.

        The poller thread checks ``done == expected`` after each report and this checks it after
        setting ``expected``; whichever runs last sees both final values, so one of them posts.
        """
        self.expected = produced
        if self.done == produced:
            self._resolve()

    def abandon(self) -> None:
        """Nobody waits for the outcome any more (the call timed out or failed)."""
        self.future.cancel()

    def _post(self) -> None:
        # A closed loop means the process is shutting down: nobody waits any more.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if self.reserved:
            self._sink.release(self.reserved)
            self.reserved = 0
        if self.fatal:
            self._sink.on_fatal(self.error or "fatal producer error")
        if self.future.done():
            return
        if self.error is not None:
            self.future.set_exception(SinkFailed(self.error))
        else:
            self.future.set_result(None)


class KafkaSink:
    def __init__(
        self,
        producer: SinkProducer,
        *,
        raw_topic: str,
        deadletter_topic: str,
        max_inflight_events: int,
    ) -> None:
        self.producer = producer
        self.raw_topic = raw_topic
        self.deadletter_topic = deadletter_topic
        self.max_inflight_events = max_inflight_events
        self.inflight = 0
        self.fatal_error: str | None = None
        self.fatal = asyncio.Event()  # set on an error that needs a new producer (a restart)
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def start(self) -> None:
        """Connect the producer and start serving delivery reports."""
        self.producer.open()
        self._poller = threading.Thread(target=self._poll, name="kafka-poller", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        client = self.producer.client
        while not self._stop.is_set():
            client.poll(0.05)

    def on_fatal(self, error: str) -> None:
        if self.fatal_error is None:
            self.fatal_error = error
            log.critical("fatal producer error, ingest must restart: %s", error)
            self.fatal.set()

    def reserve(self, events: int, loop: asyncio.AbstractEventLoop) -> BatchDelivery:
        if self.fatal_error is not None:
            raise SinkFailed(f"producer failed: {self.fatal_error}")
        if self.inflight + events > self.max_inflight_events:
            raise SinkFull(
                f"{self.inflight} events are awaiting Kafka (limit {self.max_inflight_events})"
            )
        self.inflight += events
        return BatchDelivery(self, loop, events)

    def release(self, events: int) -> None:
        self.inflight -= events

    def submit(
        self,
        delivery: BatchDelivery,
        values: list[bytes],
        keys: list[str],
        deadletters: list[tuple[bytes, bytes | None, Headers]],
        traced: Traced | None = None,
    ) -> None:
        """Produce the batch's records; the delivery's future tells when Kafka holds them all."""
        produce = self.producer.client.produce
        cb = delivery.on_delivery
        topic = self.raw_topic
        produced = 0
        try:
            # Positional arguments (partition -1: the partitioner decides by key) parse
            # measurably faster than keywords, once per event.
            for i, (value, key) in enumerate(zip(values, keys, strict=True)):
                if traced and i in traced:
                    headers, traced_cb = traced[i]
                    produce(topic, value, key, headers=headers, on_delivery=traced_cb)
                else:
                    produce(topic, value, key, -1, cb)
                produced += 1
            for value, dl_key, headers in deadletters:
                produce(self.deadletter_topic, value, dl_key, headers=headers, on_delivery=cb)
                produced += 1
        except BufferError:
            self._fail_partly(delivery, produced)
            raise SinkFull("the producer's local queue is full") from None
        except KafkaException as exc:
            self._fail_partly(delivery, produced)
            raise SinkFailed(f"produce failed: {exc.args[0]}") from None
        delivery.seal(produced)

    def submit_slices(
        self,
        delivery: BatchDelivery,
        raw: bytes,
        spans: list[tuple[int, int]],
        suffix: bytes,
        keys: list[str],
        traced: Traced | None = None,
    ) -> None:
        """Like :meth:`submit` for a batch whose events all pass: each value is
        ``raw[start:end] + suffix``, cut while producing (one loop over the events, not two).

        The ``traced`` events (a few per thousand) are produced with their headers between
        runs of the others, so the loop over the untraced ones stays the same."""
        produce = self.producer.client.produce
        cb = delivery.on_delivery
        topic = self.raw_topic
        produced = 0
        try:
            if traced:
                first = 0
                for at in sorted(traced):
                    for (start, end), key in zip(spans[first:at], keys[first:at], strict=True):
                        produce(topic, raw[start:end] + suffix, key, -1, cb)
                        produced += 1
                    headers, traced_cb = traced[at]
                    start, end = spans[at]
                    value = raw[start:end] + suffix
                    produce(topic, value, keys[at], headers=headers, on_delivery=traced_cb)
                    produced += 1
                    first = at + 1
                spans, keys = spans[first:], keys[first:]
            for (start, end), key in zip(spans, keys, strict=True):
                produce(topic, raw[start:end] + suffix, key, -1, cb)
                produced += 1
        except BufferError:
            self._fail_partly(delivery, produced)
            raise SinkFull("the producer's local queue is full") from None
        except KafkaException as exc:
            self._fail_partly(delivery, produced)
            raise SinkFailed(f"produce failed: {exc.args[0]}") from None
        delivery.seal(produced)

    def _fail_partly(self, delivery: BatchDelivery, produced: int) -> None:
        # The records already handed over still report; their reservation is released then.
        unused = delivery.reserved - produced
        self.release(unused)
        delivery.reserved = produced
        delivery.abandon()
        delivery.seal(produced)

    def close(self, timeout: float) -> int:
        """Stop the poller and wait for outstanding deliveries; returns those left undelivered."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        self.producer.client.flush(timeout)
        remaining = self.producer.in_flight()
        self.producer.close(0)
        return remaining
