"""Hand-written fakes of the ports that the code under test takes (no mock patching).

Each implements a ``Protocol`` the code declares, so mypy checks that the fake still fits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fleetpipe.core.kafka import DeliveryCallback, Headers, ProducerClient
from fleetpipe.core.records import OutputProducer


@dataclass(frozen=True)
class Produced:
    """One record handed to a producer."""

    topic: str
    key: bytes | str | None
    value: bytes | None
    headers: Headers | None
    partition: int = -1  # -1: librdkafka's partitioner would place it


@dataclass
class RecordingClient(ProducerClient):
    """The library producer as :class:`fleetpipe.core.kafka.ProducerClient`: keeps every record."""

    sent: list[Produced] = field(default_factory=list)

    def produce(
        self,
        topic: str,
        value: str | bytes | None = None,
        key: str | bytes | None = None,
        partition: int = -1,
        callback: DeliveryCallback | None = None,
        on_delivery: DeliveryCallback | None = None,
        timestamp: int = 0,
        headers: Headers | None = None,
    ) -> None:
        payload = value.encode() if isinstance(value, str) else value
        self.sent.append(Produced(topic, key, payload, headers, partition))

    def poll(self, timeout: float = -1) -> int:
        return 0

    def flush(self, timeout: float = -1) -> int:
        return 0


class RecordingProducer(OutputProducer):
    """The core's producer as an ``Output`` takes it (``OutputProducer``): records go to
    :attr:`sent` in the order sent, whether through the wrapper or straight to its client."""

    def __init__(self) -> None:
        self._client = RecordingClient()

    @property
    def client(self) -> RecordingClient:
        return self._client

    @property
    def sent(self) -> list[Produced]:
        return self._client.sent

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | str | None = None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> None:
        self._client.produce(
            topic, value, key, -1 if partition is None else partition, headers=headers
        )

    def poll(self, timeout: float = 0.0) -> int:
        return 0
