"""Reading topics by assigned partitions, outside any consumer group.

A reader never joins a group, so reading (a test checking a topic, a load test watching the
alerts, a service restoring its state) never rebalances the services that consume the topic.
Like every client of the core, a reader connects on first use, not when it is built.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple, TypedDict, Unpack

import confluent_kafka
from confluent_kafka import TopicPartition
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from fleetpipe.core.errors import KafkaError
from fleetpipe.core.kafka import BaseConsumer, Config, Message
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.transient import transient

log = logging.getLogger(__name__)

# Where a reader starts a partition: its first retained record.
OFFSET_BEGINNING: int = confluent_kafka.OFFSET_BEGINNING
# ... or the next record written after it starts.
OFFSET_END: int = confluent_kafka.OFFSET_END


class ReaderOptions(TypedDict, total=False):
    """What a reader may be given beyond its name and isolation (see :func:`reader_config`)."""

    partition_eof: bool
    group_id: str | None
    overrides: Mapping[str, str | int | float | bool] | None


def reader_config(
    kafka: KafkaSettings,
    *,
    client_id: str,
    read_committed: bool,
    partition_eof: bool = False,
    group_id: str | None = None,
    overrides: Mapping[str, str | int | float | bool] | None = None,
) -> Config:
    conf: Config = {
        **kafka.client_config(),
        # Never used to join a group (the reader is assigned its partitions), but it names the
        # reader in the broker's logs and nothing is ever committed under it.
        "group.id": group_id or f"{client_id}-reader",
        "client.id": client_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        # With it, the reader learns where each partition ends (an error event per partition).
        "enable.partition.eof": partition_eof,
    }
    conf.update(overrides or {})
    return conf


# Besides a leader moving: a topic not yet known to the broker answering (just created), or no
# answer in time. Asked again only until the caller's timeout.
_NOT_YET = frozenset(
    {
        confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART,
        # The client's metadata lacks the partition for now: a broker just restarted can answer
        # with a topic whose partitions it has not loaded (a restore read failed on it, and the
        # stage was restarted, in a broker-restart test in pods).
        confluent_kafka.KafkaError._UNKNOWN_PARTITION,
        confluent_kafka.KafkaError._TIMED_OUT,
        confluent_kafka.KafkaError._TRANSPORT,
    }
)


def _not_serving_yet(exc: BaseException) -> bool:
    if transient(exc):
        return True
    err = exc.args[0] if isinstance(exc, confluent_kafka.KafkaException) and exc.args else None
    return isinstance(err, confluent_kafka.KafkaError) and err.code() in _NOT_YET


class TopicReader(BaseConsumer):
    """A consumer of explicitly assigned partitions, with no group membership and no commits."""

    def partitions(self, topic: str, *, timeout_s: float = 10.0) -> list[int]:
        """The topic's partitions, in order; raises when the topic does not exist."""
        meta = self.client.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None:
            raise KafkaError(f"cannot read {topic}: {meta.error if meta else 'no such topic'}")
        return sorted(meta.partitions)

    def watermarks(self, topic: str, partition: int, *, timeout_s: float = 10.0) -> tuple[int, int]:
        """The partition's first and end offsets (the end as the reader's isolation sees it).

        A partition whose leader is not serving yet — just created, or its broker restarting —
        is asked again until ``timeout_s`` has passed; then :class:`KafkaError` names it."""
        retrying = Retrying(
            retry=retry_if_exception(_not_serving_yet),
            stop=stop_after_delay(timeout_s),
            wait=wait_exponential_jitter(multiplier=0.05, max=1.0),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    low, high = self.client.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=timeout_s
                    )
        except confluent_kafka.KafkaException as exc:
            raise KafkaError(f"cannot read the offsets of {topic}[{partition}]: {exc}") from exc
        return int(low), int(high)

    def assign(self, topic: str, offsets: Mapping[int, int]) -> None:
        """Read the partitions of ``topic`` named in ``offsets``, each from its offset."""
        self.client.assign([TopicPartition(topic, p, o) for p, o in offsets.items()])

    def positions(self, topic: str, partitions: Iterable[int]) -> dict[int, int]:
        """The offset of the next record the reader will return, per partition."""
        found = self.client.position([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: tp.offset for tp in found}


def build_reader(
    kafka: KafkaSettings,
    *,
    client_id: str,
    read_committed: bool,
    **options: Unpack[ReaderOptions],
) -> TopicReader:
    """A reader of assigned partitions; it connects on first use."""
    return TopicReader(
        reader_config(kafka, client_id=client_id, read_committed=read_committed, **options)
    )


def is_partition_eof(msg: Message) -> bool:
    """Whether ``msg`` is not a record but the event of a reader reaching a partition's end."""
    err = msg.error()
    return err is not None and err.code() == confluent_kafka.KafkaError._PARTITION_EOF


class Latest(NamedTuple):
    """A key's newest value in a table topic, and where it was read."""

    value: bytes
    partition: int
    offset: int


def read_table(
    kafka: KafkaSettings,
    topic: str,
    *,
    client_id: str,
    read_committed: bool = True,
    timeout_s: float = 120.0,
    batch: int = 10_000,
) -> dict[bytes, bytes]:
    """The latest value of every key of a (compacted) topic, as of the call (see
    :func:`read_latest`)."""
    latest = read_latest(
        kafka,
        topic,
        client_id=client_id,
        read_committed=read_committed,
        timeout_s=timeout_s,
        batch=batch,
    )
    return {key: found.value for key, found in latest.items()}


def read_latest(
    kafka: KafkaSettings,
    topic: str,
    *,
    client_id: str,
    read_committed: bool = True,
    timeout_s: float = 120.0,
    batch: int = 10_000,
    newer: Callable[[bytes, bytes], bool] | None = None,
) -> dict[bytes, Latest]:
    """The latest value of every key of a (compacted) topic, as of the call, with the partition
    and offset it was read at (so a value that turns out unreadable can be dead-lettered with
    its coordinates).

    Within a partition the later record wins. A key found in two partitions (the topic grew and
    its keys moved) has no order between them that the read can see: ``newer(candidate, held)``
    decides from the values (without it, whichever was read last wins), and a tombstone removes
    only a value of its own partition.

    Every partition is read from its beginning up to the end offset it had when the call began,
    in large batches; a tombstone (a record without value) removes its key. With
    ``read_committed`` the records of aborted transactions are skipped and an open transaction
    is waited for (at most the producer's transaction timeout), because it may still commit.
    Used to restore state from a changelog: 100K keys of a few hundred bytes take about a
    second.
    """
    reader = build_reader(
        kafka,
        client_id=client_id,
        read_committed=read_committed,
        # Tells the reader where each partition ends, past any transaction markers.
        partition_eof=True,
        group_id=f"{client_id}-table-reader",
        overrides={
            "max.partition.fetch.bytes": 16 * 1024 * 1024,
            "fetch.max.bytes": 64 * 1024 * 1024,
        },
    )
    table: dict[bytes, Latest] = {}
    try:
        ends: dict[int, int] = {}
        starts: dict[int, int] = {}
        for p in reader.partitions(topic, timeout_s=timeout_s):
            low, high = reader.watermarks(topic, p, timeout_s=timeout_s)
            if high > low:
                ends[p] = high
                starts[p] = low
        # The extent read: the first question when a restored state looks old.
        log.info(
            "reading %s: %s",
            topic,
            ", ".join(f"[{p}] {starts[p]}..{ends[p]}" for p in sorted(ends)) or "empty",
        )
        if not ends:
            return table
        reader.assign(topic, starts)
        deadline = time.monotonic() + timeout_s
        while ends:
            if time.monotonic() > deadline:
                raise KafkaError(
                    f"reading {topic} to its end took over {timeout_s:.0f}s; "
                    f"partitions still behind: {sorted(ends)}"
                )
            msgs = reader.consume(batch, 0.5)
            for msg in msgs:
                err = msg.error()
                if err is not None:
                    if is_partition_eof(msg):
                        at, offset = msg.partition(), msg.offset()
                        if (
                            at is not None
                            and offset is not None
                            and offset >= ends.get(at, offset + 1)
                        ):
                            del ends[at]
                        continue
                    if err.fatal():
                        raise KafkaError(f"reading {topic} failed: {err}")
                    log.warning("reading %s: %s", topic, err)
                    continue
                key = msg.key()
                if key is None:
                    continue
                value = msg.value()
                partition = _or_minus_one(msg.partition())
                held = table.get(key)
                if held is None or held.partition == partition:
                    if value is None:
                        table.pop(key, None)
                    else:
                        table[key] = Latest(value, partition, _or_minus_one(msg.offset()))
                elif value is not None and (newer is None or newer(value, held.value)):
                    table[key] = Latest(value, partition, _or_minus_one(msg.offset()))
            if not msgs and ends:
                # Transaction markers at a partition's tail are never returned as messages: the
                # reader's position says whether it has passed them.
                for p, offset in reader.positions(topic, ends).items():
                    if offset >= ends[p]:
                        del ends[p]
        return table
    finally:
        reader.close()


def _or_minus_one(value: int | None) -> int:
    return -1 if value is None else value
