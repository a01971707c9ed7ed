"""The bridge's promise, with a hand-written Kafka producer: a message is acknowledged to the
broker only once Kafka holds all of it, retried while Kafka fails, dead-lettered and answered
when it cannot be read, and left to the broker when the bridge is stopping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from fleetpipe.core.metrics import Metrics
from fleetpipe.ingest.intake import IngestMetrics, Intake
from fleetpipe.ingest.mqtt.bridge import PROTOBUF_ACK, Bridge, BridgeMetrics, Received
from fleetpipe.ingest.mqtt.settings import BridgeSettings
from fleetpipe.ingest.mqtt.topics import rejections_topic, telemetry_topic
from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2
from support.sinkfakes import FakeClient, FakeError, settle, sink

pytestmark = pytest.mark.unit

TOPIC = telemetry_topic("fa", "v1")


def event(seq: int = 1) -> telemetry_pb2.Telemetry:
    e = telemetry_pb2.Telemetry(vehicle_id="v1", seq=seq, event_time_us=time.time_ns() // 1000)
    e.location.lat, e.location.lon = 52.5, 13.4
    return e


class Harness:
    def __init__(self) -> None:
        self.client = FakeClient()
        metrics = Metrics("test")
        # A backoff of a nanosecond: the retry comes within a few turns of the loop.
        settings = BridgeSettings(retry_initial_s=1e-9, retry_max_s=1e-9)
        intake = Intake(settings, sink(self.client), IngestMetrics(metrics), service="mqtt-bridge")
        self.acks: list[tuple[int, int]] = []
        self.published: list[tuple[str, bytes, str]] = []
        self.bridge = Bridge(
            settings,
            intake,
            BridgeMetrics(metrics),
            ack=lambda mid, qos: self.acks.append((mid, qos)),
            publish=lambda topic, body, ctype: self.published.append((topic, body, ctype)),
        )


async def spin(done: Callable[[], object], *, turns: int = 10_000) -> None:
    """Let the event loop run until ``done()`` (a delivery resolves through a few callbacks)."""
    for _ in range(turns):
        if done():
            return
        await asyncio.sleep(0)


def run(test: Callable[[Harness], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test(Harness()))


def test_a_message_is_acknowledged_only_once_kafka_holds_its_event() -> None:
    async def go(h: Harness) -> None:
        h.bridge.received(Received(TOPIC, event().SerializeToString(), mid=7, qos=1))
        await settle()
        assert [topic for topic, _ in h.client.queued] == ["raw"]
        assert h.acks == []  # produced, not yet confirmed
        h.client.report()
        await spin(lambda: h.acks)
        assert h.acks == [(7, 1)]
        assert h.published == []  # nothing rejected, nothing to answer

    run(go)


def test_a_failed_delivery_is_produced_again_and_acknowledged_once() -> None:
    async def go(h: Harness) -> None:
        h.bridge.received(Received(TOPIC, event().SerializeToString(), mid=8, qos=1))
        await settle()
        h.client.report(error=FakeError("broker down"))
        await spin(lambda: h.client.queued)
        assert [topic for topic, _ in h.client.queued] == ["raw"]
        assert h.acks == []
        h.client.report()
        await spin(lambda: h.acks)
        assert h.acks == [(8, 1)]

    run(go)


def test_an_unreadable_payload_is_dead_lettered_answered_and_then_acknowledged() -> None:
    async def go(h: Harness) -> None:
        h.bridge.received(Received(TOPIC, b"\xff\xff not protobuf", mid=9, qos=1))
        await settle()
        assert [topic for topic, _ in h.client.queued] == ["dl"]
        assert h.acks == []
        h.client.report()
        await spin(lambda: h.acks)
        assert h.acks == [(9, 1)]
        [(topic, body, content_type)] = h.published
        assert topic == rejections_topic("fa", "v1") and content_type == PROTOBUF_ACK
        assert "malformed_payload" in ingest_pb2.PublishAck.FromString(body).rejected[0].reason

    run(go)


def test_a_stopping_bridge_leaves_new_messages_to_the_broker() -> None:
    async def go(h: Harness) -> None:
        assert await h.bridge.drain(timeout=1.0) == 0
        h.bridge.received(Received(TOPIC, event().SerializeToString(), mid=10, qos=1))
        await settle()
        assert h.client.queued == [] and h.acks == []

    run(go)
