"""The Kafka side of ingest: produce a batch's events and learn when Kafka holds all of them.

Events go into packs (:mod:`fleetpipe.ingest.packer`), one Kafka record per partition for many
calls' events, or — with ``FLEET_KAFKA__PACK_EVENTS=1`` — one record per event keyed by vehicle
id. Either way the partition is the vehicle's by the pipeline's key groups
(:mod:`fleetpipe.core.keygroups`), so the sink knows the raw topic's partition count: it reads
it at start and again every ``refresh_s`` on the poller thread, as librdkafka refreshes its
metadata.

librdkafka reports each record's delivery from ``poll()``, which a dedicated thread calls; each
batch counts its own deliveries (one per pack it joined, or per record) and, on the last one,
resolves its asyncio future through ``loop.call_soon_threadsafe``. No call ever flushes the
shared producer, so one slow batch never holds up another's acknowledgement.

Memory is bounded twice: events reserved by batches whose deliveries are not all reported
(``max_inflight_events``, checked before producing) and librdkafka's own queue (a full queue
refuses the batch). Neither ever waits for room: the caller answers RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

from fleetpipe.core.deliveries import record_place
from fleetpipe.core.errors import ConfigError, KafkaError
from fleetpipe.core.kafka import Headers, KafkaException, ProducerClient, build_producer
from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.core.packs import PACK_HEADERS, PackLimits
from fleetpipe.core.rights import library_error, refusal_of
from fleetpipe.core.tracing import Span
from fleetpipe.ingest.packer import Packer, PackReport
from fleetpipe.ingest.settings import IntakeSettings

log = logging.getLogger(__name__)


class SinkProducer(Protocol):
    """What the sink needs of its producer: :class:`fleetpipe.core.kafka.Producer`."""

    @property
    def client(self) -> ProducerClient: ...

    def open(self, *, init_timeout_s: float = 60.0) -> None: ...

    def in_flight(self) -> int: ...

    def partitions(self, topic: str, *, timeout: float = 10.0) -> int: ...

    @property
    def principal(self) -> str: ...

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
                self.error = f"{record_place(msg, produced=self._sink.topics)}: {err.str()}"
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


class TracedDelivery:
    """A sampled event: its trace headers, and the span that ends when Kafka reports it.

    Called as a record's delivery report (one record per event), it ends the span and counts
    for the batch; in a pack, the pack's report calls :meth:`end` and counts the batch itself.
    """

    __slots__ = ("delivery", "headers", "span")

    def __init__(self, span: Span, delivery: BatchDelivery) -> None:
        self.span = span
        self.headers: Headers = span.headers
        self.delivery = delivery

    def end(self, err: Any, msg: Any) -> None:
        span = self.span
        partition, offset = msg.partition(), msg.offset()
        if partition is not None and partition >= 0:
            span.set("messaging.destination.partition.id", str(partition))
        if offset is not None and offset >= 0:
            span.set("messaging.kafka.offset", offset)
        if err is not None:
            span.fail(err.str())
        span.end()

    def __call__(self, err: Any, msg: Any) -> None:
        self.end(err, msg)
        self.delivery.on_delivery(err, msg)


# The few events of a batch that carry trace context, by position among the batch's values.
Traced = Mapping[int, TracedDelivery]


class KafkaSink:
    def __init__(
        self,
        producer: SinkProducer,
        *,
        raw_topic: str,
        deadletter_topic: str,
        max_inflight_events: int,
        packing: PackLimits | None = None,
        groups: KeyGroups | None = None,
        refresh_s: float = 30.0,
    ) -> None:
        self.producer = producer
        self.raw_topic = raw_topic
        self.deadletter_topic = deadletter_topic
        self.topics = frozenset({raw_topic, deadletter_topic})
        self.max_inflight_events = max_inflight_events
        self.inflight = 0
        self.fatal_error: str | None = None
        self.fatal = asyncio.Event()  # set on an error that needs a new producer (a restart)
        self.groups = groups if groups is not None else KeyGroups()
        # The raw topic's partition count; None until read (batches are refused meanwhile).
        self.partitions: int | None = None
        self._unplaceable: str | None = None
        self._refresh_s = refresh_s
        # None: one record per event (packs off).
        self.packer = Packer(self._produce_pack, packing) if packing and packing.packing else None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the caller's, set by start()

    def start(self) -> None:
        """Connect the producer, read the raw topic's partitions, serve delivery reports
        (called on the service's event loop)."""
        self.producer.open()
        self._read_partitions()
        self._loop = asyncio.get_running_loop()
        self._poller = threading.Thread(target=self._poll, name="kafka-poller", daemon=True)
        self._poller.start()

    def _read_partitions(self) -> bool:
        try:
            count = self.producer.partitions(self.raw_topic, timeout=5.0)
        except (KafkaError, KafkaException) as exc:
            log.warning("%s", exc)
            return False
        return self.use_partitions(count)

    def use_partitions(self, count: int | None) -> bool:
        """Place events by ``count`` partitions of the raw topic from now on (None: unknown,
        keep what is known). The sink reads the count itself at start and every
        ``refresh_s``; ingest's topic check hands over what it finds too, so that ingest is
        never ready before it can place a batch."""
        if count is None:
            return self.partitions is not None
        try:
            self.groups.check(count)
        except ConfigError as exc:
            # Batches are refused with this reason until the topic or the setting is fixed.
            self._unplaceable = f"{self.raw_topic}: {exc}"
            log.error("%s", self._unplaceable)
            self.partitions = None
            return False
        self._unplaceable = None
        if count != self.partitions:
            log.info(
                "%s has %d partitions (%d key groups)", self.raw_topic, count, self.groups.count
            )
            self.partitions = count
        return True

    @property
    def unplaceable(self) -> str | None:
        """Why no batch can be placed now (the raw topic has more partitions than the key
        groups), or None."""
        return self._unplaceable

    def _poll(self) -> None:
        client = self.producer.client
        next_read = time.monotonic() + self._refresh_s
        while not self._stop.is_set():
            try:
                client.poll(0.05)
            except (KafkaException, SystemError) as exc:
                # The library raises a fatal error (a producer id refused to the principal,
                # with or without a record waiting) from poll: the producer is done for, and
                # ingest must say why and stop rather than lose this thread silently.
                self._poller_failed(exc)
                return
            if time.monotonic() >= next_read:
                # Unknown (the topic is missing): look again soon rather than at the interval.
                ok = self._read_partitions() and self.partitions is not None
                next_read = time.monotonic() + (self._refresh_s if ok else 1.0)

    def _poller_failed(self, exc: Exception) -> None:
        refused = refusal_of(exc, self.producer.principal)
        cause = library_error(exc) or exc
        why = str(refused) if refused is not None else f"the producer failed: {cause}"
        if self._loop is None:
            self.on_fatal(why)
            return
        # The event the service waits on belongs to its loop.
        with contextlib.suppress(RuntimeError):  # the loop closed: shutting down anyway
            self._loop.call_soon_threadsafe(self.on_fatal, why)

    def _partition_count(self) -> int:
        count = self.partitions
        if count is None:
            raise SinkFailed(
                self._unplaceable or f"the partitions of {self.raw_topic} are not known yet"
            )
        return count

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
        """Produce the batch's events and dead letters; the delivery's future tells when Kafka
        holds them all."""
        try:
            count = self._partition_count() if values else 0
        except SinkFailed:
            self._fail_partly(delivery, 0, 0)
            raise
        produce = self.producer.client.produce
        cb = delivery.on_delivery
        produced = 0  # reports to wait for: packs joined, or records
        held = 0  # events (and dead letters) handed over, whose reservation those reports free
        try:
            if self.packer is not None:
                produced = self._pack(delivery, values, keys, traced, count)
                held = len(values)
            else:
                topic = self.raw_topic
                group, groups = self.groups.group, self.groups.count
                # Positional arguments parse measurably faster than keywords, once per event.
                for i, (value, key) in enumerate(zip(values, keys, strict=True)):
                    partition = group(key) * count // groups
                    if traced and i in traced:
                        t = traced[i]
                        produce(topic, value, key, partition, t, headers=t.headers)
                    else:
                        produce(topic, value, key, partition, cb)
                    produced += 1
                    held += 1
            for value, dl_key, headers in deadletters:
                produce(self.deadletter_topic, value, dl_key, headers=headers, on_delivery=cb)
                produced += 1
                held += 1
        except BufferError:
            self._fail_partly(delivery, produced, held)
            raise SinkFull("the producer's local queue is full") from None
        except KafkaException as exc:
            self._fail_partly(delivery, produced, held)
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
        ``raw[start:end] + suffix``, cut while producing."""
        values = [raw[start:end] + suffix for start, end in spans]
        self.submit(delivery, values, keys, [], traced)

    def _pack(
        self,
        delivery: BatchDelivery,
        values: list[bytes],
        keys: list[str],
        traced: Traced | None,
        count: int,
    ) -> int:
        """Put each event in its partition's pack; the packs the batch joined, to count."""
        packer = self.packer
        assert packer is not None
        group, groups = self.groups.group, self.groups.count
        add = packer.add
        joined = 0
        for i, (value, key) in enumerate(zip(values, keys, strict=True)):
            joined += add(
                group(key) * count // groups,
                value,
                delivery,
                traced.get(i) if traced else None,
            )
        if not packer.lingers:
            packer.flush()
        return joined

    def _produce_pack(self, partition: int, value: bytes, report: PackReport) -> None:
        """Hand a closed pack to Kafka (on the event loop's thread).

        The in-flight bound (``max_inflight_events``) is far below librdkafka's queue, so a
        full queue or a refused record here means the producer is broken; the pack holds other
        calls' events too, whose calls are still waiting: ingest restarts (and they time out
        and retry) rather than acknowledge a part of them."""
        try:
            self.producer.client.produce(
                self.raw_topic, value, None, partition, report, headers=PACK_HEADERS
            )
        except (BufferError, KafkaException) as exc:
            self.on_fatal(f"the producer refused a pack for {self.raw_topic}[{partition}]: {exc}")

    def _fail_partly(self, delivery: BatchDelivery, produced: int, held: int) -> None:
        # What was handed over still reports; its reservation is released then.
        unused = delivery.reserved - held
        self.release(unused)
        delivery.reserved = held
        delivery.abandon()
        delivery.seal(produced)

    def flush_packs(self) -> None:
        """Produce the open packs now (on the event loop's thread, before :meth:`close`)."""
        if self.packer is not None:
            self.packer.flush()

    async def finish(self, timeout: float) -> int:
        """Produce the open packs (on the event loop's thread), then :meth:`close` off it;
        the records left undelivered are logged and counted."""
        self.flush_packs()
        left = await asyncio.to_thread(self.close, timeout)
        if left:
            log.error("%d records were still undelivered at shutdown", left)
        return left

    def close(self, timeout: float) -> int:
        """Stop the poller and wait for outstanding deliveries; returns those left undelivered.

        Open packs are produced first: call :meth:`flush_packs` on the event loop before, when
        one runs (its linger timers would otherwise race with this)."""
        self.flush_packs()
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        self.producer.client.flush(timeout)
        remaining = self.producer.in_flight()
        self.producer.close(0)
        return remaining


def build_sink(settings: IntakeSettings, *, client_id: str) -> KafkaSink:
    """The sink of an ingest process (gRPC and HTTP, or the MQTT bridge), from its settings."""
    kafka = settings.kafka
    producer = build_producer(
        kafka,
        client_id=client_id,
        overrides={"delivery.timeout.ms": settings.delivery_timeout_ms},
        report_every_delivery=True,
    )
    return KafkaSink(
        producer,
        raw_topic=settings.topics.raw,
        deadletter_topic=settings.topics.deadletter,
        max_inflight_events=settings.max_inflight_events,
        packing=PackLimits.from_settings(kafka),
        groups=KeyGroups(kafka.key_groups),
        refresh_s=kafka.metadata_max_age_ms / 1000,
    )
