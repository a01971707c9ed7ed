"""Delivery reports, read whatever they hold, in a callback that never raises.

librdkafka reports each record's fate from ``poll()`` and ``flush()`` through a callback. A
record that failed before it was placed (its topic refused to the principal) comes back without
a partition, and a report may come without a topic: it is then named by what this producer was
asked to produce.

A fatal error (a producer id refused to the principal) is raised by the library from ``poll()``
or ``flush()``, and the records it purges are reported while that exception is still pending:
every call in the callback then fails, ``msg.topic()`` first, with the library's exception as
the cause. The callback keeps that failure instead of raising it from inside the library (which
then returned NULL without an exception), and the producer's flush raises it in the words of
:mod:`fleetpipe.core.rights`.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

# Library errors are duck-typed here (``str()``): test fakes are read the same way.
LibraryError = Any


def record_place(msg: Any, *, produced: Set[str] = frozenset()) -> str:
    """``topic[partition]`` of a reported record, whatever the report holds.

    Without a topic in the report, the topic this producer was asked to produce to stands in
    (``produced``; a record never reaches another), or the topics it may have been, and the
    partition is left out when none was assigned yet."""
    topic: str | None = None
    partition: int | None = None
    if msg is not None:
        topic, partition = msg.topic(), msg.partition()
    if not topic:
        names = sorted(produced)
        topic = names[0] if len(names) == 1 else ("one of " + ", ".join(names) if names else "?")
    if partition is None or partition < 0:
        return topic
    return f"{topic}[{partition}]"


@dataclass(slots=True)
class DeliveryTracker:
    """The failed deliveries of one producer, from its delivery callback."""

    failures: list[str] = field(default_factory=list)
    # The topics produced to through the project's wrapper (a handful per producer).
    produced: set[str] = field(default_factory=set)

    # What failed inside the callback: the library's fatal error, as the cause of each call.
    pending: Exception | None = None

    def on_delivery(self, err: LibraryError | None, msg: Any) -> None:
        if err is None:
            return
        try:
            self.failures.append(f"{record_place(msg, produced=self.produced)}: {err.str()}")
        except Exception as exc:  # see the module's docstring: kept for the flush to raise
            if self.pending is None:
                self.pending = exc
