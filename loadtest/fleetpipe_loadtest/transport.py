"""Which protocol the load driver and the simulator speak to the pipeline, and the one shape
every sender has: batches of encoded events in (``send``), acknowledgements counted
(``stats``), everything acknowledged at the end (``drain``).

- ``grpc``: ``TelemetryIngest/Stream`` calls to ingest (``sender.py``).
- ``mqtt``: QoS 1 publishes to the broker, one per event on its vehicle's topic, as the fleet's
  gateway account (``mqttsender.py``); ``target`` is the broker.
- ``http``: ``POST /v1/fleets/{fleet}/telemetry`` with JSON arrays (``httpsender.py``);
  ``target`` is ingest's HTTP listener.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    # The command line names the protocols without loading a client library.
    from fleetpipe_loadtest.sender import SendStats


class Transport(StrEnum):
    GRPC = "grpc"
    MQTT = "mqtt"
    HTTP = "http"


class BatchSender(Protocol):
    stats: SendStats

    async def __aenter__(self) -> BatchSender: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def send(self, stream: int, body: bytes, count: int) -> None: ...

    def unacked(self) -> int: ...

    async def drain(self, timeout: float | None = None) -> bool: ...


def make_sender(
    transport: Transport,
    target: str,
    *,
    token: str,
    fleet_id: str,
    streams: int,
    window: int,
    batch_size: int,
    client_tag: str,
    root_certificates: bytes | None = None,
) -> BatchSender:
    """A sender of ``transport`` to ``target``; ``client_tag`` names its MQTT connections."""
    if transport is Transport.MQTT:
        from fleetpipe_loadtest.mqttsender import MqttSender

        return MqttSender(
            target,
            token=token,
            fleet_id=fleet_id,
            streams=streams,
            max_unacked=window * batch_size,
            client_tag=client_tag,
            root_certificates=root_certificates,
        )
    if transport is Transport.HTTP:
        from fleetpipe_loadtest.httpsender import HttpSender

        return HttpSender(target, token=token, fleet_id=fleet_id, streams=streams, window=window)
    from fleetpipe_loadtest.sender import Sender

    return Sender(
        target, token=token, streams=streams, window=window, root_certificates=root_certificates
    )
