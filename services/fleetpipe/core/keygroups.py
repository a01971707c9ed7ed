"""Where a vehicle's records go: key groups, assigned to partitions by contiguous range.

Every record about a vehicle lands on the same partition number of every co-partitioned topic,
and a stateful consumer must know which vehicles its partitions hold. Kafka's default
placement (murmur2 of the key modulo the partition count) needs a key on every record, but a
pack (:mod:`fleetpipe.core.packs`) holds many vehicles' events in one record, so the producer
chooses the partition itself. The mapping it uses is this module's, and it is the only one in
the project:

* A pipeline has a fixed number of **key groups** ``G`` (``FLEET_KAFKA__KEY_GROUPS``, default
  4096), set once and never changed while its topics hold data.
* vehicle → group: Kafka's murmur2 of the vehicle id, made positive, modulo ``G``
  (:func:`fleetpipe.core.partitioner.partition_for` with ``G`` "partitions"), so any Kafka
  client can compute it.
* group → partition: contiguous ranges, ``group * P // G`` for ``P`` partitions, as Flink
  assigns key groups to subtasks. Partition ``p`` holds groups ``ceil(p*G/P)`` up to (not
  including) ``ceil((p+1)*G/P)``.

Why ranges rather than murmur2 modulo ``P``: when the partitions grow, modulo moves single
vehicles scattered over every group, whereas ranges move *whole groups*: growing 50 → 100
splits each partition's range in two halves (partition ``k``'s groups go to ``2k`` and
``2k + 1``), so state can be handed over per group and a consumer can tell from a group number
alone where its vehicles went. ``P`` may not exceed ``G`` — a partition with no group would
never receive a record — and is refused with :class:`TooManyPartitions`. 4096 groups cover the
operator's largest sizing (100K vehicles at 25 per partition) with room, and cost nothing at
run time: a vehicle's group is computed once per process and cached.

Records of the low-volume topics (alerts, trips, scores, notifications, the state changelog)
keep their ``vehicle_id`` key, but are placed by the same mapping: the partition is passed to
the producer explicitly. librdkafka's own partitioner (murmur2, see
:mod:`fleetpipe.core.partitioner`) still places records whose producer does not name one: dead
letters, which nobody reads co-partitioned.
"""

from __future__ import annotations

from fleetpipe.core.errors import ConfigError
from fleetpipe.core.partitioner import partition_for

DEFAULT_KEY_GROUPS = 4096

# Distinct vehicle ids whose group is remembered before the cache starts over: well above the
# largest fleet (100K vehicles), and far below what would matter for memory (~100 B each).
_CACHE_LIMIT = 1_000_000


class TooManyPartitions(ConfigError):
    """A topic has more partitions than the pipeline has key groups."""

    def __init__(self, partitions: int, groups: int) -> None:
        super().__init__(
            f"{partitions} partitions but only {groups} key groups: a partition without a key "
            f"group would never receive a record. Use at most {groups} partitions, or a larger "
            "FLEET_KAFKA__KEY_GROUPS for a new pipeline (it cannot change while topics hold data)"
        )
        self.partitions = partitions
        self.groups = groups


class KeyGroups:
    """The mapping vehicle → key group → partition of one pipeline."""

    __slots__ = ("_groups", "count")

    def __init__(self, count: int = DEFAULT_KEY_GROUPS) -> None:
        if count < 1:
            raise ConfigError(f"a pipeline has at least one key group, not {count}")
        self.count = count
        self._groups: dict[str | bytes, int] = {}

    def group(self, key: str | bytes) -> int:
        """The key group of a vehicle id (murmur2 modulo the group count)."""
        group = self._groups.get(key)
        if group is None:
            groups = self._groups
            if len(groups) >= _CACHE_LIMIT:
                groups.clear()
            group = groups[key] = partition_for(key, self.count)
        return group

    def check(self, partitions: int) -> None:
        """Refuse a partition count this mapping cannot serve."""
        if partitions < 1:
            raise ConfigError(f"a topic has at least one partition, not {partitions}")
        if partitions > self.count:
            raise TooManyPartitions(partitions, self.count)

    def partition_of_group(self, group: int, partitions: int) -> int:
        """The partition holding ``group`` in a topic of ``partitions`` partitions."""
        return group * partitions // self.count

    def partition(self, key: str | bytes, partitions: int) -> int:
        """The partition of a vehicle id in a topic of ``partitions`` partitions."""
        if not 0 < partitions <= self.count:
            self.check(partitions)
        return self.group(key) * partitions // self.count

    def groups_of(self, partition: int, partitions: int) -> range:
        """The key groups partition ``partition`` holds: one contiguous range."""
        self.check(partitions)
        if not 0 <= partition < partitions:
            raise ValueError(f"partition {partition} is not one of {partitions}")
        g = self.count
        # The smallest group whose group * P // G reaches p is ceil(p * G / P).
        return range(-(-partition * g // partitions), -(-(partition + 1) * g // partitions))
