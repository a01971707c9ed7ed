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

    def before_commit(self, out: Output) -> None:
        """The loop is about to commit every batch since its last commit (in exactly-once mode,
        inside their transaction, right before the consumed offsets): write what is kept per
        key once per commit, the latest of each key, rather than once per batch. Not called
        for a commit window that is given up: ``on_revoke`` follows then."""


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

    def before_commit(self, out: Output) -> None:
        return None
