"""Thin wrappers around confluent-kafka with FleetPipe's safe defaults: FleetPipe's Kafka edge.

Every Kafka client of the project is built here or in another ``fleetpipe.core`` module (see the
``build_*`` functions); code outside the core never imports ``confluent_kafka`` and takes the few
library types it names (messages, partitions, the library's exception) from this module.

Nothing connects in ``__init__``: a wrapper builds its client on :meth:`open` (or on first use),
so objects can be created, configured and passed around freely, and tests can build them without
a broker.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn, Protocol

import confluent_kafka
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from fleetpipe.core.deliveries import DeliveryTracker
from fleetpipe.core.errors import DeliveryError, KafkaError, ProducerQueueFull
from fleetpipe.core.rights import principal_of, raise_if_refused
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.topics import TopicAction, TopicChange, TopicSpec
from fleetpipe.core.transient import poll_until, retry_kafka

log = logging.getLogger(__name__)

# The library's types that code outside the core names (in signatures and type hints); they are
# re-exported so that only ``fleetpipe.core`` imports ``confluent_kafka``.
Message = confluent_kafka.Message
TopicPartition = confluent_kafka.TopicPartition
KafkaException = confluent_kafka.KafkaException

Headers = list[tuple[str, str | bytes | None]]
Config = dict[str, str | int | float | bool]
DeliveryCallback = Callable[[Any, Any], None]


class ProducerClient(Protocol):
    """The library producer's calls that hot paths outside the core make on
    :attr:`Producer.client` directly (one Python call per record, no wrapper in between).

    Written down as a port so that code taking a producer can be handed a test's fake.
    """

    def produce(
        self,
        topic: str,
        value: str | bytes | None = None,
        key: str | bytes | None = None,
        partition: int = -1,
        callback: DeliveryCallback | None = None,
        on_delivery: DeliveryCallback | None = None,
        timestamp: int = 0,
        headers: Headers | None = None,
    ) -> None: ...

    def poll(self, timeout: float = -1) -> int: ...

    def flush(self, timeout: float = -1) -> int: ...


# Every FleetPipe producer places keys as the Java client does (murmur2), never with
# confluent-kafka's default CRC32: stateful consumers recompute the mapping with
# fleetpipe.core.partitioner, and Java or Kafka Streams tools must agree with it.
PARTITIONER = "murmur2_random"

# Beyond delivery.timeout.ms, how long a full producer queue may take to free room.
_QUEUE_FULL_MARGIN_S = 5.0


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
        # One request in flight per broker. With several, a partition's next batch can be sent
        # while its previous one is still being refused, as a partition the topic just grew by
        # is until its leader has created its log ("not leader"). The leader takes the later
        # batch as the first it sees from this producer, and librdkafka then counts the refused
        # batch as delivered ("implicitly acked by subsequent batch success"): records
        # acknowledged and lost. Seen when partitions grew under load; the tests in
        # tests/integration/core/test_*growth*.py hold the pipeline to it.
        "max.in.flight.requests.per.connection": 1,
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
        queue_full_timeout_s: float | None = None,
    ) -> None:
        self._config = producer_config(
            kafka, client_id=client_id, transactional_id=transactional_id, overrides=overrides
        )
        self.transactional = transactional_id is not None
        # How long produce() waits for room in a full local queue. Every queued record is
        # delivered or failed (which frees its room) within delivery.timeout.ms, give or take
        # librdkafka's once-a-second timeout scan, so a queue still full after that long means
        # nothing is leaving it at all.
        self._queue_full_timeout_s = (
            float(self._config["delivery.timeout.ms"]) / 1000 + _QUEUE_FULL_MARGIN_S
            if queue_full_timeout_s is None
            else queue_full_timeout_s
        )
        # Callers that must know when each record is safe (ingest acknowledges a gRPC batch only
        # then) pass per-record ``on_delivery`` callbacks and need successes reported too.
        self._report_every_delivery = report_every_delivery
        self._client: confluent_kafka.Producer | None = None
        self.transactional_id, self.principal = transactional_id, principal_of(kafka)
        self._tracker = DeliveryTracker()

    @property
    def client(self) -> confluent_kafka.Producer:
        if self._client is None:
            self.open()
        assert self._client is not None
        return self._client

    def open(self, *, init_transactions: bool = True, init_timeout_s: float = 60.0) -> None:
        """Build the client; a transactional one also fences its predecessors unless the
        caller runs ``init_transactions`` itself (with its own bound and recovery)."""
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
        if self.transactional and init_transactions:
            # Fences any earlier producer with the same transactional.id and aborts its open
            # transaction, so a restarted process never leaves a zombie transaction behind.
            try:
                retry_kafka(
                    functools.partial(self.client.init_transactions, init_timeout_s),
                    "init_transactions",
                )
            except KafkaError as exc:
                if exc.__cause__ is not None:
                    raise_if_refused(exc.__cause__, self)
                raise

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
        self._tracker.produced.add(topic)
        deadline: float | None = None
        while True:
            try:
                client.produce(topic, value, key, **kwargs)
                return
            except BufferError:
                # The local queue is full: serve delivery reports until there is room. The
                # queue's bound is what keeps memory bounded under a slow broker.
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._queue_full_timeout_s
                elif now >= deadline:
                    raise ProducerQueueFull(topic, waited_s=self._queue_full_timeout_s) from None
                client.poll(0.05)

    def poll(self, timeout: float = 0.0) -> int:
        try:
            return int(self.client.poll(timeout))
        except (KafkaException, SystemError) as exc:
            self._raise_fatal(exc)

    def wait(self, timeout: float) -> int:
        """Serve delivery reports until none is outstanding or ``timeout`` passes; how many
        still are. A fatal error is raised, a right refused as the one the principal lacks."""
        try:
            return int(self.client.flush(timeout))
        except (KafkaException, SystemError) as exc:
            self._raise_fatal(exc)

    def _raise_fatal(self, exc: Exception) -> NoReturn:
        # What the delivery callback met after the fatal error, if the library lost it.
        pending, self._tracker.pending = self._tracker.pending, None
        for cause in (exc, pending):
            if cause is not None:
                raise_if_refused(cause, self)
        raise exc

    def flush(self, timeout: float = 120.0) -> None:
        """Wait until every record so far is acknowledged; raise if any was not."""
        remaining = self.wait(timeout)
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

    def partitions(self, topic: str, *, timeout: float = 10.0) -> int:
        """How many partitions ``topic`` has, asked of the cluster now: producers that place
        records themselves (fleetpipe.core.keygroups) need it, and it changes as topics grow."""
        # No broker answering raises the library's KafkaException, which the consume loop
        # rides through like any other; a missing topic is an error of the project's own.
        described = self.client.list_topics(topic, timeout=timeout).topics.get(topic)
        if described is None or described.error is not None or not described.partitions:
            why = "no such topic" if described is None else described.error or "no partitions"
            raise KafkaError(f"cannot read the partitions of {topic}: {why}")
        return len(described.partitions)

    def close(self, timeout: float = 30.0) -> None:
        if self._client is not None:
            self._client.flush(timeout)
            self._client = None

    def discard(self) -> None:
        """Forget the client without flushing it: a fatally failed or wedged producer is
        abandoned, and the next ``open`` builds a new one with the same configuration."""
        self._client = None
        # A fresh tracker: the abandoned client may still report its records as failed.
        self._tracker = DeliveryTracker()


class BaseConsumer:
    """A consumer made from its configuration on first use: a group member or a reader."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._client: confluent_kafka.Consumer | None = None

    @property
    def client(self) -> confluent_kafka.Consumer:
        if self._client is None:
            self._client = confluent_kafka.Consumer(self._config)
        return self._client

    def consume(self, max_records: int, timeout: float) -> list[confluent_kafka.Message]:
        return list(self.client.consume(max_records, timeout))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class Consumer(BaseConsumer):
    """A consumer in a group with manual offset commits."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.group_id = str(config["group.id"])

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


# ---- builders: every client of the project is made by one of these ---------------------------
def build_producer(
    kafka: KafkaSettings,
    *,
    client_id: str,
    overrides: Mapping[str, str | int | float | bool] | None = None,
    report_every_delivery: bool = False,
    queue_full_timeout_s: float | None = None,
) -> Producer:
    """An idempotent producer; it connects on first use."""
    return Producer(
        kafka,
        client_id=client_id,
        overrides=overrides,
        report_every_delivery=report_every_delivery,
        queue_full_timeout_s=queue_full_timeout_s,
    )


def build_transactional_producer(
    kafka: KafkaSettings,
    *,
    client_id: str,
    transactional_id: str,
    overrides: Mapping[str, str | int | float | bool] | None = None,
) -> Producer:
    """A transactional producer; :meth:`Producer.open` connects and fences its predecessors."""
    return Producer(
        kafka, client_id=client_id, transactional_id=transactional_id, overrides=overrides
    )


def build_consumer(
    kafka: KafkaSettings,
    *,
    group_id: str,
    client_id: str,
    read_committed: bool,
    overrides: Mapping[str, str | int | float | bool] | None = None,
) -> Consumer:
    """A group member with manual commits; it connects on first use."""
    return Consumer(
        consumer_config(
            kafka,
            group_id=group_id,
            client_id=client_id,
            read_committed=read_committed,
            overrides=overrides,
        )
    )


def build_admin(
    kafka: KafkaSettings,
    *,
    timeout_s: float = 30.0,
    overrides: Mapping[str, str | int | float | bool] | None = None,
) -> Admin:
    """An admin client; it connects on first use."""
    return Admin(kafka, timeout_s=timeout_s, overrides=overrides)


class Admin:
    """Topic administration: create, grow and describe. Never shrinks or deletes data by itself."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        timeout_s: float = 30.0,
        overrides: Mapping[str, str | int | float | bool] | None = None,
    ) -> None:
        self._config: Config = {**kafka.client_config(), **(overrides or {})}
        self._timeout = timeout_s
        self._client: AdminClient | None = None

    @property
    def timeout_s(self) -> float:
        """How long one admin request may take."""
        return self._timeout

    @property
    def config(self) -> Config:
        """The client configuration, for the clients of core that talk to the same cluster."""
        return dict(self._config)

    @property
    def client(self) -> AdminClient:
        if self._client is None:
            self._client = AdminClient(self._config)
        return self._client

    def brokers(self) -> int:
        """How many brokers the cluster's metadata lists; raises when none answers."""
        return len(self.client.list_topics(timeout=self._timeout).brokers)

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
        data. Returns only once the cluster's metadata shows every topic it created or grew with
        the partitions asked; raises :class:`KafkaError` naming those it still does not show
        after the admin's timeout. Every ``after`` is the partition count the metadata showed
        (once caught up, for the topics created or grown): a caller needs no read of its own to
        know the partitions now.
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
                    # Created meanwhile by someone else, presumably as asked (the metadata
                    # read below tells).
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
        shown = self._await_metadata(
            {s.name: s.partitions for s in specs if existing.get(s.name, 0) < s.partitions}
        )
        # What the metadata shows of the topics created or grown: the partitions asked, or more
        # when another client made or grew the topic meanwhile.
        for name, count in shown.items():
            change = actions[name]
            if change.action is TopicAction.OK:  # created by someone else
                action = TopicAction.OK if count == change.asked else TopicAction.KEPT
                actions[name] = TopicChange(action, count, count, change.asked)
            else:
                actions[name] = dataclasses.replace(change, after=count)
        return actions

    def _await_metadata(self, asked: Mapping[str, int]) -> dict[str, int]:
        """The partition counts of the topics ``asked`` once the metadata shows at least those."""
        # A broker's metadata can trail a CreateTopics/CreatePartitions it just answered: a
        # producer asking about the topic then hits "unknown topic", and a reader of the
        # partition counts sees none or the old count. Wait until the metadata shows them.
        if not asked:
            return {}

        def behind(found: Mapping[str, int]) -> list[str]:
            return [name for name, count in asked.items() if found.get(name, 0) < count]

        found = poll_until(
            lambda: self.partitions(asked),
            lambda found: not behind(found),
            within_s=self._timeout,
        )
        late = behind(found)
        if late:
            raise KafkaError("topics not visible in the brokers' metadata yet: " + ", ".join(late))
        return {name: found[name] for name in asked}

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

    def topic_config(self, names: Iterable[str], key: str) -> dict[str, str | None]:
        """The value of config ``key`` of each topic (``None`` where the broker has no entry)."""
        described = self.client.describe_configs(
            [ConfigResource(ResourceType.TOPIC, name) for name in names],
            request_timeout=self._timeout,
        )
        values: dict[str, str | None] = {}
        for resource, future in described.items():
            entry = future.result().get(key)
            values[resource.name] = None if entry is None else entry.value
        return values

    def set_topic_config(self, key: str, values: Mapping[str, str]) -> None:
        """Set config ``key`` of each topic named in ``values``, leaving its other configs be."""
        if not values:
            return
        changes = [
            ConfigResource(
                ResourceType.TOPIC,
                name,
                incremental_configs=[
                    ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                ],
            )
            for name, value in values.items()
        ]
        for future in self.client.incremental_alter_configs(
            changes, request_timeout=self._timeout
        ).values():
            future.result()


# librdkafka's local errors that mean "no broker answered", as opposed to a broker refusing.
_UNREACHABLE = {
    confluent_kafka.KafkaError._TRANSPORT,
    confluent_kafka.KafkaError._TIMED_OUT,
    confluent_kafka.KafkaError._ALL_BROKERS_DOWN,
    confluent_kafka.KafkaError._RESOLVE,
}


def is_unreachable(exc: BaseException | None) -> bool:
    """Whether a client's exception says that no broker could be reached."""
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(err, confluent_kafka.KafkaError) and err.code() in _UNREACHABLE


def client_versions() -> dict[str, str]:
    """The Kafka client library's versions, for reports."""
    return {
        "librdkafka": confluent_kafka.libversion()[0],
        "confluent_kafka": str(confluent_kafka.version()),
    }
