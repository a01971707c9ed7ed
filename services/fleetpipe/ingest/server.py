"""The grpc.aio servicer of ``fleetpipe.v1.TelemetryIngest``, with health and reflection.

Per call: authenticate the bearer token (UNAUTHENTICATED), refuse a batch with another fleet's
event as a whole (PERMISSION_DENIED), validate each event, stamp ``ingest_time_us``, produce the
accepted ones to the raw topic keyed by vehicle id and the rejected ones to the dead-letter topic,
and answer once Kafka has confirmed every record of the batch. Kafka failing or not answering in
``ack_timeout_s`` gives UNAVAILABLE (a retry is safe: downstream de-duplicates by vehicle and
seq); too much awaiting Kafka gives RESOURCE_EXHAUSTED.

Tracing starts here: the head sampler picks a few events in a thousand (the ``OTEL_TRACES_*``
ratio); each picked event gets a root span (a producer span, ended when Kafka confirms the
record, with its partition and offset) and its record carries the span's ``traceparent``
header. The other events get no span, no header and no per-event check.

A Stream is read and produced in order and acknowledged in order; up to ``stream_window`` of its
batches may await Kafka at once, after which the server stops reading the stream (HTTP/2 flow
control pushes back on the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import _async as health_aio  # what health.aio names, typed
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import Counter, Gauge, Histogram

from fleetpipe.core.kafka import Headers
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.records import dead_letter_record
from fleetpipe.core.tracing import PRODUCER, Span, Tracing, messaging_attributes
from fleetpipe.ingest.auth import TokenStore, bearer_token
from fleetpipe.ingest.settings import IngestSettings
from fleetpipe.ingest.sink import BatchDelivery, KafkaSink, SinkFailed, SinkFull, Traced
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

log = logging.getLogger(__name__)

# Requests arrive as bytes: ingest parses them itself and forwards each event's own bytes.
_Context = grpc.aio.ServicerContext[bytes, ingest_pb2.PublishAck]

SERVICE_NAME = ingest_pb2.DESCRIPTOR.services_by_name["TelemetryIngest"].full_name
_ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class IngestMetrics:
    """Ingest's own metrics, on the service's registry next to the shared ones."""

    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.shared = metrics
        self.events = Counter(
            "fleetpipe_ingest_events", "Events received, by outcome", ["outcome"], registry=r
        )
        self.calls = Counter(
            "fleetpipe_ingest_batches", "Batches answered, by gRPC status", ["code"], registry=r
        )
        self.ack_seconds = Histogram(
            "fleetpipe_ingest_ack_seconds",
            "From receiving a batch to acknowledging it",
            buckets=_ACK_BUCKETS,
            registry=r,
        )
        self.inflight = Gauge(
            "fleetpipe_ingest_inflight_events", "Events awaiting Kafka's confirmation", registry=r
        )
        self.accepted = self.events.labels("accepted")
        self.rejected = self.events.labels("rejected")
        self.late = self.events.labels("late")
        self.ok = self.calls.labels("OK")


class _Refusal(Exception):
    """Answer the call with this status instead of an ack."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


@contextlib.contextmanager
def _sink_errors() -> Iterator[None]:
    """Kafka-side refusals as gRPC statuses: full → RESOURCE_EXHAUSTED, failed → UNAVAILABLE."""
    try:
        yield
    except SinkFull as exc:
        raise _Refusal(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{exc}; retry later") from None
    except SinkFailed as exc:
        raise _Refusal(grpc.StatusCode.UNAVAILABLE, str(exc)) from None


@dataclass
class _Pending:
    ack: ingest_pb2.PublishAck
    delivery: BatchDelivery
    received: float


class _TracedDelivery:
    """The delivery report of a traced event: completes its span, then counts for the batch."""

    __slots__ = ("delivery", "span")

    def __init__(self, span: Span, delivery: BatchDelivery) -> None:
        self.span = span
        self.delivery = delivery

    def __call__(self, err: Any, msg: Any) -> None:
        span = self.span
        partition, offset = msg.partition(), msg.offset()
        if partition is not None and partition >= 0:
            span.set("messaging.destination.partition.id", str(partition))
        if offset is not None and offset >= 0:
            span.set("messaging.kafka.offset", offset)
        if err is not None:
            span.fail(err.str())
        span.end()
        self.delivery.on_delivery(err, msg)


class IngestServicer:
    def __init__(
        self,
        settings: IngestSettings,
        sink: KafkaSink,
        tokens: TokenStore,
        metrics: IngestMetrics,
        *,
        tenancy: Tenancy | None = None,
        clock_us: Callable[[], int] = lambda: time.time_ns() // 1000,
        tracing: Tracing | None = None,
    ) -> None:
        self.tracing = tracing if tracing is not None else Tracing.disabled()
        self.settings = settings
        self.sink = sink
        self.tokens = tokens
        self.metrics = metrics
        self.clock_us = clock_us
        self.ids = VehicleIdCheck()
        self.tenancy = tenancy if tenancy is not None else Tenancy(None)
        self.ranges = batch_ranges()
        # Why batches cannot be taken now (a missing topic), said to the caller; None: they can.
        self.unavailable: str | None = None
        self._max_future_us = round(settings.max_future_s * 1e6)
        self._late_after_us = round(settings.late_after_s * 1e6)
        self._max_lateness_us = round(settings.max_lateness_s * 1e6)

    # --- RPCs ---------------------------------------------------------------------------------

    def handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        """The service's methods, taking the request bytes as they came off the wire."""
        ack = ingest_pb2.PublishAck.SerializeToString
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Publish": grpc.unary_unary_rpc_method_handler(
                    self.Publish, request_deserializer=None, response_serializer=ack
                ),
                "Stream": grpc.stream_stream_rpc_method_handler(
                    self.Stream, request_deserializer=None, response_serializer=ack
                ),
            },
        )

    async def Publish(self, request: bytes, context: _Context) -> ingest_pb2.PublishAck:
        try:
            fleet = self._authenticate(context)
            pending = self._accept(request, fleet)
            return await self._acknowledge(pending)
        except _Refusal as r:
            self.metrics.calls.labels(r.code.name).inc()
            await context.abort(r.code, r.details)
            raise AssertionError("unreachable") from None  # abort raises

    async def Stream(
        self,
        request_iterator: AsyncIterator[bytes],
        context: _Context,
    ) -> None:
        try:
            fleet = self._authenticate(context)
        except _Refusal as r:
            self.metrics.calls.labels(r.code.name).inc()
            await context.abort(r.code, r.details)
            return
        window: asyncio.Queue[_Pending | _Refusal | None] = asyncio.Queue(
            self.settings.stream_window
        )

        async def read() -> None:
            try:
                async for batch in request_iterator:
                    # Blocks while the window is full: the stream is not read until acks go out.
                    await window.put(self._accept(batch, fleet))
            except _Refusal as r:
                # Acknowledge what came before the refused batch, then end the stream.
                await window.put(r)
                return
            await window.put(None)

        async def write() -> None:
            while (item := await window.get()) is not None:
                if isinstance(item, _Refusal):
                    raise item
                await context.write(await self._acknowledge(item))

        reader, writer = asyncio.create_task(read()), asyncio.create_task(write())
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # raises the first failure
            await writer
        except _Refusal as r:
            self.metrics.calls.labels(r.code.name).inc()
            await context.abort(r.code, r.details)
        finally:
            for task in (reader, writer):
                task.cancel()
            while not window.empty():
                left = window.get_nowait()
                if isinstance(left, _Pending):
                    left.delivery.abandon()

    # --- the work -----------------------------------------------------------------------------

    def _authenticate(self, context: _Context) -> str:
        token = bearer_token(context.invocation_metadata())
        if token is None:
            raise _Refusal(
                grpc.StatusCode.UNAUTHENTICATED, "missing 'authorization: Bearer <token>'"
            )
        fleet = self.tokens.fleet_for(token)
        if fleet is None:
            raise _Refusal(grpc.StatusCode.UNAUTHENTICATED, "unknown token")
        return fleet

    def _accept(self, raw: bytes, fleet: str) -> _Pending:
        """Validate and produce one batch; the returned delivery completes when Kafka has it."""
        received = time.monotonic()
        if self.unavailable is not None:
            raise _Refusal(grpc.StatusCode.UNAVAILABLE, self.unavailable)
        try:
            batch = ingest_pb2.TelemetryBatch.FromString(raw)
        except DecodeError:
            raise _Refusal(
                grpc.StatusCode.INVALID_ARGUMENT, "the request is not a valid TelemetryBatch"
            ) from None
        events = batch.events
        n = len(events)
        if n > self.settings.max_batch_events:
            raise _Refusal(
                grpc.StatusCode.INVALID_ARGUMENT,
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
            raise _Refusal(
                grpc.StatusCode.PERMISSION_DENIED,
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
            return _Pending(
                ingest_pb2.PublishAck(batch_id=batch.batch_id, accepted=n), delivery, received
            )
        values, payloads = self._records(raw, spans, events, verdict, fleet, stamp, now_us)
        deadletters: list[tuple[bytes, bytes | None, Headers]] = []
        for r in verdict.rejected:
            key = events[r.index].vehicle_id.encode() or None
            value, headers = dead_letter_record(
                reason="invalid_event",
                error=f"{r.field}: {r.reason}",
                service="ingest",
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
        return _Pending(ack, delivery, received)

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
                traced[position] = (span.headers, _TracedDelivery(span, delivery))
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

    async def _acknowledge(self, pending: _Pending) -> ingest_pb2.PublishAck:
        delivery = pending.delivery
        try:
            await asyncio.wait_for(
                asyncio.shield(delivery.future), timeout=self.settings.ack_timeout_s
            )
        except TimeoutError:
            delivery.abandon()
            raise _Refusal(
                grpc.StatusCode.UNAVAILABLE,
                f"Kafka did not confirm batch {pending.ack.batch_id} within "
                f"{self.settings.ack_timeout_s:g}s; retry",
            ) from None
        except SinkFailed as exc:
            raise _Refusal(
                grpc.StatusCode.UNAVAILABLE,
                f"Kafka failed batch {pending.ack.batch_id}: {exc}; retry",
            ) from None
        m = self.metrics
        m.ok.inc()
        m.ack_seconds.observe(time.monotonic() - pending.received)
        m.inflight.set(self.sink.inflight)
        m.shared.produced.labels(self.sink.raw_topic).inc(pending.ack.accepted)
        return pending.ack


class HealthService:
    """grpc.health.v1 for the whole server ("") and for TelemetryIngest."""

    def __init__(self) -> None:
        self.servicer = health_aio.HealthServicer()

    async def set(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await self.servicer.set(name, status)


def build_server(
    settings: IngestSettings, servicer: IngestServicer, health_service: HealthService
) -> tuple[grpc.aio.Server, int]:
    """The server with every service registered and its port bound; returns the bound port."""
    limit = settings.max_message_bytes
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            ("grpc.so_reuseport", 0),
            # Keep idle device connections open through NATs and load balancers.
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ]
    )
    server.add_generic_rpc_handlers((servicer.handler(),))
    health_pb2_grpc.add_HealthServicer_to_server(health_service.servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    tls = settings.tls
    if tls.enabled:
        assert tls.cert_file is not None and tls.key_file is not None
        credentials = grpc.ssl_server_credentials(
            [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())],
            root_certificates=tls.client_ca_file.read_bytes() if tls.client_ca_file else None,
            require_client_auth=tls.client_ca_file is not None,
        )
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind gRPC to {address}")
    return server, port
