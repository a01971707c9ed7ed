"""Records as handlers see them, and the output side a handler writes to."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

import confluent_kafka
from google.protobuf.message import DecodeError, Message

from fleetpipe.core.kafka import Headers, ProducerClient
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.placement import Place, Placement
from fleetpipe.core.tracing import Attributes, Span, Tracing
from fleetpipe.pb.v1 import deadletter_pb2

V = TypeVar("V")

# Header names carried by every dead letter, readable without decoding the value.
DL_REASON = "fp-reason"
DL_SOURCE_TOPIC = "fp-source-topic"
DL_SOURCE_PARTITION = "fp-source-partition"
DL_SOURCE_OFFSET = "fp-source-offset"
DL_SERVICE = "fp-service"
# A record whose value is a pack of events, not one event (see fleetpipe.core.packs).
PACK_HEADER = "fp-pack"
# The failed record's headers that say how its payload is framed: a dead letter carries them
# under this prefix (not as themselves: the dead letter is not a pack), and a replay puts them
# back, so a pack goes back as a pack.
FORMAT_HEADERS = (PACK_HEADER,)
DL_SOURCE_HEADER = "fp-source-header."


def source_format_headers(headers: Headers | Mapping[str, Any] | None) -> Headers:
    """The format headers of a failed record, as its dead letter carries them."""
    if isinstance(headers, Mapping):
        headers = list(headers.items())
    return [
        (DL_SOURCE_HEADER + name, value) for name, value in headers or [] if name in FORMAT_HEADERS
    ]


def replayed_format_headers(dead_letter_headers: Headers) -> Headers:
    """The failed record's format headers, back under their own names."""
    return [
        (name.removeprefix(DL_SOURCE_HEADER), value)
        for name, value in dead_letter_headers
        if name.startswith(DL_SOURCE_HEADER)
        and name.removeprefix(DL_SOURCE_HEADER) in FORMAT_HEADERS
    ]


class Record(Generic[V]):
    """One consumed record with its decoded value. Coordinates are read lazily from the message."""

    __slots__ = ("msg", "value")

    def __init__(self, msg: confluent_kafka.Message, value: V) -> None:
        self.msg = msg
        self.value = value

    @property
    def topic(self) -> str:
        return str(self.msg.topic())

    @property
    def partition(self) -> int:
        p = self.msg.partition()
        return -1 if p is None else p

    @property
    def offset(self) -> int:
        o = self.msg.offset()
        return -1 if o is None else o

    @property
    def key(self) -> bytes | None:
        key: bytes | None = self.msg.key()
        return key

    @property
    def payload(self) -> bytes | None:
        """The bytes this record's value was decoded from (an event's own, in a pack)."""
        value: bytes | None = self.msg.value()
        return value

    @property
    def headers(self) -> Headers:
        headers = self.msg.headers() or []
        return list(headers.items()) if isinstance(headers, dict) else list(headers)

    @property
    def timestamp_ms(self) -> int:
        return int(self.msg.timestamp()[1])


def dead_letter_record(
    *,
    reason: str,
    error: str,
    service: str,
    key: bytes | None,
    payload: bytes | None,
    source_topic: str = "",
    source_partition: int = -1,
    source_offset: int = -1,
    source_headers: Headers | Mapping[str, Any] | None = None,
) -> tuple[bytes, Headers]:
    """The value and headers of a dead letter (see protos/fleetpipe/v1/deadletter.proto);
    ``source_headers`` are the failed record's, of which the format headers are kept."""
    value = deadletter_pb2.DeadLetter(
        reason=reason,
        error=error,
        source_topic=source_topic,
        source_partition=source_partition,
        source_offset=source_offset,
        key=key or b"",
        payload=payload or b"",
        service=service,
        time_us=time.time_ns() // 1000,
    ).SerializeToString()
    headers: Headers = [
        (DL_REASON, reason.encode()),
        (DL_SOURCE_TOPIC, source_topic.encode()),
        (DL_SOURCE_PARTITION, str(source_partition).encode()),
        (DL_SOURCE_OFFSET, str(source_offset).encode()),
        (DL_SERVICE, service.encode()),
        *source_format_headers(source_headers),
    ]
    return value, headers


class OutputProducer(Protocol):
    """What an :class:`Output` needs of its producer: :class:`fleetpipe.core.kafka.Producer`."""

    @property
    def client(self) -> ProducerClient: ...

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | str | None = None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> None: ...

    def poll(self, timeout: float = 0.0) -> int: ...


class Output:
    """Where a handler sends records during one batch.

    In exactly-once mode every send joins the loop's open transaction; the loop begins it lazily
    on the first send (``before_send``), so an idle tick costs nothing.

    Tracing: ``traced`` maps the index (in the batch) of each input record that carries a
    sampled trace context to the consumer span the loop started for it; it is empty for almost
    every record. A handler passes :meth:`trace_headers` of a record on with the records it
    makes from it, so the next service's span becomes a child of this one.

    Placement: with a ``placement``, every keyed record goes to its key's partition by the
    pipeline's key groups (:mod:`fleetpipe.core.placement`); without one, librdkafka's
    partitioner places it.
    """

    def __init__(
        self,
        producer: OutputProducer,
        *,
        service: str,
        deadletter_topic: str,
        metrics: Metrics,
        before_send: Callable[[], None] | None = None,
        tracing: Tracing | None = None,
        placement: Placement | None = None,
    ) -> None:
        self._producer = producer
        self._placement = placement
        self._service = service
        self._deadletter_topic = deadletter_topic
        self._metrics = metrics
        self._before_send = before_send
        self.tracing = tracing if tracing is not None else Tracing.disabled()
        self.traced: dict[int, Span] = {}

    # -- tracing -------------------------------------------------------------------------------
    def trace_headers(self, index: int) -> Headers | None:
        """Headers carrying the span of input record ``index``; ``None`` when it is untraced."""
        span = self.traced.get(index)
        return None if span is None else span.headers

    def start_trace(
        self, name: str, attributes: Attributes | None = None, *, parent: int = -1
    ) -> Headers | None:
        """A span for something that must always be traced (an alert), ended at once: a child
        of input record ``parent``'s span when that record is traced, else a new trace. The
        headers carry it on; ``None`` when tracing is off."""
        tracing = self.tracing
        if not tracing.enabled:
            return None
        parent_span = self.traced.get(parent)
        span = (
            tracing.start_root(name, attributes=attributes)
            if parent_span is None
            else tracing.start_child(name, parent_span, attributes=attributes)
        )
        if span is None:
            return None
        span.end()
        return span.headers

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | str | None,
        headers: Headers | None = None,
    ) -> None:
        if self._before_send is not None:
            self._before_send()
        placement = self._placement
        partition = None if placement is None else placement.placer(topic)(key)
        self._producer.produce(topic, value, key, headers, partition)
        self._metrics.produced.labels(topic).inc()

    def placer(self, topic: str) -> Place:
        """``place(key)``: the partition of a keyed record sent to ``topic`` now (-1 without a
        placement: librdkafka's partitioner decides)."""
        placement = self._placement
        return _unplaced if placement is None else placement.placer(topic)

    def send_to(
        self, topic: str, partition: int, value: bytes, headers: Headers, *, events: int = 1
    ) -> None:
        """Send a keyless record to a named partition: a pack (fleetpipe.core.packs), whose
        producer chose the partition by the key groups of the events in it; the produced
        records metric counts its ``events``, as the consumers' counts do."""
        if self._before_send is not None:
            self._before_send()
        self._producer.produce(topic, value, None, headers, partition)
        self._metrics.produced.labels(topic).inc(events)

    def send_many(
        self,
        topic: str,
        items: list[tuple[bytes | str | None, bytes | None]],
        headers: Mapping[int, Headers] | None = None,
    ) -> None:
        """Send (key, value) pairs to one topic: the hot path, one call per batch.

        ``headers`` maps the positions in ``items`` of the few records that carry headers (trace
        context); the others are sent in runs between them, in order, without per-item checks.
        """
        if not items:
            return
        if self._before_send is not None:
            self._before_send()
        produce = self._producer.client.produce
        placement = self._placement
        place = None if placement is None else placement.placer(topic)
        if headers:
            start = 0
            for at in sorted(headers):
                self._run(produce, topic, items[start:at], place)
                key, value = items[at]
                partition = None if place is None else place(key)
                self._producer.produce(topic, value, key, headers[at], partition)
                start = at + 1
            self._run(produce, topic, items[start:] if start else items, place)
        else:
            self._run(produce, topic, items, place)
        self._metrics.produced.labels(topic).inc(len(items))

    def _run(
        self,
        produce: Callable[..., None],
        topic: str,
        items: list[tuple[bytes | str | None, bytes | None]],
        place: Place | None,
    ) -> None:
        if place is None:
            for key, value in items:
                try:
                    produce(topic, value, key)
                except BufferError:
                    self._producer.produce(topic, value, key)  # waits for room in the queue
            return
        for key, value in items:
            partition = place(key)
            try:
                produce(topic, value, key, partition)
            except BufferError:
                self._producer.produce(topic, value, key, None, partition)

    def dead_letter(
        self,
        record: Record[Any] | confluent_kafka.Message,
        *,
        reason: str,
        error: str,
    ) -> None:
        if isinstance(record, Record):
            # One event (of a pack too: then its own headers, without the pack's).
            msg, key, payload, headers = record.msg, record.key, record.payload, record.headers
        else:
            # A whole record as Kafka gave it (a pack that does not scan, for one).
            msg, key, payload = record, record.key(), record.value()
            raw = record.headers() or []
            headers = list(raw.items()) if isinstance(raw, dict) else list(raw)
        self.dead_letter_at(
            key=key,
            payload=payload,
            topic=msg.topic() or "",
            partition=_or_minus_one(msg.partition()),
            offset=_or_minus_one(msg.offset()),
            reason=reason,
            error=error,
            source_headers=headers,
        )

    def dead_letter_at(
        self,
        *,
        key: bytes | None,
        payload: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        reason: str,
        error: str,
        source_headers: Headers | None = None,
    ) -> None:
        """Dead-letter a record read outside the loop's batches (a state changelog), by its
        coordinates."""
        value, headers = dead_letter_record(
            reason=reason,
            error=error,
            service=self._service,
            key=key,
            payload=payload,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            source_headers=source_headers,
        )
        self.send(self._deadletter_topic, value, key, headers)
        self._metrics.deadletters.labels(reason).inc()

    def poll(self) -> None:
        """Serve delivery callbacks; long handlers call this now and then."""
        self._producer.poll(0)


def _unplaced(_key: bytes | str | None) -> int:
    return -1


def _or_minus_one(value: int | None) -> int:
    return -1 if value is None else value


def set_aside_undecodable(
    records: list[Record[bytes]], out: Output, message_type: type[Message]
) -> list[Record[bytes]]:
    """A batch decoder refused a batch of raw records: dead-letter the ones the protobuf
    runtime cannot parse as ``message_type``, one by one, and return the rest."""
    good = []
    for record in records:
        try:
            message_type.FromString(record.value)
        except (DecodeError, ValueError) as exc:
            out.dead_letter(record, reason="undecodable", error=str(exc) or type(exc).__name__)
            continue
        good.append(record)
    return good
