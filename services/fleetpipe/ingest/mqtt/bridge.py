"""The MQTT → Kafka bridge: devices' messages in, validated events on the raw topic.

Why a process of its own, in ingest's package: it validates with ingest's code and produces
through ingest's sink (so an MQTT event reaches the raw topic exactly as a gRPC one does), but
it is a *client* of the broker, not a server devices connect to. It scales by the broker's
shared subscription (each replica takes a share of the messages) rather than by connections
behind a Service, it needs a stable identity per replica (a StatefulSet: its session survives a
crash), and a pipeline without MQTT devices runs none of it. Folding it into the gRPC server
would tie those two ways of scaling and failing together.

Delivery: every replica subscribes with QoS 1 to ``$share/{group}/fleet/+/vehicle/+/telemetry/#``
with manual acknowledgement, and sends a message's PUBACK only once Kafka holds all of it
(its accepted events on the raw topic, its rejected ones on the dead-letter topic). A replica
killed mid-flight loses nothing: its session (a stable client id, clean start off, a session
expiry) keeps the unacknowledged messages, which the broker sends again when it reconnects;
the events sent twice are absorbed downstream by (vehicle, seq). While Kafka refuses (busy or
down) a message is retried with backoff and stays unacknowledged, and once ``receive_maximum``
messages are unacknowledged the broker stops sending: backpressure reaches the broker, whose
queue holds the rest. Rejected events are answered on the device's ``.../rejections`` topic
with the same ack a gRPC client gets (protobuf ``PublishAck``, or its JSON for JSON payloads).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf import json_format
from prometheus_client import Counter

from fleetpipe.core.metrics import Metrics
from fleetpipe.ingest.intake import Intake, Pending, Refusal, Refused
from fleetpipe.ingest.mqtt.payloads import PayloadError, decode, payload_kind
from fleetpipe.ingest.mqtt.settings import BridgeSettings
from fleetpipe.ingest.mqtt.topics import DeviceTopic, Payload, parse_topic
from fleetpipe.ingest.validation import MALFORMED
from fleetpipe.pb.v1 import ingest_pb2

log = logging.getLogger(__name__)

PROTOBUF_ACK = "application/x-protobuf; messageType=fleetpipe.v1.PublishAck"
JSON = "application/json"
_TRANSIENT = (Refusal.BUSY, Refusal.UNAVAILABLE)


@dataclass(frozen=True, slots=True)
class Received:
    """One MQTT message, as the broker delivered it to this replica."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    content_type: str | None = None


class BridgeMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.messages = Counter(
            "fleetpipe_mqtt_messages",
            "MQTT messages taken, by outcome",
            ["outcome"],
            registry=metrics.registry,
        )
        self.acked = self.messages.labels("acknowledged")
        self.dead = self.messages.labels("dead_lettered")
        self.retried = self.messages.labels("retried")
        self.left = self.messages.labels("left_for_redelivery")


class Bridge:
    """Turns each MQTT message into Kafka records, then acknowledges it; no MQTT client here.

    ``ack(mid, qos)`` sends the PUBACK and ``publish(topic, payload, content_type)`` answers a
    device; both are the MQTT edge's (``edge.py``), thread-safe.
    """

    def __init__(
        self,
        settings: BridgeSettings,
        intake: Intake,
        metrics: BridgeMetrics,
        *,
        ack: Callable[[int, int], None],
        publish: Callable[[str, bytes, str], None],
    ) -> None:
        self.settings = settings
        self.intake = intake
        self.metrics = metrics
        self._ack = ack
        self._publish = publish
        self.stopping = False
        self.tasks: set[asyncio.Task[None]] = set()

    def received(self, message: Received) -> None:
        """On the event loop, in the order the broker delivered: one task per message.

        Each task produces before its first wait, and tasks start in the order they are
        made, so a vehicle's events reach Kafka in the order they arrived.
        """
        if self.stopping:
            # Not acknowledged: the broker keeps it in this replica's session for next time.
            self.metrics.left.inc()
            return
        task = asyncio.get_running_loop().create_task(self.handle(message))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self, timeout: float) -> int:
        """Stop taking messages and wait for those in hand; returns how many were left."""
        self.stopping = True
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)
        return len(self.tasks)

    async def handle(self, m: Received) -> None:
        topic = parse_topic(m.topic)
        if topic is None:
            # The ACL lets no device publish outside the layout; a broader ACL would.
            await self._dead_letter(m, None, "unknown_topic", f"topic {m.topic[:200]!r}")
            return
        try:
            parsed = decode(m.payload, topic, m.content_type)
        except PayloadError as exc:
            await self._dead_letter(m, topic, "malformed_payload", str(exc))
            return
        if parsed.total > self.settings.max_batch_events:
            limit = self.settings.max_batch_events
            await self._dead_letter(
                m, topic, "too_many_events", f"{parsed.total} events (limit {limit})"
            )
            return
        key = topic.vehicle_id.encode()

        def produce() -> list[Pending]:
            pendings = [self.intake.accept(parsed.raw, topic.fleet_id)] if parsed.positions else []
            reasons = {p.index: f"{p.field}: {p.reason}" for p in parsed.problems}
            for index, payload in parsed.payloads.items():
                pendings.append(
                    self.intake.dead_letter(
                        payload, key=key, reason="invalid_event", error=reasons[index]
                    )
                )
            return pendings

        acks = await self._until_kafka_holds(produce)
        if acks is None:
            return
        ack = parsed.ack(acks[0] if parsed.positions else ingest_pb2.PublishAck())
        self._answer(m, topic, ack)
        self._ack(m.mid, m.qos)
        self.metrics.acked.inc()

    async def _dead_letter(
        self, m: Received, topic: DeviceTopic | None, reason: str, error: str
    ) -> None:
        key = topic.vehicle_id.encode() if topic is not None else None
        done = await self._until_kafka_holds(
            lambda: [self.intake.dead_letter(m.payload, key=key, reason=reason, error=error)]
        )
        if done is None:
            return
        if topic is not None:
            ack = ingest_pb2.PublishAck()
            ack.rejected.add(index=0, code=MALFORMED, field="", reason=f"{reason}: {error}")
            self._answer(m, topic, ack)
        self._ack(m.mid, m.qos)
        self.metrics.dead.inc()

    async def _until_kafka_holds(
        self, produce: Callable[[], list[Pending]]
    ) -> list[ingest_pb2.PublishAck] | None:
        """Produce and wait for Kafka, again with backoff while it refuses; None if stopping."""
        delay = self.settings.retry_initial_s
        while True:
            try:
                pendings = produce()
                return list(await asyncio.gather(*(self.intake.acknowledge(p) for p in pendings)))
            except Refused as r:
                if r.kind not in _TRANSIENT:
                    raise
                if self.stopping:
                    self.metrics.left.inc()
                    return None
                self.metrics.retried.inc()
                log.warning("Kafka refused a message (%s); again in %.1fs", r.details, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.retry_max_s)

    def _answer(self, m: Received, topic: DeviceTopic, ack: ingest_pb2.PublishAck) -> None:
        """Tell the device which of its events were rejected, in the payload's own language."""
        if not ack.rejected:
            return
        try:
            as_json = payload_kind(topic, m.content_type)[0] is Payload.JSON
        except PayloadError:
            as_json = True  # it sent something unreadable: answer in the readable form
        if as_json:
            body = json_format.MessageToJson(
                ack,
                preserving_proto_field_name=True,
                always_print_fields_with_no_presence=True,  # index 0 is an index too
                indent=None,
            )
            self._publish(topic.rejections, body.encode(), JSON)
        else:
            self._publish(topic.rejections, ack.SerializeToString(), PROTOBUF_ACK)
