"""Whether the topics ingest writes exist: not ready, with one line naming them, until they do.

Without this check a missing raw topic shows only as every batch timing out ("Kafka did not
confirm … retry") while the pod reports ready. Topics are listed through the admin client's
metadata, which never creates a topic, at start and then every ``interval_s``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from fleetpipe.core.settings import Topics

log = logging.getLogger(__name__)


class TopicLister(Protocol):
    def partitions(self, topics: Iterable[str] | None = None) -> dict[str, int]: ...


class TopicWatch:
    """The problem with ingest's topics, as one line, or None when they all exist."""

    def __init__(self, admin: TopicLister, topics: Sequence[tuple[str, str]]) -> None:
        self._admin = admin
        self._topics = list(topics)  # (setting, topic name)
        self.problem: str | None = "topics not checked yet"
        # Partition counts of the topics found at the last look (the sink places by them).
        self.partitions: dict[str, int] = {}

    def check(self) -> bool:
        """Look again; True when the verdict changed (it is then logged once)."""
        try:
            found = self._admin.partitions([name for _, name in self._topics])
        except Exception as exc:  # any failure to list is "cannot tell", said plainly
            problem: str | None = f"cannot list Kafka topics: {exc}"
        else:
            self.partitions = dict(found)
            missing = [(s, name) for s, name in self._topics if name not in found]
            problem = (
                "; ".join(
                    f"topic {name!r} ({s}) does not exist: create it or set {s}"
                    for s, name in missing
                )
                or None
            )
        if problem == self.problem:
            return False
        self.problem = problem
        if problem is None:
            log.info("topics present: %s", ", ".join(name for _, name in self._topics))
        else:
            log.error("not ready: %s", problem)
        return True


class Placing(Protocol):
    """What the readiness check needs of the sink (:class:`fleetpipe.ingest.sink.KafkaSink`)."""

    def use_partitions(self, count: int | None) -> bool: ...

    @property
    def unplaceable(self) -> str | None: ...


class IntakeReadiness:
    """Why ingest (or the MQTT bridge) cannot take a batch now, as one line, or None: its
    topics must exist, and the key groups must cover the raw topic's partitions, since batches
    are placed by that count."""

    def __init__(self, admin: TopicLister, topics: Topics, sink: Placing) -> None:
        self._raw = topics.raw
        self._sink = sink
        self.watch = TopicWatch(
            admin,
            [("FLEET_TOPICS__RAW", topics.raw), ("FLEET_TOPICS__DEADLETTER", topics.deadletter)],
        )

    async def check(self) -> str | None:
        """Look at the topics again (off the event loop) and hand the sink what was found."""
        await asyncio.to_thread(self.watch.check)
        self._sink.use_partitions(self.watch.partitions.get(self._raw))
        return self.watch.problem or self._sink.unplaceable
