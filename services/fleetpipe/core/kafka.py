"""Thin wrappers around confluent-kafka with FleetPipe's safe defaults.

Nothing connects in ``__init__``: a wrapper builds its client on :meth:`open` (or on first use),
so objects can be created, configured and passed around freely, and tests can build them without
a broker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewPartitions, NewTopic

from fleetpipe.core.errors import DeliveryError, KafkaError
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.topics import TopicAction, TopicChange, TopicSpec

log = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]
Config = dict[str, str | int | float | bool]

# Every FleetPipe producer places keys as the Java client does (murmur2), never with
# confluent-kafka's default CRC32: stateful consumers recompute the mapping with
# fleetpipe.core.partitioner, and Java or Kafka Streams tools must agree with it.
PARTITIONER = "murmur2_random"


def producer_config(
    kafka: KafkaSettings,
    *,
    client_id: str,
    transactional_id: str | None = None,
    overrides: Mapping[str, str | int | float | bool] | None = None,
) -> Config:
    conf: Config = {
        **kafka.client_config(),
        "client.id": client_id,
        # Durability: every in-sync replica has the record before it counts as delivered, and
        # retries never duplicate or reorder (idempotent producer).
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": kafka.compression_type,
        "linger.ms": kafka.linger_ms,
        "batch.size": kafka.batch_size,
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        # Retry for as long as it takes (bounded by delivery.timeout.ms) rather than drop data.
        "delivery.timeout.ms": 120_000,
        "partitioner": PARTITIONER,
        "topic.metadata.refresh.interval.ms": kafka.metadata_max_age_ms,
    }
    if transactional_id is not None:
        conf["transactional.id"] = transactional_id
        conf["transaction.timeout.ms"] = kafka.transaction_timeout_ms
        conf["retry.backoff.ms"] = kafka.transaction_retry_backoff_ms
        # librdkafka requires a record's delivery to time out no later than its transaction.
        conf["delivery.timeout.ms"] = kafka.transaction_timeout_ms
    conf.update(overrides or {})
    return conf


def consumer_config(
    kafka: KafkaSettings,
    *,
    group_id: str,
    client_id: str,
    read_committed: bool,
    overrides: Mapping[str, str | int | float | bool] | None = None,
) -> Config:
    conf: Config = {
        **kafka.client_config(),
        "group.id": group_id,
        "client.id": client_id,
        # Offsets are committed by the loop, after the outputs are safe, never in the background.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        "session.timeout.ms": kafka.session_timeout_ms,
        "fetch.min.bytes": kafka.fetch_min_bytes,
        "fetch.wait.max.ms": kafka.fetch_wait_max_ms,
        "queued.min.messages": 20_000,
        "enable.partition.eof": False,
        "topic.metadata.refresh.interval.ms": kafka.metadata_max_age_ms,
    }
    conf.update(overrides or {})
    return conf


@dataclass(slots=True)
class _DeliveryTracker:
    failures: list[str]

    def on_delivery(
        self, err: confluent_kafka.KafkaError | None, msg: confluent_kafka.Message
    ) -> None:
        if err is not None:
            self.failures.append(f"{msg.topic()}[{msg.partition()}]: {err.str()}")


class Producer:
    """An idempotent (optionally transactional) producer that reports failed deliveries."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        client_id: str,
        transactional_id: str | None = None,
        overrides: Mapping[str, str | int | float | bool] | None = None,
        report_every_delivery: bool = False,
    ) -> None:
        self._config = producer_config(
            kafka, client_id=client_id, transactional_id=transactional_id, overrides=overrides
        )
        self.transactional = transactional_id is not None
        # Callers that must know when each record is safe (ingest acknowledges a gRPC batch only
        # then) pass per-record ``on_delivery`` callbacks and need successes reported too.
        self._report_every_delivery = report_every_delivery
        self._client: confluent_kafka.Producer | None = None
        self._tracker = _DeliveryTracker(failures=[])

    @property
    def client(self) -> confluent_kafka.Producer:
        if self._client is None:
            self.open()
        assert self._client is not None
        return self._client

    def open(self, *, init_timeout_s: float = 60.0) -> None:
        if self._client is not None:
            return
        # Delivery reports only for failures: a Python callback per delivered record would cost
        # about a microsecond each on the hot path, for no information.
        self._client = confluent_kafka.Producer(
            {
                **self._config,
                "delivery.report.only.error": not self._report_every_delivery,
                "on_delivery": self._tracker.on_delivery,
            }
        )
        if self.transactional:
            # Fences any earlier producer with the same transactional.id and aborts its open
            # transaction, so a restarted process never leaves a zombie transaction behind.
            _retry_kafka(lambda: self.client.init_transactions(init_timeout_s), "init_transactions")

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | str | None = None,
        headers: Headers | None = None,
        partition: int | None = None,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> None:
        client = self.client
        kwargs: dict[str, Any] = {}
        if headers:
            kwargs["headers"] = headers
        if partition is not None:
            kwargs["partition"] = partition
        if on_delivery is not None:
            kwargs["on_delivery"] = on_delivery
        while True:
            try:
                client.produce(topic, value, key, **kwargs)
                return
            except BufferError:
                # The local queue is full: serve delivery reports until there is room. The
                # queue's bound is what keeps memory bounded under a slow broker.
                client.poll(0.05)

    def poll(self, timeout: float = 0.0) -> int:
        return int(self.client.poll(timeout))

    def flush(self, timeout: float = 120.0) -> None:
        """Wait until every record so far is acknowledged; raise if any was not."""
        remaining = self.client.flush(timeout)
        if remaining:
            raise DeliveryError([f"{remaining} record(s) still in flight after {timeout}s"])
        self.raise_for_failures()

    def raise_for_failures(self) -> None:
        if self._tracker.failures:
            failures, self._tracker.failures = self._tracker.failures, []
            raise DeliveryError(failures)

    def discard_failures(self) -> None:
        """Forget failed deliveries: after an abort, the purged records report as failed."""
        self.client.poll(0)
        self._tracker.failures.clear()

    def in_flight(self) -> int:
        return len(self.client)

    def close(self, timeout: float = 30.0) -> None:
        if self._client is not None:
            self._client.flush(timeout)
            self._client = None


class Consumer:
    """A consumer in a group with manual offset commits."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        group_id: str,
        client_id: str,
        read_committed: bool,
        overrides: Mapping[str, str | int | float | bool] | None = None,
    ) -> None:
        self._config = consumer_config(
            kafka,
            group_id=group_id,
            client_id=client_id,
            read_committed=read_committed,
            overrides=overrides,
        )
        self.group_id = group_id
        self._client: confluent_kafka.Consumer | None = None

    @property
    def client(self) -> confluent_kafka.Consumer:
        if self._client is None:
            self._client = confluent_kafka.Consumer(self._config)
        return self._client

    def subscribe(
        self,
        topics: Sequence[str],
        *,
        on_assign: Callable[[Any, list[TopicPartition]], None] | None = None,
        on_revoke: Callable[[Any, list[TopicPartition]], None] | None = None,
        on_lost: Callable[[Any, list[TopicPartition]], None] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {}
        if on_assign:
            kwargs["on_assign"] = on_assign
        if on_revoke:
            kwargs["on_revoke"] = on_revoke
        if on_lost:
            kwargs["on_lost"] = on_lost
        self.client.subscribe(list(topics), **kwargs)

    def consume(self, max_records: int, timeout: float) -> list[confluent_kafka.Message]:
        return list(self.client.consume(max_records, timeout))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def read_table(
    kafka: KafkaSettings,
    topic: str,
    *,
    client_id: str,
    read_committed: bool = True,
    timeout_s: float = 120.0,
    batch: int = 10_000,
) -> dict[bytes, bytes]:
    """The latest value of every key of a (compacted) topic, as of the call.

    Every partition is read from its beginning up to the end offset it had when the call began,
    in large batches; a tombstone (a record without value) removes its key. With
    ``read_committed`` the records of aborted transactions are skipped and an open transaction
    is waited for (at most the producer's transaction timeout), because it may still commit.
    Used to restore state from a changelog: 100K keys of a few hundred bytes take about a
    second.
    """
    consumer = confluent_kafka.Consumer(
        {
            **kafka.client_config(),
            "group.id": f"{client_id}-table-reader",
            "client.id": client_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            # Tells the reader where each partition ends, past any transaction markers.
            "enable.partition.eof": True,
            "max.partition.fetch.bytes": 16 * 1024 * 1024,
            "fetch.max.bytes": 64 * 1024 * 1024,
        }
    )
    table: dict[bytes, bytes] = {}
    try:
        md = consumer.list_topics(topic, timeout=timeout_s)
        meta = md.topics.get(topic)
        if meta is None or meta.error is not None:
            raise KafkaError(f"cannot read {topic}: {meta.error if meta else 'no such topic'}")
        ends: dict[int, int] = {}
        starts: list[TopicPartition] = []
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
            if high > low:
                ends[p] = high
                starts.append(TopicPartition(topic, p, low))
        if not ends:
            return table
        consumer.assign(starts)
        deadline = time.monotonic() + timeout_s
        eof = confluent_kafka.KafkaError._PARTITION_EOF
        while ends:
            if time.monotonic() > deadline:
                raise KafkaError(
                    f"reading {topic} to its end took over {timeout_s:.0f}s; "
                    f"partitions still behind: {sorted(ends)}"
                )
            msgs = consumer.consume(batch, 0.5)
            for msg in msgs:
                err = msg.error()
                if err is not None:
                    if err.code() == eof:
                        p, offset = msg.partition(), msg.offset()
                        if (
                            p is not None
                            and offset is not None
                            and offset >= ends.get(p, offset + 1)
                        ):
                            del ends[p]
                        continue
                    if err.fatal():
                        raise KafkaError(f"reading {topic} failed: {err}")
                    log.warning("reading %s: %s", topic, err)
                    continue
                key = msg.key()
                if key is None:
                    continue
                value = msg.value()
                if value is None:
                    table.pop(key, None)
                else:
                    table[key] = value
            if not msgs and ends:
                # Transaction markers at a partition's tail are never returned as messages: the
                # consumer's position says whether it has passed them.
                for tp in consumer.position([TopicPartition(topic, p) for p in ends]):
                    if tp.offset >= ends[tp.partition]:
                        del ends[tp.partition]
        return table
    finally:
        consumer.close()


def _retry_kafka(call: Callable[[], Any], what: str, attempts: int = 10) -> Any:
    delay = 0.5
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except KafkaException as exc:
            err = exc.args[0]
            if attempt == attempts or not getattr(err, "retriable", lambda: False)():
                raise KafkaError(f"{what} failed: {err}") from exc
            log.warning("%s failed (%s), retrying in %.1fs", what, err, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10)
    raise AssertionError("unreachable")


class Admin:
    """Topic administration: create, grow and describe. Never shrinks or deletes data by itself."""

    def __init__(self, kafka: KafkaSettings, *, timeout_s: float = 30.0) -> None:
        self._config: Config = {**kafka.client_config()}
        self._timeout = timeout_s
        self._client: AdminClient | None = None

    @property
    def client(self) -> AdminClient:
        if self._client is None:
            self._client = AdminClient(self._config)
        return self._client

    def partitions(self, topics: Iterable[str] | None = None) -> dict[str, int]:
        """Partition counts of existing topics (all topics when ``topics`` is None)."""
        md = self.client.list_topics(timeout=self._timeout)
        wanted = None if topics is None else set(topics)
        return {
            name: len(t.partitions)
            for name, t in md.topics.items()
            if t.error is None and (wanted is None or name in wanted)
        }

    def ensure_topics(self, specs: Sequence[TopicSpec]) -> dict[str, TopicChange]:
        """Create missing topics and grow those with too few partitions.

        Returns what was done per topic: created, grown, ok, or kept when fewer partitions were
        asked than exist — Kafka cannot shrink a topic, and doing so by re-creation would lose
        data.
        """
        existing = self.partitions([s.name for s in specs])
        asked = {s.name: s.partitions for s in specs}
        actions: dict[str, TopicChange] = {}
        to_create = [
            NewTopic(
                s.name,
                num_partitions=s.partitions,
                replication_factor=s.replication_factor,
                config=dict(s.config or {}),
            )
            for s in specs
            if s.name not in existing
        ]
        if to_create:
            for name, fut in self.client.create_topics(
                to_create, request_timeout=self._timeout
            ).items():
                try:
                    fut.result()
                    actions[name] = TopicChange(TopicAction.CREATED, 0, asked[name], asked[name])
                except KafkaException as exc:
                    if exc.args[0].code() != confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:
                        raise KafkaError(f"creating topic {name} failed: {exc.args[0]}") from exc
                    # Created meanwhile by someone else, presumably as asked.
                    actions[name] = TopicChange(
                        TopicAction.OK, asked[name], asked[name], asked[name]
                    )
        to_grow = [s for s in specs if s.name in existing and existing[s.name] < s.partitions]
        if to_grow:
            futures = self.client.create_partitions(
                [NewPartitions(s.name, s.partitions) for s in to_grow],
                request_timeout=self._timeout,
            )
            for s in to_grow:
                try:
                    futures[s.name].result()
                except KafkaException as exc:
                    raise KafkaError(f"growing topic {s.name} failed: {exc.args[0]}") from exc
                actions[s.name] = TopicChange(
                    TopicAction.GROWN, existing[s.name], s.partitions, s.partitions
                )
        for s in specs:
            if s.name in existing and s.name not in actions:
                have = existing[s.name]
                action = TopicAction.OK if have == s.partitions else TopicAction.KEPT
                actions[s.name] = TopicChange(action, have, have, s.partitions)
        return actions

    def delete_topics(self, names: Sequence[str]) -> None:
        # librdkafka crashes the process when a name appears twice in one request.
        unique = list(dict.fromkeys(names))
        if not unique:
            return
        for name, fut in self.client.delete_topics(unique, request_timeout=self._timeout).items():
            try:
                fut.result()
            except KafkaException as exc:
                if exc.args[0].code() != confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise KafkaError(f"deleting topic {name} failed: {exc.args[0]}") from exc

    def group_lag(self, group_id: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
        """Lag per partition of a consumer group: high watermark minus committed offset."""
        md = self.client.list_topics(timeout=self._timeout)
        tps = [
            TopicPartition(t, p) for t in topics if t in md.topics for p in md.topics[t].partitions
        ]
        if not tps:
            return {}
        probe = confluent_kafka.Consumer(
            {**self._config, "group.id": group_id, "enable.auto.commit": False}
        )
        try:
            committed = probe.committed(tps, timeout=self._timeout)
            lag: dict[tuple[str, int], int] = {}
            for tp in committed:
                _low, high = probe.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), timeout=self._timeout
                )
                start = tp.offset if tp.offset >= 0 else _low
                lag[(tp.topic, tp.partition)] = max(0, high - start)
            return lag
        finally:
            probe.close()
