"""What a producer learns after ``produce()`` returned: failed deliveries and fatal errors.

librdkafka reports both from ``poll()`` and ``flush()``, through callbacks that must never
raise: an exception there surfaces from the poll of whichever thread served it, far from the
cause (ingest's poller thread died of one). So a report is read defensively — a record that
failed before it was placed may come without a topic or partition, and then it is named by
what this producer was asked to produce — and a fatal error is kept, with the principal it
concerns, for the producer's next flush to raise as the project's own error.
"""

from __future__ import annotations

import logging
from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

from fleetpipe.core.errors import KafkaError
from fleetpipe.core.rights import producer_refusal

log = logging.getLogger(__name__)

# Library errors are duck-typed here (``str()``, ``fatal()``, ``code()``, ``name()``):
# delivery reports of test fakes are read the same way.
LibraryError = Any


def record_place(msg: Any, *, produced: Set[str] = frozenset()) -> str:
    """``topic[partition]`` of a reported record, whatever the report holds.

    Without a topic in the report, the topic this producer was asked to produce to stands in
    (``produced``; a record never reaches another), or the topics it may have been, and the
    partition is left out when none was assigned yet."""
    topic: str | None = None
    partition: int | None = None
    if msg is not None:
        try:
            topic = msg.topic()
            partition = msg.partition()
        except Exception:  # a report whose record is gone: name it by what was produced
            topic, partition = None, None
    if not topic:
        names = sorted(produced)
        topic = names[0] if len(names) == 1 else ("one of " + ", ".join(names) if names else "?")
    if partition is None or partition < 0:
        return topic
    return f"{topic}[{partition}]"


@dataclass(slots=True)
class DeliveryTracker:
    """Failed deliveries and the first fatal error of one producer, from its callbacks.

    ``principal`` is the Kafka login the producer runs as (``User:...``), for the message of
    a refusal; ``transactional_id`` the producer's, if it is a transactional one.
    """

    principal: str
    transactional_id: str | None = None
    failures: list[str] = field(default_factory=list)
    # The topics produced to through the project's wrapper (a handful per producer).
    produced: set[str] = field(default_factory=set)
    # The first fatal error, as the error the next flush raises.
    fatal: KafkaError | None = None

    def on_delivery(self, err: LibraryError | None, msg: Any) -> None:
        if err is not None:
            self.failures.append(f"{record_place(msg, produced=self.produced)}: {err.str()}")

    def on_error(self, err: LibraryError) -> None:
        """librdkafka's ``error_cb``: a fatal error is kept; the others, which librdkafka
        retries itself, are logged as librdkafka logs them when no callback is set."""
        if not err.fatal():
            log.warning("Kafka producer of %s: %s", self.principal, err.str())
            return
        if self.fatal is None:
            self.fatal = producer_refusal(
                err, principal=self.principal, transactional_id=self.transactional_id
            ) or KafkaError(f"the Kafka producer of {self.principal} failed for good: {err.str()}")
