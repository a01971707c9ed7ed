"""The bridge's MQTT client (paho-mqtt, MQTT 5): connect, subscribe, hand messages over, ack.

paho runs its network loop on a thread of its own; every message is handed to the asyncio
loop with ``call_soon_threadsafe``, in the order it arrived. ``ack`` and ``publish`` may be
called from the asyncio thread: paho queues the packet and wakes its loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fleetpipe.ingest.mqtt.bridge import Received
from fleetpipe.ingest.mqtt.settings import MqttSettings
from fleetpipe.ingest.mqtt.topics import shared_subscription

log = logging.getLogger(__name__)


class MqttEdge:
    def __init__(
        self,
        settings: MqttSettings,
        *,
        client_id: str,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[Received], None],
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self._loop = loop
        self._deliver = deliver
        # Why the bridge is not connected, for readiness; None once subscribed.
        self.problem: str | None = "not connected yet"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
        if settings.tls_ca_file is not None:
            client.tls_set(ca_certs=str(settings.tls_ca_file))
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self.client = client

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.settings.session_expiry_s
        props.ReceiveMaximum = self.settings.receive_maximum
        self.client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect (the session stays on the broker for ``session_expiry_s``)."""
        self.client.disconnect()
        self.client.loop_stop()

    def ack(self, mid: int, qos: int) -> None:
        self.client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes, content_type: str) -> None:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ContentType = content_type
        self.client.publish(topic, payload, qos=1, properties=props)

    # --- paho's callbacks, on its network thread ----------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self.problem = f"the MQTT broker refused the connection: {reason_code}"
            log.error("%s", self.problem)
            return
        log.info(
            "connected to %s:%d as %s (session %s)",
            self.settings.host,
            self.settings.port,
            self.client_id,
            "resumed" if flags.session_present else "new",
        )
        # Subscribing again on a resumed session changes nothing, and covers an expired one.
        client.subscribe(shared_subscription(self.settings.share_group), qos=1)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        failed = [str(rc) for rc in reason_codes if rc.is_failure]
        self.problem = f"the broker refused the subscription: {failed}" if failed else None
        if failed:
            log.error("%s", self.problem)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.problem = f"disconnected from the MQTT broker: {reason_code}"
        log.warning("%s; reconnecting", self.problem)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        props = msg.properties
        content_type = getattr(props, "ContentType", None) if props is not None else None
        received = Received(msg.topic, bytes(msg.payload), msg.mid, msg.qos, content_type)
        self._loop.call_soon_threadsafe(self._deliver, received)
