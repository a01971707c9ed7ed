"""Sending a simulated fleet over MQTT: each event one QoS 1 publish on its vehicle's topic.

The fleet's vehicles share a few connections as the fleet's gateway account (see
``fleetpipe.ingest.mqtt.credentials``; its password derives from the fleet's token, so
``--token`` is all the driver needs). Each event's bytes are cut from the encoded batch as they
are (protobuf ``Telemetry``), without a parse. An event counts as accepted when the broker's
PUBACK says so, and moves to rejected if the bridge answers it on the vehicle's rejections
topic (which the first connection reads for the whole fleet). At most ``max_unacked`` events
await a PUBACK at once.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import grpc
import paho.mqtt.client as mqtt
from google.protobuf.message import DecodeError
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from fleetpipe.core.protowire import read_varint, tag_byte
from fleetpipe.ingest.mqtt.credentials import gateway_password, gateway_user
from fleetpipe.ingest.mqtt.topics import rejections_topic, telemetry_topic
from fleetpipe.ingest.wire import event_spans
from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2
from fleetpipe_loadtest.sender import SenderError, SendStats

_VEHICLE_ID_TAG = tag_byte(telemetry_pb2.Telemetry, "vehicle_id")
_LATENCY_SAMPLE = 200_000


def vehicle_id_of(event: bytes) -> str:
    """The vehicle id of an encoded ``Telemetry``: its first field, as the encoder writes it."""
    if event and event[0] == _VEHICLE_ID_TAG:
        n, start = read_varint(event, 1)
        return event[start : start + n].decode()
    return telemetry_pb2.Telemetry.FromString(event).vehicle_id


class _Connection:
    def __init__(self, sender: MqttSender, index: int) -> None:
        self.sender = sender
        self.index = index
        self.connected = asyncio.Event()
        self.refused: str | None = None
        self.sent_at: dict[int, float] = {}
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{sender.client_tag}-{index}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.username_pw_set(gateway_user(sender.fleet_id), sender.password)
        if sender.root_certificates is not None:
            context = ssl.create_default_context(cadata=sender.root_certificates.decode())
            client.tls_set_context(context)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self.client = client

    # paho's callbacks run on its network thread: hand each to the asyncio loop.
    def _on_connect(self, c: mqtt.Client, u: Any, f: Any, rc: ReasonCode, p: Any) -> None:
        self.sender.loop.call_soon_threadsafe(self._connect_answered, rc)

    def _on_publish(self, c: mqtt.Client, u: Any, mid: int, rc: ReasonCode, p: Any) -> None:
        self.sender.loop.call_soon_threadsafe(self.sender.acked, self, mid, rc.is_failure)

    def _on_message(self, c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        self.sender.loop.call_soon_threadsafe(self.sender.rejected, bytes(msg.payload))

    def _connect_answered(self, rc: ReasonCode) -> None:
        if rc.is_failure:
            self.refused = str(rc)
        elif self.index == 0:
            self.client.subscribe(rejections_topic(self.sender.fleet_id, "+"), qos=1)
        self.connected.set()


class MqttSender:
    """Publishes batches' events with QoS 1 over ``streams`` connections to the broker."""

    loop: asyncio.AbstractEventLoop  # the one ``async with`` runs in

    def __init__(
        self,
        target: str,
        *,
        token: str,
        fleet_id: str,
        streams: int = 4,
        max_unacked: int = 4000,
        client_tag: str = "fleetpipe-loadtest",
        root_certificates: bytes | None = None,
    ) -> None:
        host, _, port = target.rpartition(":")
        self.host, self.port = host or "127.0.0.1", int(port or 1883)
        self.fleet_id = fleet_id
        self.password = gateway_password(token, fleet_id)
        self.client_tag = client_tag
        self.root_certificates = root_certificates
        self.max_unacked = max(1, max_unacked)
        self.stats = SendStats()
        self.pending = 0
        self._room = asyncio.Event()
        self._streams = streams
        self._conns: list[_Connection] = []

    async def __aenter__(self) -> MqttSender:
        self.loop = asyncio.get_running_loop()
        self._conns = [_Connection(self, i) for i in range(self._streams)]
        for conn in self._conns:
            conn.client.connect_async(self.host, self.port, keepalive=30)
            conn.client.loop_start()
        for conn in self._conns:
            try:
                await asyncio.wait_for(conn.connected.wait(), timeout=30)
            except TimeoutError:
                raise SenderError(
                    grpc.StatusCode.UNAVAILABLE, f"no answer from {self.host}:{self.port}"
                ) from None
            if conn.refused is not None:
                raise SenderError(
                    grpc.StatusCode.UNAUTHENTICATED, f"the MQTT broker refused: {conn.refused}"
                )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in self._conns:
            conn.client.disconnect()
            conn.client.loop_stop()

    async def send(self, stream: int, body: bytes, count: int) -> None:
        while self.pending >= self.max_unacked:
            self._room.clear()
            await self._room.wait()
        conn = self._conns[stream % len(self._conns)]
        spans = event_spans(body)
        if spans is None:
            raise ValueError("a batch body the MQTT sender cannot split into events")
        publish, fleet, now = conn.client.publish, self.fleet_id, time.monotonic()
        for start, end in spans:
            event = body[start:end]
            info = publish(telemetry_topic(fleet, vehicle_id_of(event)), event, qos=1)
            conn.sent_at[info.mid] = now
        self.stats.sent += len(spans)
        self.pending += len(spans)

    def acked(self, conn: _Connection, mid: int, failed: bool) -> None:
        st = self.stats
        self.pending -= 1
        if failed:  # the broker refused it (its ACL): counted, as a rejection
            st.rejected += 1
            st.rejections["MQTT_NOT_AUTHORIZED"] += 1
        else:
            st.accepted += 1
        sent = conn.sent_at.pop(mid, None)
        if sent is not None and len(st.ack_latency_s) < _LATENCY_SAMPLE:
            st.ack_latency_s.append(time.monotonic() - sent)
        self._room.set()

    def rejected(self, payload: bytes) -> None:
        """The bridge's answer on a rejections topic: those events were not taken after all."""
        try:
            ack = ingest_pb2.PublishAck.FromString(payload)
        except DecodeError:
            return
        st = self.stats
        for r in ack.rejected:
            st.accepted -= 1
            st.rejected += 1
            st.rejections[ingest_pb2.RejectCode.Name(r.code)] += 1

    def unacked(self) -> int:
        return self.pending

    async def drain(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.pending > 0:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), timeout=1.0)
            except TimeoutError:
                continue
        return True
