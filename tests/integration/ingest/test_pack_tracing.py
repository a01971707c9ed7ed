"""A sampled event's trace context rides in its pack: the consuming stage's span is the child of
the span ingest started for the event. Ingest's intake and the consume loop in-process, on the
real broker, each with its own in-memory span exporter."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fleetpipe.core.codecs import ProtoCodec
from fleetpipe.core.loop import BaseHandler, ConsumeProduceLoop, LoopConfig
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.packs import PACK_HEADER, PackCodec, PackLimits
from fleetpipe.core.records import Output, Record
from fleetpipe.core.settings import DeliveryMode, KafkaSettings, Topics
from fleetpipe.core.stopping import StopFlag
from fleetpipe.core.tracing import Tracing
from fleetpipe.ingest.intake import IngestMetrics, Intake
from fleetpipe.ingest.settings import IntakeSettings
from fleetpipe.ingest.sink import build_sink
from fleetpipe.pb.v1 import telemetry_pb2
from fleetpipe_dev.testing import read_all, wait_for
from support.messages import headers_of

from .test_ingest import batch, fleet_events

pytestmark = pytest.mark.integration


def _memory_tracing() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider.get_tracer("test"), ratio=1.0, provider=provider), exporter


class Traced(BaseHandler):
    """Notes which records the loop gave a consumer span."""

    def __init__(self) -> None:
        self.seen = 0
        self.traced = 0

    def handle(self, records: list[Record[Any]], out: Output) -> None:
        self.seen += len(records)
        self.traced += len(out.traced)


def _publish(
    settings: IntakeSettings, tracing: Tracing, events: list[telemetry_pb2.Telemetry]
) -> int:
    async def go() -> int:
        sink = build_sink(settings, client_id="pack-tracing")
        sink.start()
        intake = Intake(settings, sink, IngestMetrics(Metrics("ingest")), tracing=tracing)
        try:
            pending = intake.accept(batch(1, events).SerializeToString(), "fleet-a")
            ack = await intake.acknowledge(pending)
        finally:
            sink.flush_packs()
            await asyncio.to_thread(sink.close, 10.0)
        return ack.accepted

    return asyncio.run(go())


def test_the_consumer_span_of_an_event_in_a_pack_is_the_child_of_its_ingest_span(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    (events,) = fleet_events(8, 1)
    settings = IntakeSettings(kafka=kafka_settings, topics=topics)
    assert PackLimits.from_settings(settings.kafka).packing, "packs are the default"
    ingest_tracing, ingest_spans = _memory_tracing()  # samples every event
    assert _publish(settings, ingest_tracing, events) == 8
    records = read_all(kafka_settings, topics.raw)
    assert records and all(PACK_HEADER in headers_of(m) for m in records)
    assert not any("traceparent" in headers_of(m) for m in records), "the context is inside"
    published = {
        s.context.span_id: s
        for s in ingest_spans.get_finished_spans()
        if s.name.endswith("publish")
    }
    assert len(published) == 8

    tracing, consumer_spans = _memory_tracing()
    handler = Traced()
    config = LoopConfig(
        service="enrichment",
        group_id=f"tracing-{topics.raw}",
        inputs={topics.raw: PackCodec(ProtoCodec(telemetry_pb2.Telemetry))},
        deadletter_topic=topics.deadletter,
        mode=DeliveryMode.EXACTLY_ONCE,
        instance_id="tracing",
    )
    loop = ConsumeProduceLoop(
        config, kafka_settings, handler, metrics=Metrics("test"), stop=StopFlag(), tracing=tracing
    )
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: handler.seen >= 8, timeout=60, what="the events")
        wait_for(lambda: len(_processed(consumer_spans)) >= 8, timeout=30, what="consumer spans")
    finally:
        loop.stop.set()
        thread.join(30)
    assert handler.traced == 8
    for span in _processed(consumer_spans):
        assert span.parent is not None
        parent = published[span.parent.span_id]
        assert span.context.trace_id == parent.context.trace_id
        assert span.attributes is not None
        assert span.attributes["messaging.kafka.offset"] >= 0  # type: ignore[operator]


def _processed(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name.endswith("process")]
