"""The session's MQTT broker as the fixtures hand it out, and a device that talks to it."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.ingest.mqtt.credentials import device_password
from fleetpipe.ingest.mqtt.topics import rejections_topic
from fleetpipe.registry import Vehicle
from fleetpipe_dev.stack.mosquitto import MosquittoServer
from fleetpipe_dev.testing import ServiceProcess, service_env, wait_for
from fleetpipe_loadtest.fleet import Fleet


@dataclass
class MosquittoHandle:
    """The session's broker: tests add their fleets' devices, or stop and start it."""

    server: MosquittoServer
    pid: int | None = None
    vehicles: dict[str, Vehicle] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        if self.pid is None:
            self.pid = self.server.start()

    def stop(self, *, kill: bool = False) -> None:
        assert self.pid is not None
        self.server.stop(self.pid, kill=kill)
        self.pid = None

    def bridge_env(self) -> dict[str, str]:
        return {
            "FLEET_MQTT__HOST": "127.0.0.1",
            "FLEET_MQTT__PORT": str(self.port),
            "FLEET_MQTT__PASSWORD": self.server.bridge_password,
        }

    def add_devices(self, vehicles: Iterable[Vehicle], tokens: Mapping[str, str]) -> None:
        """Give ``vehicles`` accounts (and keep the earlier tests'); returns once they work."""
        added = list(vehicles)
        self.vehicles.update({v.vehicle_id: v for v in added})
        self.tokens.update(tokens)
        self.server.write_auth(self.vehicles.values(), self.tokens)
        assert self.pid is not None
        self.server.reload(self.pid)
        if added:
            probe = added[-1]
            token = next(t for t, f in self.tokens.items() if f == probe.fleet_id)

            def accepted() -> bool:
                device = Device(
                    self.port, probe.vehicle_id, device_password(token, probe.vehicle_id)
                )
                try:
                    return device.connect().is_failure is False
                finally:
                    device.close()

            wait_for(accepted, timeout=10, what="the broker to take the new accounts")


class Device:
    """One vehicle's MQTT 5 connection: publish with QoS 1 and read the PUBACK's reason."""

    def __init__(self, port: int, vehicle_id: str, password: str, *, client_id: str = "") -> None:
        self.port = port
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"dev-{vehicle_id}-{id(self)}",
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=False,
        )
        self.client.username_pw_set(vehicle_id, password)
        self._connected = threading.Event()
        self._reason: ReasonCode | None = None
        self.pubacks: dict[int, ReasonCode] = {}
        self.received: list[tuple[str, bytes, str | None]] = []
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    def _on_connect(
        self, client: mqtt.Client, u: object, f: object, rc: ReasonCode, p: object
    ) -> None:
        self._reason = rc
        self._connected.set()

    def _on_publish(
        self, client: mqtt.Client, u: object, mid: int, rc: ReasonCode, p: object
    ) -> None:
        self.pubacks[mid] = rc

    def _on_message(self, client: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        props = msg.properties
        content_type = getattr(props, "ContentType", None) if props is not None else None
        self.received.append((msg.topic, bytes(msg.payload), content_type))

    def connect(self) -> ReasonCode:
        """CONNECT and wait for CONNACK; its reason code."""
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise TimeoutError("no CONNACK within 10 s")
        assert self._reason is not None
        return self._reason

    def subscribe_rejections(self, fleet_id: str, vehicle_id: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        self.client.subscribe(rejections_topic(fleet_id, vehicle_id), qos=1)
        assert done.wait(10), "no SUBACK"

    def publish(self, topic: str, payload: bytes, *, content_type: str | None = None) -> ReasonCode:
        """Publish with QoS 1 and wait for the broker's PUBACK; its reason code."""
        props = None
        if content_type is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ContentType = content_type
        info = self.client.publish(topic, payload, qos=1, properties=props)
        info.wait_for_publish(10)
        return wait_for(lambda: self.pubacks.get(info.mid), timeout=10, what="the PUBACK")

    def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> int:
        """Publish each (topic, payload) with QoS 1 without waiting; wait for every PUBACK at
        the end. Returns how many the broker refused."""
        infos = [self.client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(30)
        mids = [info.mid for info in infos]
        wait_for(lambda: all(m in self.pubacks for m in mids), timeout=30, what="every PUBACK")
        return sum(1 for m in mids if self.pubacks[m].is_failure)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class DeviceFleet:
    """A test's fleet on the broker: its token, its vehicles, and a device for each."""

    broker: MosquittoHandle
    fleet_id: str
    token: str
    vehicles: list[Vehicle]

    def device(self, vehicle_id: str, *, password: str | None = None) -> Device:
        pw = password if password is not None else device_password(self.token, vehicle_id)
        return Device(self.broker.port, vehicle_id, pw)


class StartBridge(Protocol):
    """The ``start_bridge`` fixture: a bridge process on ``topics`` (``extra`` adds settings)."""

    def __call__(self, topics: Topics, **extra: str) -> ServiceProcess: ...


def device_fleet_on(broker: MosquittoHandle, vehicles: int = 3) -> DeviceFleet:
    """A fleet of its own for one test (``vehicles`` simulated ones), with broker accounts."""
    fleet_id = f"mq-{uuid.uuid4().hex[:8]}"
    token = f"token-{fleet_id}-{uuid.uuid4().hex}"
    registry = Fleet(vehicles, seed=5, fleet_id=fleet_id).registry()
    broker.add_devices(registry, {token: fleet_id})
    return DeviceFleet(broker, fleet_id, token, registry)


@contextlib.contextmanager
def bridges(kafka: KafkaSettings, broker: MosquittoHandle, logs: Path) -> Iterator[StartBridge]:
    """Start MQTT bridge processes in a shared-subscription group of their own; stops them
    (SIGTERM, exit 0 expected) at the end."""
    started: list[ServiceProcess] = []
    group = f"bridge-{uuid.uuid4().hex[:8]}"

    def start(topics: Topics, **extra: str) -> ServiceProcess:
        client_id = extra.pop("client_id", f"{group}-{len(started)}")
        env = service_env(
            kafka,
            topics,
            {
                **broker.bridge_env(),
                "FLEET_MQTT__SHARE_GROUP": group,
                "FLEET_MQTT__CLIENT_ID": client_id,
                "FLEET_INSTANCE_ID": client_id,
                **extra,
            },
        )
        log = logs / f"{client_id}.log"
        proc = ServiceProcess("fleetpipe.ingest.mqtt", env, log).start()
        started.append(proc)

        def ready() -> bool:
            proc.check_alive()
            return proc.ready()

        wait_for(ready, timeout=60, what="the MQTT bridge to be ready")
        return proc

    yield start
    for proc in started:
        if proc.alive():
            assert proc.stop() == 0, proc.log()[-3000:]
