"""How far consumer groups are behind, and where topics end: read with the admin client only.

The one lag reader of the project (the operator's scaling, the load test's watch and the tests'
waits all use it). End offsets come from the partition leaders (the admin client's
``list_offsets``). Committed offsets come from the group coordinator through a consumer that
carries the group's id but never subscribes, so it never joins the group nor disturbs its
members. Not through the admin client's ``list_consumer_group_offsets``: its coordinator requests
abort the whole process when a connection drops mid-request (librdkafka #4605 and #3663, fix
pending in #5397; seen here with 2.16 on every broker restart under a lag watch), and a broker
restart is routine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import confluent_kafka
from confluent_kafka import (
    IsolationLevel,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import OffsetSpec

from fleetpipe.core.errors import GroupOffsetsUnavailable, KafkaError
from fleetpipe.core.kafka import Admin
from fleetpipe.core.transient import retry_kafka


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition of a group's input: what the group committed, where it ends, the gap."""

    topic: str
    partition: int
    # None where the group never committed an offset on this partition.
    committed: int | None
    end: int
    lag: int


# The answers while a group's offsets move to another broker or are being loaded after a
# restart: there is nothing to read yet, which is not a failure.
_COORDINATOR_MOVING = {
    # No coordinator found in time: the offsets topic is still being created, or moving.
    confluent_kafka.KafkaError._TIMED_OUT,
    confluent_kafka.KafkaError.NOT_COORDINATOR,
    confluent_kafka.KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    confluent_kafka.KafkaError.COORDINATOR_NOT_AVAILABLE,
}


def group_lag(admin: Admin, group_id: str, topics: Sequence[str]) -> list[PartitionLag]:
    """The lag of ``group_id`` on every partition of those ``topics`` that exist.

    Where the group committed, the lag is the end offset (the high watermark) minus the
    committed offset; where it never did, every retained record counts: the end offset minus the
    partition's first offset, as a group starting from the earliest record would see it.
    """
    tps = _partitions(admin, list(dict.fromkeys(topics)))
    if not tps:
        return []
    committed = committed_offsets(admin, group_id, tps)
    ends = _list_offsets(admin, tps, OffsetSpec.latest())
    never = [tp for tp in tps if committed[(tp.topic, tp.partition)] is None]
    starts = _list_offsets(admin, never, OffsetSpec.earliest()) if never else {}
    lags = []
    for tp in tps:
        at = (tp.topic, tp.partition)
        done = committed[at]
        start = done if done is not None else starts[at]
        lags.append(
            PartitionLag(
                topic=tp.topic,
                partition=tp.partition,
                committed=done,
                end=ends[at],
                lag=max(0, ends[at] - start),
            )
        )
    return lags


def committed_offsets(
    admin: Admin, group_id: str, partitions: Sequence[TopicPartition]
) -> dict[tuple[str, int], int | None]:
    """The group's committed offset per (topic, partition); ``None`` where it has none.

    Raises :class:`GroupOffsetsUnavailable` while the group's coordinator is moving or loading.
    """
    consumer = _group_client(admin, group_id)
    try:
        result = consumer.committed(list(partitions), timeout=admin.timeout_s)
    except KafkaException as exc:
        raise _group_error(group_id, "reading the committed offsets", exc) from exc
    finally:
        consumer.close()
    found: dict[tuple[str, int], int | None] = {}
    for tp in result:
        if tp.error is not None:
            raise KafkaError(
                f"reading the committed offset of group {group_id} on "
                f"{tp.topic}[{tp.partition}] failed: {tp.error}"
            )
        # A negative offset is librdkafka's "none" (OFFSET_INVALID).
        found[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else None
    return found


def end_offsets(admin: Admin, topic: str, *, read_committed: bool = False) -> dict[int, int]:
    """Each partition's end offset: the high watermark, or with ``read_committed`` the last
    stable offset. The two differ exactly where a transaction is open: records written but not
    committed yet."""
    tps = _partitions(admin, [topic])
    if not tps:
        raise KafkaError(f"cannot read the end offsets of {topic}: no such topic")
    isolation = IsolationLevel.READ_COMMITTED if read_committed else IsolationLevel.READ_UNCOMMITTED
    ends = _list_offsets(admin, tps, OffsetSpec.latest(), isolation=isolation)
    return {partition: offset for (_topic, partition), offset in sorted(ends.items())}


def commit_offsets(admin: Admin, group_id: str, topic: str, offsets: Mapping[int, int]) -> None:
    """Set an idle group's committed offsets on ``topic`` (the group must have no members)."""
    consumer = _group_client(admin, group_id)
    try:
        result = consumer.commit(
            offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False
        )
    except KafkaException as exc:
        raise _group_error(group_id, "committing offsets", exc) from exc
    finally:
        consumer.close()
    for tp in result or []:
        if tp.error is not None:
            raise KafkaError(
                f"committing the offset of group {group_id} on "
                f"{tp.topic}[{tp.partition}] failed: {tp.error}"
            )


def _group_client(admin: Admin, group_id: str) -> confluent_kafka.Consumer:
    # It never subscribes, so it never joins the group: committed() and commit() only talk to
    # the group's coordinator.
    return confluent_kafka.Consumer(
        {**admin.config, "group.id": group_id, "enable.auto.commit": False}
    )


def _group_error(group_id: str, what: str, exc: KafkaException) -> KafkaError:
    err = exc.args[0]
    if err.code() in _COORDINATOR_MOVING or err.retriable():
        return GroupOffsetsUnavailable(group_id, str(err))
    return KafkaError(f"{what} of group {group_id} failed: {err}")


def _partitions(admin: Admin, topics: Sequence[str]) -> list[TopicPartition]:
    # Kafka numbers a topic's partitions 0..n-1, and never removes one.
    try:
        counts = admin.partitions(topics)
    except KafkaException as exc:
        # No broker answers (a restart): the caller's KafkaError, not the client's exception.
        raise KafkaError(f"reading the partitions of {', '.join(topics)} failed: {exc}") from exc
    return [TopicPartition(t, p) for t in topics if t in counts for p in range(counts[t])]


def _list_offsets(
    admin: Admin,
    partitions: Sequence[TopicPartition],
    spec: OffsetSpec,
    *,
    isolation: IsolationLevel = IsolationLevel.READ_UNCOMMITTED,
) -> dict[tuple[str, int], int]:
    def request() -> dict[tuple[str, int], int]:
        futures = admin.client.list_offsets(
            {TopicPartition(tp.topic, tp.partition): spec for tp in partitions},
            isolation_level=isolation,
            request_timeout=admin.timeout_s,
        )
        return {(tp.topic, tp.partition): int(f.result().offset) for tp, f in futures.items()}

    # A partition's leader can be moving (or, for a new topic, not elected yet): such errors are
    # retriable and the request is repeated.
    offsets: dict[tuple[str, int], int] = retry_kafka(request, "listing offsets")
    return offsets
