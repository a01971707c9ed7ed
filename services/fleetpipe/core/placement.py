"""The partition of each keyed record a stage produces: the pipeline's key groups.

A producer of the consume loop (:class:`fleetpipe.core.records.Output`) names the partition of
every keyed record it sends to a pipeline topic, computed by :mod:`fleetpipe.core.keygroups`
from the record's key (the vehicle id) and the topic's partition count, so that its records
land where ingest's packs of the same vehicle do. The counts are asked of the cluster when a
topic is first produced to and again every ``refresh_s`` (librdkafka's own metadata interval,
``FLEET_KAFKA__METADATA_MAX_AGE_MS``): after partitions grow, records follow within that long.

Topics named ``unplaced`` (the dead-letter topic: few partitions, read by people) are left to
librdkafka's partitioner, as are records without a key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection

from fleetpipe.core.errors import KafkaError
from fleetpipe.core.kafka import KafkaException, Producer
from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.core.settings import KafkaSettings

log = logging.getLogger(__name__)

Key = bytes | str | None
# place(key) -> partition; -1 lets librdkafka's partitioner decide.
Place = Callable[[Key], int]


def _unplaced(_key: Key) -> int:
    return -1


class Placement:
    """Partitions of keyed records per topic, by key groups."""

    def __init__(
        self,
        groups: KeyGroups,
        count: Callable[[str, float], int],
        *,
        refresh_s: float,
        first_timeout_s: float = 5.0,
        refresh_timeout_s: float = 0.5,
        unplaced: Collection[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.groups = groups
        self._count = count
        self._refresh_s = refresh_s
        # A topic's first count is needed before anything goes to it; a refresh is not, and
        # waits little: a broker that does not answer must not hold the stage up for long
        # (the count is kept and asked again after refresh_s).
        self._first_timeout_s = first_timeout_s
        self._refresh_timeout_s = refresh_timeout_s
        self._unplaced = frozenset(unplaced)
        self._clock = clock
        self._counts: dict[str, tuple[int, float]] = {}  # topic -> (partitions, read at)

    def partitions(self, topic: str) -> int:
        """The topic's partition count, read again once ``refresh_s`` has passed.

        A failed re-read keeps the count known (a broker restart must not stop the stage); a
        topic never read raises :class:`KafkaError`."""
        now = self._clock()
        known = self._counts.get(topic)
        if known is not None and now - known[1] < self._refresh_s:
            return known[0]
        timeout_s = self._first_timeout_s if known is None else self._refresh_timeout_s
        try:
            count = self._count(topic, timeout_s)
        except (KafkaError, KafkaException) as exc:
            if known is None:
                raise
            log.warning("keeping %d partitions for %s: %s", known[0], topic, exc)
            self._counts[topic] = (known[0], now)
            return known[0]
        self.groups.check(count)
        if known is not None and known[0] != count:
            log.info("%s grew from %d to %d partitions", topic, known[0], count)
        self._counts[topic] = (count, now)
        return count

    def placer(self, topic: str) -> Place:
        """``place(key)`` for the records of one send to ``topic``."""
        if topic in self._unplaced:
            return _unplaced
        count = self.partitions(topic)
        group, groups = self.groups.group, self.groups.count

        def place(key: Key) -> int:
            return -1 if key is None else group(key) * count // groups

        return place


def producer_placement(
    kafka: KafkaSettings, producer: Producer, *, unplaced: Collection[str] = ()
) -> Placement:
    """The placement of a stage's producer: the pipeline's key groups, counts from the cluster."""
    return Placement(
        KeyGroups(kafka.key_groups),
        lambda topic, timeout_s: producer.partitions(topic, timeout=timeout_s),
        refresh_s=kafka.metadata_max_age_ms / 1000,
        first_timeout_s=kafka.call_timeout_ms / 1000,
        unplaced=unplaced,
    )
