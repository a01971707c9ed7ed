"""Taking a batch of telemetry in, whatever protocol brought it: gRPC, MQTT or HTTP.

Per batch: refuse it as a whole when ingest cannot take it now (a missing topic, too much
awaiting Kafka), when it does not parse, or when it holds an event of another fleet than the
caller's; else validate each event (``validation.py``), stamp ``ingest_time_us``, produce the
accepted ones to the raw topic (in packs of many calls' events per partition, or one record per
event keyed by vehicle id: see ``sink.py``) and the rejected ones to the dead-letter topic, and
tell the caller once Kafka has confirmed every event of the batch. The answer is a
``PublishAck`` (accepted, late, and each rejection with its index, field and reason), which each
protocol carries in its own way; a refusal is a :class:`Refused` with a :class:`Refusal` kind
that each protocol maps to its own status (gRPC code, HTTP status, MQTT dead letter).

Tracing starts here: the head sampler picks a few events in a thousand (the ``OTEL_TRACES_*``
ratio); each picked event gets a root span (a producer span, ended when Kafka confirms the
record, with its partition and offset) and its record carries the span's ``traceparent``
header — or, in a pack, the pack carries it beside the event (``PackedTrace``). The other
events get no span, no header and no per-event check.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from google.protobuf.message import DecodeError
from prometheus_client import Counter, Gauge, Histogram

from fleetpipe.core.kafka import Headers
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.records import dead_letter_record
from fleetpipe.core.tracing import PRODUCER, Tracing, messaging_attributes
from fleetpipe.ingest.settings import IntakeSettings
from fleetpipe.ingest.sink import (
    BatchDelivery,
    KafkaSink,
    SinkFailed,
    SinkFull,
    Traced,
    TracedDelivery,
)
from fleetpipe.ingest.tenancy import Tenancy
from fleetpipe.ingest.validation import (
    VehicleIdCheck,
    Verdict,
    batch_ranges,
    validate_batch,
    without_dropped,
)
from fleetpipe.ingest.wire import LATE_FIELD, event_spans, fleet_field, ingest_time_field
from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2

_ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class Refusal(StrEnum):
    """Why a whole batch is refused; each protocol says it in its own terms."""

    UNAUTHENTICATED = "unauthenticated"  # no token, or an unknown one
    FORBIDDEN = "forbidden"  # an event of another fleet than the caller's
    INVALID = "invalid"  # the batch does not parse, or is too large
    BUSY = "busy"  # too much awaits Kafka: retry later
    UNAVAILABLE = "unavailable"  # Kafka failed or did not answer, or a topic is missing


class Refused(Exception):
    """The batch is refused as a whole; nothing of it was acknowledged."""

    def __init__(self, kind: Refusal, details: str) -> None:
        super().__init__(details)
        self.kind = kind
        self.details = details


@contextlib.contextmanager
def _sink_errors() -> Iterator[None]:
    """Kafka-side refusals: full → BUSY, failed → UNAVAILABLE."""
    try:
        yield
    except SinkFull as exc:
        raise Refused(Refusal.BUSY, f"{exc}; retry later") from None
    except SinkFailed as exc:
        raise Refused(Refusal.UNAVAILABLE, str(exc)) from None


@dataclass
class Pending:
    """A batch handed to Kafka: its ack, answered once ``delivery`` completes."""

    ack: ingest_pb2.PublishAck
    delivery: BatchDelivery
    received: float


class IngestMetrics:
    """Ingest's own metrics, on the service's registry next to the shared ones."""

    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.shared = metrics
        self.events = Counter(
            "fleetpipe_ingest_events", "Events received, by outcome", ["outcome"], registry=r
        )
        self.calls = Counter(
            "fleetpipe_ingest_batches", "Batches answered, by outcome", ["code"], registry=r
        )
        self.ack_seconds = Histogram(
            "fleetpipe_ingest_ack_seconds",
            "From receiving a batch to acknowledging it",
            buckets=_ACK_BUCKETS,
            registry=r,
        )
        self.confirmed = Counter(
            "fleetpipe_ingest_confirmed_events",
            "Accepted events Kafka has confirmed (whatever the records they travel in)",
            registry=r,
        )
        self.inflight = Gauge(
            "fleetpipe_ingest_inflight_events", "Events awaiting Kafka's confirmation", registry=r
        )
        self.accepted = self.events.labels("accepted")
        self.rejected = self.events.labels("rejected")
        self.late = self.events.labels("late")
        self.ok = self.calls.labels("OK")


class Intake:
    """Validates and produces batches for every protocol of ingest, with one Kafka sink."""

    def __init__(
        self,
        settings: IntakeSettings,
        sink: KafkaSink,
        metrics: IngestMetrics,
        *,
        service: str = "ingest",
        clock_us: Callable[[], int] = lambda: time.time_ns() // 1000,
        tracing: Tracing | None = None,
        tenancy: Tenancy | None = None,
    ) -> None:
        self.tracing = tracing if tracing is not None else Tracing.disabled()
        self.settings = settings
        self.sink = sink
        self.metrics = metrics
        self.service = service
        self.clock_us = clock_us
        self.ids = VehicleIdCheck()
        # Whose each vehicle is, by the registry: the same refusal whichever way events came.
        self.tenancy = tenancy if tenancy is not None else Tenancy(None)
        self.ranges = batch_ranges()
        # Why batches cannot be taken now (a missing topic), said to the caller; None: they can.
        self.unavailable: str | None = None
        self._max_future_us = round(settings.max_future_s * 1e6)
        self._late_after_us = round(settings.late_after_s * 1e6)
        self._max_lateness_us = round(settings.max_lateness_s * 1e6)

    def dead_letter(self, payload: bytes, *, key: bytes | None, reason: str, error: str) -> Pending:
        """Produce one dead letter for a payload that never became a batch (it did not parse,
        or came from a topic it may not use); the pending completes when Kafka holds it."""
        with _sink_errors():
            delivery = self.sink.reserve(1, asyncio.get_running_loop())
        value, headers = dead_letter_record(
            reason=reason, error=error, service=self.service, key=key, payload=payload
        )
        with _sink_errors():
            self.sink.submit(delivery, [], [], [(value, key, headers)])
        self.metrics.shared.deadletters.labels(reason).inc()
        return Pending(ingest_pb2.PublishAck(), delivery, time.monotonic())

    def accept(self, raw: bytes, fleet: str) -> Pending:
        """Validate and produce one batch; the returned delivery completes when Kafka has it."""
        received = time.monotonic()
        if self.unavailable is not None:
            raise Refused(Refusal.UNAVAILABLE, self.unavailable)
        try:
            batch = ingest_pb2.TelemetryBatch.FromString(raw)
        except DecodeError:
            raise Refused(Refusal.INVALID, "the request is not a valid TelemetryBatch") from None
        events = batch.events
        n = len(events)
        if n > self.settings.max_batch_events:
            raise Refused(
                Refusal.INVALID,
                f"batch {batch.batch_id} has {n} events (limit {self.settings.max_batch_events})",
            )
        now_us = self.clock_us()
        tenancy = self.tenancy
        tenancy.refresh()
        verdict = validate_batch(
            events,
            fleet_id=fleet,
            now_us=now_us,
            max_future_us=self._max_future_us,
            late_after_us=self._late_after_us,
            ids=self.ids,
            max_lateness_us=self._max_lateness_us,
            in_range=self.ranges.within(raw) if n >= self.ranges.COLUMNAR_FROM else None,
            owners=tenancy.owners,
            reject_unknown=tenancy.reject_unknown,
        )
        if verdict.foreign_fleet is not None:
            raise Refused(
                Refusal.FORBIDDEN,
                f"the token is for fleet {fleet!r}; batch {batch.batch_id} has an event of "
                f"fleet {verdict.foreign_fleet[:64]!r}: the whole batch is refused",
            )
        with _sink_errors():
            delivery = self.sink.reserve(n, asyncio.get_running_loop())
        stamp = ingest_time_field(now_us)
        spans = event_spans(raw)
        if spans is not None and len(spans) != n:
            spans = None
        plain = (
            len(verdict.accepted) == n
            and not verdict.late
            and not verdict.no_fleet
            and not verdict.dropped
        )
        if spans is not None and plain:
            # The common case, all valid: no per-event work but the slice and the send.
            traced = self._traced(events, verdict.accepted, delivery, received)
            with _sink_errors():
                self.sink.submit_slices(delivery, raw, spans, stamp, verdict.keys, traced)
            self._count(n, verdict)
            return Pending(
                ingest_pb2.PublishAck(batch_id=batch.batch_id, accepted=n), delivery, received
            )
        values, payloads = self._records(raw, spans, events, verdict, fleet, stamp, now_us)
        deadletters: list[tuple[bytes, bytes | None, Headers]] = []
        for r in verdict.rejected:
            key = events[r.index].vehicle_id.encode() or None
            value, headers = dead_letter_record(
                reason="invalid_event",
                error=f"{r.field}: {r.reason}",
                service=self.service,
                key=key,
                payload=payloads[r.index],
            )
            deadletters.append((value, key, headers))
        traced = self._traced(events, verdict.accepted, delivery, received)
        with _sink_errors():
            self.sink.submit(delivery, values, verdict.keys, deadletters, traced)
        ack = ingest_pb2.PublishAck(
            batch_id=batch.batch_id, accepted=len(verdict.accepted), late=len(verdict.late)
        )
        for r in verdict.rejected:
            ack.rejected.add(index=r.index, code=r.code, field=r.field, reason=r.reason)
        self._count(n, verdict)
        return Pending(ack, delivery, received)

    def _traced(
        self,
        events: Sequence[telemetry_pb2.Telemetry],
        accepted: list[int],
        delivery: BatchDelivery,
        received: float,
    ) -> Traced | None:
        """Root spans for the head-sampled accepted events, by position among the accepted."""
        tracing = self.tracing
        if not tracing.enabled:
            return None
        picked = tracing.sampler.pick(len(accepted))
        if not picked:
            return None
        # The call's arrival, on the wall clock the spans use.
        start_ns = time.time_ns() - int((time.monotonic() - received) * 1e9)
        topic = self.sink.raw_topic
        traced = {}
        for position in picked:
            e = events[accepted[position]]
            attributes = messaging_attributes(topic=topic, operation="publish")
            attributes["messaging.kafka.message.key"] = e.vehicle_id
            attributes["fleetpipe.vehicle_id"] = e.vehicle_id
            attributes["fleetpipe.seq"] = e.seq
            span = tracing.start_root(
                f"{topic} publish", kind=PRODUCER, attributes=attributes, start_ns=start_ns
            )
            if span is not None:
                traced[position] = TracedDelivery(span, delivery)
        return traced

    def _records(
        self,
        raw: bytes,
        spans: list[tuple[int, int]] | None,
        events: Sequence[telemetry_pb2.Telemetry],
        verdict: Verdict,
        fleet: str,
        stamp: bytes,
        now_us: int,
    ) -> tuple[list[bytes], dict[int, bytes]]:
        """The values to produce for accepted events, and the original bytes of rejected ones.

        Each accepted event is its own bytes from the request with ingest's fields appended
        (see wire.py); a request the scanner does not follow is re-serialised instead.
        """
        if spans is None:
            return self._reserialised(events, verdict, fleet, now_us)
        rejected = {r.index: raw[spans[r.index][0] : spans[r.index][1]] for r in verdict.rejected}
        late, no_fleet, dropped = set(verdict.late), set(verdict.no_fleet), verdict.dropped
        fleet_bytes = fleet_field(fleet)
        values = []
        for i in verdict.accepted:
            a, b = spans[i]
            extra = stamp
            if i in late:
                extra += LATE_FIELD
            if i in no_fleet:
                extra += fleet_bytes
            paths = dropped.get(i)
            if paths is None:
                values.append(raw[a:b] + extra)
            else:
                # Rare: a field cannot be removed by appending, so this event is re-serialised.
                e = events[i]
                without_dropped(e, paths)
                values.append(e.SerializeToString() + extra)
        return values, rejected

    def _reserialised(
        self,
        events: Sequence[telemetry_pb2.Telemetry],
        verdict: Verdict,
        fleet: str,
        now_us: int,
    ) -> tuple[list[bytes], dict[int, bytes]]:
        rejected = {r.index: events[r.index].SerializeToString() for r in verdict.rejected}
        late = set(verdict.late)
        values = []
        for i in verdict.accepted:
            e = events[i]
            paths = verdict.dropped.get(i)
            if paths is not None:
                without_dropped(e, paths)
            e.ingest_time_us = now_us
            e.late = i in late
            if not e.fleet_id:
                e.fleet_id = fleet
            values.append(e.SerializeToString())
        return values, rejected

    def _count(self, n: int, verdict: Verdict) -> None:
        m = self.metrics
        m.accepted.inc(len(verdict.accepted))
        if verdict.rejected:
            m.rejected.inc(len(verdict.rejected))
            for r in verdict.rejected:
                m.shared.rejected.labels(r.code_name).inc()
            m.shared.deadletters.labels("invalid_event").inc(len(verdict.rejected))
        if verdict.late:
            m.late.inc(len(verdict.late))
        m.shared.batch_size.observe(n)

    async def acknowledge(self, pending: Pending) -> ingest_pb2.PublishAck:
        delivery = pending.delivery
        try:
            await asyncio.wait_for(
                asyncio.shield(delivery.future), timeout=self.settings.ack_timeout_s
            )
        except TimeoutError:
            delivery.abandon()
            raise Refused(
                Refusal.UNAVAILABLE,
                f"Kafka did not confirm batch {pending.ack.batch_id} within "
                f"{self.settings.ack_timeout_s:g}s; retry",
            ) from None
        except SinkFailed as exc:
            raise Refused(
                Refusal.UNAVAILABLE,
                f"Kafka failed batch {pending.ack.batch_id}: {exc}; retry",
            ) from None
        m = self.metrics
        m.ok.inc()
        m.ack_seconds.observe(time.monotonic() - pending.received)
        m.inflight.set(self.sink.inflight)
        m.shared.produced.labels(self.sink.raw_topic).inc(pending.ack.accepted)
        m.confirmed.inc(pending.ack.accepted)
        return pending.ack
