"""What the consume loop (fleetpipe.core.loop) asks of a service: a handler of batches."""

from __future__ import annotations

from typing import Any, Protocol

from fleetpipe.core.kafka import TopicPartition
from fleetpipe.core.records import Output, Record


class RetryLater(Exception):
    """Raised by a handler when a dependency is unavailable; the batch is retried later."""


class Handler(Protocol):
    def handle(self, records: list[Record[Any]], out: Output) -> None:
        """Process one batch. Called with at least one record."""

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        """Partitions were assigned: restore their state before their first record arrives."""

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        """Partitions are leaving this process: flush or drop their state."""

    def on_tick(self, now: float, out: Output) -> None:
        """Processing-time timers (for example, vehicles gone silent)."""


class BaseHandler:
    """No-op hooks, so handlers implement only what they need."""

    def handle(self, records: list[Record[Any]], out: Output) -> None:
        raise NotImplementedError

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        return None

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        return None

    def on_tick(self, now: float, out: Output) -> None:
        return None
