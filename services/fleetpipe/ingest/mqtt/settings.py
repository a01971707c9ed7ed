from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from fleetpipe.core.settings import _Frozen
from fleetpipe.ingest.mqtt.credentials import BRIDGE_USER
from fleetpipe.ingest.settings import IntakeSettings


class MqttSettings(_Frozen):
    """The broker the bridge subscribes to (``FLEET_MQTT__*``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str = BRIDGE_USER
    password: SecretStr | None = None
    # The broker's CA: TLS to the broker when set.
    tls_ca_file: Path | None = None
    # Stable per replica (the StatefulSet pod's name by default): after a crash the replica
    # resumes its own session, and the broker resends what it had not acknowledged.
    client_id: str | None = None
    # Replicas in one shared-subscription group split the devices' messages between them.
    share_group: str = "fleetpipe-bridge"
    # How long the broker keeps a replica's session (and queues its share) while it is away.
    session_expiry_s: int = Field(default=86_400, ge=60)
    keepalive_s: int = Field(default=30, ge=5)
    # Messages the broker may send before the bridge acknowledges any: the bridge acknowledges
    # only once Kafka holds the events, so this is its window over Kafka's latency.
    receive_maximum: int = Field(default=2000, ge=1, le=65535)


class BridgeSettings(IntakeSettings):
    mqtt: MqttSettings = MqttSettings()
    # Longer than librdkafka's own delivery timeout (delivery_timeout_ms): a message is produced
    # again only once Kafka's client has given its records up, never while they still wait in
    # its queue, so an outage of Kafka does not multiply the records waiting for it.
    ack_timeout_s: float = Field(default=45.0, gt=0)
    # Backoff while Kafka refuses (busy or down): the message stays unacknowledged meanwhile.
    retry_initial_s: float = Field(default=0.2, gt=0)
    retry_max_s: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _ack_timeout_after_kafka_s(self) -> BridgeSettings:
        if self.ack_timeout_s * 1000 <= self.delivery_timeout_ms:
            raise ValueError("ack_timeout_s must exceed delivery_timeout_ms (in seconds)")
        return self
