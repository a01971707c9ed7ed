"""Packs: many events of one partition in one Kafka record, written and read without copies.

Why: the cost of the pipeline follows the number of Kafka records and requests, not bytes
(DESIGN §3a), so the high-volume topics carry a pack of a few hundred events per record.

The wire form is ``TelemetryPack`` / ``EnrichedPack`` (protos/fleetpipe/v1/pack.proto): field 1
repeats the events, field 2 the trace context of the few sampled ones. Each event is written as
its own serialised bytes behind a tag and a length, and read back as a slice of the record's
value, so packing costs one concatenation per event and unpacking one scan, never a parse and
re-serialisation of the pack as a whole.

How a consumer tells the forms apart: a pack record carries the header ``fp-pack: 1`` (the
version of the pack layout) and no key; a record without it is one event, keyed by vehicle id,
as topics held before packs. Consumers read both, so a topic may hold old single records
before an upgrade, and a producer may be told to keep writing single records
(``FLEET_KAFKA__PACK_EVENTS=1``) to measure the per-event baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import confluent_kafka
from google.protobuf.message import DecodeError, Message

from fleetpipe.core import records
from fleetpipe.core.codecs import ProtoCodec
from fleetpipe.core.errors import CodecError
from fleetpipe.core.kafka import Headers
from fleetpipe.core.protowire import delimited, read_varint, skip_field, tag, varint
from fleetpipe.core.records import Output, Record
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.tracing import TRACEPARENT, TRACESTATE
from fleetpipe.pb.v1 import enriched_pb2, pack_pb2

V = TypeVar("V")

# Defined beside the dead letters, which carry it for a replay (core.records).
PACK_HEADER = records.PACK_HEADER
PACK_VERSION = b"1"
PACK_HEADERS: Headers = [(PACK_HEADER, PACK_VERSION)]

_EVENTS = tag(pack_pb2.TelemetryPack, "events")
_TRACES = tag(pack_pb2.TelemetryPack, "traces")
_EVENTS_KEY = _EVENTS[0]
_TRACES_KEY = _TRACES[0]
_TRACE_INDEX = tag(pack_pb2.PackedTrace, "index")
_TRACE_PARENT = tag(pack_pb2.PackedTrace, "traceparent")
_TRACE_STATE = tag(pack_pb2.PackedTrace, "tracestate")
# Both pack messages must share the layout the scanner reads.
assert tag(pack_pb2.EnrichedPack, "events") == _EVENTS
assert tag(pack_pb2.EnrichedPack, "traces") == _TRACES


@dataclass(frozen=True, slots=True)
class PackLimits:
    """When a producer closes a pack: at ``events`` events, before ``max_bytes`` bytes, or
    ``linger_s`` after its first event, whichever comes first. ``events == 1`` means no packs:
    one record per event, keyed by vehicle id, as before packs."""

    events: int
    max_bytes: int
    linger_s: float

    @classmethod
    def from_settings(cls, kafka: KafkaSettings) -> PackLimits:
        return cls(kafka.pack_events, kafka.pack_bytes, kafka.pack_linger_ms / 1000)

    @classmethod
    def single(cls) -> PackLimits:
        """No packs: one record per event."""
        return cls(1, 1 << 30, 0.0)

    @property
    def packing(self) -> bool:
        return self.events > 1


def event_field(event: bytes) -> bytes:
    """One event as it sits in a pack: the ``events`` tag, its length, its bytes."""
    return _EVENTS + varint(len(event)) + event


def trace_field(index: int, headers: Headers) -> bytes:
    """A ``PackedTrace`` entry for event ``index`` from its ``traceparent`` headers."""
    body = _TRACE_INDEX + varint(index)
    for name, value in headers:
        if value is None:
            continue
        data = value if isinstance(value, bytes) else value.encode()
        if name == TRACEPARENT:
            body += delimited(_TRACE_PARENT, data)
        elif name == TRACESTATE:
            body += delimited(_TRACE_STATE, data)
    return delimited(_TRACES, body)


def vehicle_of(event: Message) -> str:
    """The vehicle id of an event of a pack (``Telemetry`` or ``EnrichedTelemetry``)."""
    if isinstance(event, enriched_pb2.EnrichedTelemetry):
        return event.telemetry.vehicle_id
    return str(getattr(event, "vehicle_id", ""))


def is_pack(headers: Sequence[tuple[str, Any]] | Mapping[str, Any] | None) -> bool:
    """Whether a record's headers mark it as a pack."""
    if not headers:
        return False
    if isinstance(headers, Mapping):
        return PACK_HEADER in headers
    return any(name == PACK_HEADER for name, _ in headers)


class PackScan:
    """Where each event of a pack value sits, and the sampled events' trace headers."""

    __slots__ = ("spans", "traces")

    def __init__(self, spans: list[tuple[int, int]], traces: dict[int, Headers]) -> None:
        self.spans = spans
        self.traces = traces


def scan(value: bytes) -> PackScan:
    """Split a pack value into event spans; ValueError when it is not a pack."""
    spans: list[tuple[int, int]] = []
    traces: dict[int, Headers] = {}
    append = spans.append
    pos, end = 0, len(value)
    try:
        while pos < end:
            key = value[pos]
            pos += 1
            if key == _EVENTS_KEY:
                n, pos = read_varint(value, pos)
                if pos + n > end:
                    raise ValueError("an event runs past the end of the pack")
                append((pos, pos + n))
                pos += n
            elif key == _TRACES_KEY:
                n, pos = read_varint(value, pos)
                if pos + n > end:
                    raise ValueError("a trace entry runs past the end of the pack")
                index, headers = _trace(value[pos : pos + n])
                traces[index] = headers
                pos += n
            else:
                # A field of a newer layout: skip it by its wire type.
                if key & 0x80:
                    pos = read_varint(value, pos - 1)[1]
                pos = skip_field(value, pos, key & 0x07)
    except IndexError:
        raise ValueError("the pack is truncated") from None
    if pos != end:
        raise ValueError("the pack is truncated")
    return PackScan(spans, traces)


def _trace(data: bytes) -> tuple[int, Headers]:
    message = pack_pb2.PackedTrace.FromString(data)
    headers: Headers = []
    if message.traceparent:
        headers.append((TRACEPARENT, message.traceparent.encode()))
    if message.tracestate:
        headers.append((TRACESTATE, message.tracestate.encode()))
    return message.index, headers


class PackedRecord(Record[V]):
    """One event of a pack: the pack's coordinates, the event's own bytes and position."""

    __slots__ = ("index", "message_type", "payload_bytes", "trace")

    def __init__(
        self,
        msg: confluent_kafka.Message,
        value: V,
        payload: bytes,
        index: int,
        trace: Headers | None,
        message_type: type[Message],
    ) -> None:
        super().__init__(msg, value)
        self.payload_bytes = payload
        self.index = index
        self.trace = trace
        self.message_type = message_type

    @property
    def payload(self) -> bytes | None:
        return self.payload_bytes

    @property
    def key(self) -> bytes | None:
        """The vehicle id, as a single record's key would be (a pack has none): read from the
        event when asked, which only dead letters do."""
        try:
            vehicle = vehicle_of(self.message_type.FromString(self.payload_bytes))
        except (DecodeError, ValueError):
            return None  # an event being dead-lettered because it does not parse
        return vehicle.encode() if vehicle else None

    @property
    def headers(self) -> Headers:
        return list(self.trace or [])


class PackCodec(ProtoCodec[Any], Generic[V]):
    """Reads a topic that carries packs of ``element``'s messages, and single records too.

    :meth:`unpack` gives one :class:`PackedRecord` per event of a pack record; a record
    without the pack header is decoded by ``element`` as one event. Offsets, commits and dead
    letters stay those of the Kafka record: a pack that does not scan is refused whole
    (:class:`CodecError` with its coordinates); an event in it that does not decode is named
    in ``failed`` with its position, and the others go on.
    """

    def __init__(self, element: ProtoCodec[Any]) -> None:
        super().__init__(element.message_type)
        self.element = element

    def decode(
        self,
        data: bytes | None,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> Any:
        return self.element.decode(data, topic=topic, partition=partition, offset=offset)

    def unpack(
        self, msg: confluent_kafka.Message
    ) -> tuple[list[PackedRecord[Any]], list[tuple[int, bytes, CodecError]]]:
        """The events of a pack record, and (position, bytes, error) of those that failed."""
        data: bytes | None = msg.value()
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        if data is None:
            raise self._tombstone(topic, partition, offset)
        try:
            found = scan(data)
        except ValueError as exc:
            raise CodecError(
                f"not a pack: {exc}",
                type_name=f"pack of {self.type_name}",
                topic=topic,
                partition=partition,
                offset=offset,
            ) from exc
        decode = self.element.decode
        traces = found.traces
        records: list[PackedRecord[Any]] = []
        failed: list[tuple[int, bytes, CodecError]] = []
        for index, (start, end) in enumerate(found.spans):
            payload = data[start:end]
            try:
                value = decode(payload, topic=topic, partition=partition, offset=offset)
            except CodecError as exc:
                failed.append((index, payload, exc))
                continue
            records.append(
                PackedRecord(
                    msg,
                    value,
                    payload,
                    index,
                    traces.get(index) if traces else None,
                    self.message_type,
                )
            )
        return records, failed


def unpack_into(
    codec: PackCodec[Any],
    msg: confluent_kafka.Message,
    records: list[Record[Any]],
    out: Output,
    candidates: list[tuple[int, Any]] | None,
) -> int:
    """The consume loop's decode step for one pack record: its events go to ``records`` (with
    (position in records, trace headers) in ``candidates`` for the sampled ones, when tracing),
    and an event that does not decode is dead-lettered by itself with the pack's coordinates.
    Returns how many events the pack held.

    A pack that does not scan raises :class:`CodecError`: the loop dead-letters it whole."""
    events, failed = codec.unpack(msg)
    if candidates is not None:
        base = len(records)
        candidates.extend(
            (base + i, record.trace) for i, record in enumerate(events) if record.trace
        )
    records.extend(events)
    for index, payload, exc in failed:
        out.dead_letter_at(
            key=None,
            payload=payload,
            topic=msg.topic() or "",
            partition=_or_minus_one(msg.partition()),
            offset=_or_minus_one(msg.offset()),
            reason="undecodable",
            error=f"event {index} of the pack: {exc}",
        )
    return len(events) + len(failed)


def _or_minus_one(value: int | None) -> int:
    return -1 if value is None else value


def send_packed(
    out: Output,
    topic: str,
    items: list[tuple[bytes | str | None, bytes | None]],
    limits: PackLimits,
    headers: Mapping[int, Headers] | None = None,
) -> None:
    """Send (vehicle id, event) pairs as packs: the events of each partition (by the key
    groups of their vehicle ids) in order, a pack closed at ``limits``' event or byte bound.

    A stage's packs close with its batch: the batch is what one transaction commits, so no
    pack outlives it and ``linger_s`` does not apply. ``headers`` maps positions in ``items``
    of the sampled events to their trace headers, which travel in the pack."""
    if not items:
        return
    place = out.placer(topic)
    open_packs: dict[int, _Building] = {}
    for i, (key, value) in enumerate(items):
        assert value is not None, "an event of a pack has a value"
        partition = place(key)
        pack = open_packs.get(partition)
        field = event_field(value)
        if pack is not None and pack.nbytes + len(field) > limits.max_bytes:
            out.send_to(topic, partition, b"".join(pack.parts), PACK_HEADERS, events=pack.events)
            pack = None
        if pack is None:
            pack = open_packs[partition] = _Building()
        if headers and i in headers:
            pack.parts.append(trace_field(pack.events, headers[i]))
        pack.parts.append(field)
        pack.events += 1
        pack.nbytes += len(field)
        if pack.events >= limits.events:
            out.send_to(topic, partition, b"".join(pack.parts), PACK_HEADERS, events=pack.events)
            del open_packs[partition]
    for partition, pack in open_packs.items():
        out.send_to(topic, partition, b"".join(pack.parts), PACK_HEADERS, events=pack.events)


class _Building:
    __slots__ = ("events", "nbytes", "parts")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.events = 0
        self.nbytes = 0


class Event:
    """One event read from a topic, whatever form its record has, with the accessors of a
    consumed record (``value()``, ``key()``, ``partition()`` ...): for tools and tests that
    look at a topic event by event (``fleetpipe tail``), not for the consume loop.

    ``key()`` is the record's key for a single record, and ``None`` in a pack (which has
    none); ``headers()`` are the record's, or in a pack the event's trace context."""

    __slots__ = ("_headers", "_payload", "index", "msg", "packed")

    def __init__(
        self,
        msg: confluent_kafka.Message,
        *,
        payload: bytes | None,
        index: int = 0,
        packed: bool = False,
        headers: Headers | None = None,
    ) -> None:
        self.msg = msg
        self._payload = payload
        self.index = index
        self.packed = packed
        self._headers = headers

    def value(self) -> bytes | None:
        return self._payload

    def key(self) -> bytes | None:
        if self.packed:
            return None
        key: bytes | None = self.msg.key()
        return key

    def headers(self) -> Headers | Mapping[str, Any] | None:
        if self.packed:
            return self._headers
        headers: Headers | Mapping[str, Any] | None = self.msg.headers()
        return headers

    def topic(self) -> str | None:
        topic: str | None = self.msg.topic()
        return topic

    def partition(self) -> int | None:
        partition: int | None = self.msg.partition()
        return partition

    def offset(self) -> int | None:
        offset: int | None = self.msg.offset()
        return offset

    def timestamp(self) -> tuple[int, int]:
        stamp: tuple[int, int] = self.msg.timestamp()
        return stamp

    def error(self) -> None:
        return None


def events_of(msg: confluent_kafka.Message) -> list[Event]:
    """The events of a consumed record: each event of a pack, or the record itself.

    A pack that does not scan raises :class:`CodecError` with its coordinates."""
    value: bytes | None = msg.value()
    if value is None or not is_pack(msg.headers()):
        return [Event(msg, payload=value)]
    try:
        found = scan(value)
    except ValueError as exc:
        raise CodecError(
            f"not a pack: {exc}",
            type_name="pack",
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
        ) from exc
    traces = found.traces
    return [
        Event(msg, payload=value[a:b], index=i, packed=True, headers=traces.get(i))
        for i, (a, b) in enumerate(found.spans)
    ]
