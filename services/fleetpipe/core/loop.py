"""The one consume → process → produce loop every Kafka-facing service runs.

A handler receives a *batch* of decoded records and writes to an :class:`Output`. The loop owns
offsets and delivery guarantees:

* ``AT_LEAST_ONCE`` — at a commit, the producer is flushed (every output acknowledged) and
  only then are the input offsets committed. A crash in between replays what was consumed
  since the last commit; handlers with external effects make them idempotent.
* ``EXACTLY_ONCE`` — outputs, dead letters and the input offsets go into one Kafka transaction
  (``read_committed`` input, ``send_offsets_to_transaction``). A crash aborts the open
  transaction: the replacement fences it by reusing the transactional id.

Commits are made on an interval, not per batch (see :mod:`fleetpipe.core.commits`): a commit
covers every batch since the last one, and ``Handler.before_commit`` lets a handler write its
keyed state once per commit rather than once per batch.

Undecodable records go to the dead-letter topic with the reason and their coordinates, and the
loop carries on. A handler that cannot make progress for now (its database is down) raises
:class:`RetryLater`: the loop rewinds to the last committed offsets and tries again after a
backoff, while still polling so the consumer keeps its place in the group.

Kafka itself going away (a broker restart, a coordinator moving) is ridden through in the
process: every blocking client call is bounded (see :mod:`fleetpipe.core.transactions`) and
each failure gets librdkafka's documented recovery — retry, abort and rewind, or a new
producer that fences the old one. Meanwhile ``/readyz`` says "waiting for Kafka" and the
liveness heartbeat goes on.

Tracing (see :mod:`fleetpipe.core.tracing`): a record whose headers carry a sampled W3C trace
context gets a consumer span, child of its producer's span, from the start of its batch until
the batch is committed; the handler finds it in ``Output.traced``. Records without trace
headers — all but a few in a thousand — cost one ``headers()`` call each, and nothing at all
when tracing is off.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaException, TopicPartition

from fleetpipe.core.codecs import ProtoCodec
from fleetpipe.core.commits import Commits
from fleetpipe.core.errors import CodecError, KafkaError
from fleetpipe.core.handlers import BaseHandler, Handler, RetryLater
from fleetpipe.core.health import Health
from fleetpipe.core.kafka import build_consumer, build_producer, build_transactional_producer
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.packs import PackCodec, is_pack, unpack_into
from fleetpipe.core.placement import producer_placement
from fleetpipe.core.records import Output, Record
from fleetpipe.core.rights import raise_if_refused
from fleetpipe.core.seal import Sealer
from fleetpipe.core.settings import DeliveryMode, KafkaSettings
from fleetpipe.core.stopping import StopFlag
from fleetpipe.core.tracing import CONSUMER, Span, Tracing, messaging_attributes
from fleetpipe.core.transactions import KafkaCallStalled, Recovery, recovery_for

__all__ = ["BaseHandler", "ConsumeProduceLoop", "Handler", "LoopConfig", "RetryLater"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopConfig:
    service: str
    group_id: str
    inputs: Mapping[str, ProtoCodec[Any]]  # topic -> codec of its values
    deadletter_topic: str
    mode: DeliveryMode
    instance_id: str
    max_batch: int = 2000
    poll_timeout_s: float = 0.05
    tick_interval_s: float = 1.0
    retry_backoff_s: tuple[float, float] = (0.5, 10.0)
    consumer_overrides: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    producer_overrides: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    # State changelogs the handler restores from on assignment: sealed with the group's offsets
    # (fleetpipe.core.seal) each time the transactional producer is made. Exactly-once only.
    seal_topics: tuple[str, ...] = ()
    # How long a commit window stays open at most while records keep coming (see
    # fleetpipe.core.commits); 0 commits after every batch.
    commit_interval_s: float = 0.1
    # How long the handler's on_assign may take at most (restoring state, bounded by the
    # handler's own timeout): the liveness probe holds off that long, not the heartbeat's.
    assign_bound_s: float = 0.0


class ConsumeProduceLoop:
    def __init__(
        self,
        config: LoopConfig,
        kafka: KafkaSettings,
        handler: Handler,
        *,
        metrics: Metrics,
        health: Health | None = None,
        stop: StopFlag | None = None,
        clock: Callable[[], float] = time.monotonic,
        tracing: Tracing | None = None,
        lag_interval_s: float = 5.0,
    ) -> None:
        self.config = config
        self.handler = handler
        self.metrics = metrics
        self.tracing = tracing if tracing is not None else Tracing.disabled()
        self._lag_interval_s = lag_interval_s
        self._next_lag = 0.0
        self.health = health if health is not None else Health()
        self.stop = stop if stop is not None else StopFlag()
        self._clock = clock
        eos = config.mode is DeliveryMode.EXACTLY_ONCE
        self._eos = eos
        self._kafka = kafka
        self.consumer = build_consumer(
            kafka,
            group_id=config.group_id,
            client_id=f"{config.service}-{config.instance_id}",
            read_committed=eos,
            overrides=config.consumer_overrides,
        )
        self.producer = (
            build_transactional_producer(
                kafka,
                client_id=f"{config.service}-{config.instance_id}",
                # One transactional id per process instance: a restarted instance fences its
                # predecessor's open transaction at once instead of waiting for its timeout.
                transactional_id=f"{config.group_id}-{config.instance_id}",
                overrides=config.producer_overrides,
            )
            if eos
            else build_producer(
                kafka,
                client_id=f"{config.service}-{config.instance_id}",
                overrides=config.producer_overrides,
            )
        )
        self.commits = Commits(
            self.producer,
            self.consumer,
            kafka,
            service=config.service,
            eos=eos,
            interval_s=config.commit_interval_s,
            sealer=Sealer(
                kafka,
                group_id=config.group_id,
                input_topic=next(iter(config.inputs)),
                changelogs=config.seal_topics,
            ),
            metrics=metrics,
            stop=self.stop,
            waiting=self._waiting_for_kafka,
            clock=clock,
        )
        self._consumer_calls = self.commits.consumer_calls
        self._kafka_trouble_since: float | None = None
        # Set when a commit window was given up inside a rebalance callback while partitions
        # stay assigned: they are rewound once consume() has returned.
        self._rewind_due: str | None = None
        # Consumer spans of the batches of the open commit window, ended at its commit.
        self._unsettled: list[Span] = []
        self._last_tick = clock()
        self._assignment: list[TopicPartition] = []
        self.out = Output(
            self.producer,
            service=config.service,
            deadletter_topic=config.deadletter_topic,
            metrics=metrics,
            before_send=self.commits.begin if eos else None,
            tracing=self.tracing,
            placement=producer_placement(kafka, self.producer, unplaced=(config.deadletter_topic,)),
        )
        self.processed = 0

    # -- rebalance ---------------------------------------------------------------------------
    def _on_assign(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", _fmt(partitions))
        # A handler may restore every assigned partition's state here: the open window's
        # progress must be committed first.
        self._settle_for_rebalance(lost=False)
        self._assignment = list(partitions)
        self.metrics.assigned.set(len(partitions))
        self._take_on(list(partitions))
        self.health.set_ready(True)

    def _take_on(self, partitions: list[TopicPartition]) -> None:
        """The handler takes ``partitions`` on — restoring their state, which may wait for
        Kafka — with the process alive for the loop's bound on it (the assignment and the
        rewind both come here)."""
        with self.health.busy(self.config.assign_bound_s):
            self.handler.on_assign(partitions)

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        log.info("revoked %s", _fmt(partitions))
        self._give_away(partitions, lost=False)

    def _on_lost(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        log.warning("lost %s", _fmt(partitions))
        self._give_away(partitions, lost=True)

    def _give_away(self, partitions: list[TopicPartition], *, lost: bool) -> None:
        # The open window is settled first (committed, or given up when that cannot be), so
        # no transaction is open past this point and the handler can drop the partitions'
        # state safely.
        self._settle_for_rebalance(lost=lost)
        self.handler.on_revoke(list(partitions))
        gone = {(tp.topic, tp.partition) for tp in partitions}
        for topic, partition in gone:
            with contextlib.suppress(KeyError):
                self.metrics.lag.remove(topic, str(partition))
        self._assignment = [tp for tp in self._assignment if (tp.topic, tp.partition) not in gone]
        self.metrics.assigned.set(len(self._assignment))
        if not self._assignment:
            self._rewind_due = None  # a new assignment starts from the committed offsets

    def _settle_for_rebalance(self, *, lost: bool) -> None:
        """Commit the open window before partitions move; give it up when that cannot be
        (partitions lost to the group can no longer have their offsets committed)."""
        if not self.commits.pending:
            return
        if not lost:
            try:
                self._commit()
                return
            except (KafkaException, KafkaCallStalled) as exc:
                why = f"commit before a rebalance failed: {exc}"
                kind = (
                    recovery_for(exc.args[0])
                    if isinstance(exc, KafkaException)
                    else Recovery.RECREATE
                )
        else:
            why, kind = "partitions lost", Recovery.ABORT
        log.warning("giving up the open commit window: %s", why)
        self._fail_spans(KafkaError(why))
        self.commits.give_up(Recovery.ABORT if kind is Recovery.RETRY else kind, why)
        self._rewind_due = why

    # -- commits -----------------------------------------------------------------------------
    def _positions(self) -> list[TopicPartition]:
        if not self._assignment:
            return []
        return [tp for tp in self.consumer.client.position(self._assignment) if tp.offset >= 0]

    def _commit(self) -> None:
        """Commit the window, the handler's last writes first, then end its batches' spans."""
        self.handler.before_commit(self.out)
        self.commits.commit(self._positions)
        unsettled, self._unsettled = self._unsettled, []
        for span in unsettled:
            span.end()

    def _recover(self, kind: Recovery, why: str) -> None:
        """Leave the failed commit window behind — every batch since the last commit: abort its
        transaction (or, when the producer cannot do even that, replace the producer) and go
        back to the last committed offsets."""
        self._fail_spans(KafkaError(why))
        self.commits.give_up(kind, why)
        self._rewind(why)

    def _rewind(self, why: str) -> None:
        """Go back to the committed offsets — the last commit's — so every batch given up
        since is processed again."""
        self._rewind_due = None
        log.warning("rewinding to committed offsets: %s", why)
        consumer = self.consumer.client
        while assignment := list(self._assignment):
            try:
                committed = self._consumer_calls.call(
                    "committed", functools.partial(_committed, consumer, assignment)
                )
                break
            except (KafkaException, KafkaCallStalled) as exc:
                if self.stop:
                    # Leaving anyway: whoever takes the partitions starts from the committed
                    # offsets, which is all a rewind would do.
                    return
                self._waiting_for_kafka(f"committed offsets: {exc}")
                # A consumer whose session lapsed during the outage defers offset lookups
                # until the application has served its rebalance: serve it. What it fetches
                # meanwhile is dropped; the seek below goes back before it.
                consumer.consume(self.config.max_batch, 0.2)
        else:
            return  # the partitions went elsewhere: a new assignment starts from the commits
        log.info(
            "rewinding to %s",
            ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in committed),
        )
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else confluent_kafka.OFFSET_BEGINNING
            consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
        # The handler's in-memory state may reflect the discarded batches: rebuild it.
        self.handler.on_revoke(assignment)
        self._take_on(assignment)

    def _waiting_for_kafka(self, reason: str) -> None:
        if self._kafka_trouble_since is None:
            self._kafka_trouble_since = self._clock()
            self.commits.sealed_since_trouble = False
            log.warning("waiting for Kafka: %s", reason)
        self.health.set_ready(False, f"waiting for Kafka: {reason}")
        # Waiting for Kafka is not a stall: the liveness probe must not restart the process.
        self.health.beat()

    def _probe_kafka(self) -> None:
        """An idle stage commits nothing, and its consumer reports no outage: a metadata
        request now and then says whether Kafka serves."""
        consumer, topic = self.consumer.client, next(iter(self.config.inputs))
        try:
            self._consumer_calls.call("list_topics", lambda t: consumer.list_topics(topic, t))
        except (KafkaException, KafkaCallStalled) as exc:
            self._waiting_for_kafka(f"metadata: {exc}")
            return
        self._kafka_back()

    def _kafka_back(self) -> None:
        if self._kafka_trouble_since is None:
            return
        log.info("Kafka is back after %.1fs", self._clock() - self._kafka_trouble_since)
        self._kafka_trouble_since = None
        commits = self.commits
        if (
            self._eos
            and not commits.in_txn
            and not commits.sealed_since_trouble
            and not commits.sealed()
        ):
            # An idle stage meets an outage without a new producer (one made since was sealed
            # then): seal, anew if that fails.
            self._recover(Recovery.RECREATE, "sealing after Kafka came back failed")
        self.health.set_ready(bool(self._assignment), "" if self._assignment else "no partitions")

    # -- the loop ----------------------------------------------------------------------------
    def _decode(
        self, msgs: Sequence[confluent_kafka.Message]
    ) -> tuple[list[Record[Any]], list[tuple[int, Any]]]:
        """The batch's decoded records, and (index in records, headers) of those that may
        carry trace context (none when tracing is off)."""
        records: list[Record[Any]] = []
        append = records.append
        codecs = self.config.inputs
        counts: dict[str, int] = {}
        traced_on = self.tracing.enabled
        candidates: list[tuple[int, Any]] = []
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise KafkaError(f"the consumer failed: {err}")
                log.warning("consumer error: %s", err)
                continue
            topic = msg.topic() or ""
            counts[topic] = counts.get(topic, 0) + 1
            codec = codecs[topic]
            try:
                if isinstance(codec, PackCodec) and is_pack(msg.headers()):
                    # One record per event of the pack (each counted); offsets stay the pack's.
                    n = unpack_into(
                        codec, msg, records, self.out, candidates if traced_on else None
                    )
                    counts[topic] += n - 1
                    continue
                value = codec.decode(
                    msg.value(), topic=topic, partition=msg.partition(), offset=msg.offset()
                )
            except CodecError as exc:
                self.out.dead_letter(msg, reason="undecodable", error=str(exc))
                continue
            if traced_on:
                headers = msg.headers()
                if headers is not None:
                    candidates.append((len(records), headers))
            append(Record(msg, value))
        for topic, n in counts.items():
            self.metrics.consumed.labels(topic).inc(n)
        return records, candidates

    def _start_spans(
        self, records: list[Record[Any]], candidates: list[tuple[int, Any]], start_ns: int
    ) -> dict[int, Span]:
        """Consumer spans for the records whose headers carry a sampled trace context."""
        spans: dict[int, Span] = {}
        tracing = self.tracing
        for index, headers in candidates:
            parent = tracing.sampled_parent(headers)
            if parent is None:
                continue
            msg = records[index].msg
            topic = msg.topic() or ""
            attributes = messaging_attributes(
                topic=topic, operation="process", partition=msg.partition(), offset=msg.offset()
            )
            attributes["messaging.consumer.group.name"] = self.config.group_id
            key = msg.key()
            if key:
                attributes["messaging.kafka.message.key"] = key.decode(errors="replace")
            span = tracing.start_child(
                f"{topic} process",
                parent,
                kind=CONSUMER,
                attributes=attributes,
                start_ns=start_ns,
            )
            if span is not None:
                spans[index] = span
        return spans

    def _fail_spans(self, error: BaseException) -> None:
        """End the spans of every batch of the window, and of the batch under way, as failed."""
        spans = [*self._unsettled, *self.out.traced.values()]
        self._unsettled = []
        self.out.traced = {}
        for span in spans:
            span.fail(error)
            span.end()

    def run_once(self) -> int:
        """One iteration: consume a batch, handle it, commit when due. Returns records
        consumed."""
        msgs = self.consumer.consume(self.config.max_batch, self.config.poll_timeout_s)
        if self._rewind_due is not None:
            # A rebalance gave the window up: what was fetched is before the rewind's point.
            self._rewind(self._rewind_due)
            return 0
        started = self._clock()
        started_ns = time.time_ns()
        records, candidates = self._decode(msgs) if msgs else ([], [])
        if candidates:
            self.out.traced = self._start_spans(records, candidates, started_ns)
        try:
            if records:
                self.handler.handle(records, self.out)
            now = self._clock()
            if now - self._last_tick >= self.config.tick_interval_s:
                self._last_tick = now
                self.handler.on_tick(time.time(), self.out)
                if now >= self._next_lag:
                    self._next_lag = now + self._lag_interval_s
                    self._report_lag()
                    if not msgs:
                        self._probe_kafka()
            if msgs:
                self.commits.consumed(started)
            if self.out.traced:
                self._unsettled.extend(self.out.traced.values())
                self.out.traced = {}
            caught_up = len(msgs) < self.config.max_batch  # consume() waited out its timeout
            if self.commits.due(self._clock(), caught_up=caught_up):
                self._commit()
                self._kafka_back()
        except BaseException as exc:
            self._fail_spans(exc)
            raise
        if msgs:
            self.metrics.batch_size.observe(len(msgs))
            self.metrics.batch_seconds.observe(self._clock() - started)
        self.processed += len(msgs)
        self.health.beat()
        return len(msgs)

    def _report_lag(self) -> None:
        """Records behind each assigned partition's high watermark, from the client's cache
        (the watermarks come with every fetch response: no request to the broker)."""
        if not self._assignment:
            return
        client = self.consumer.client
        try:
            positions = client.position(self._assignment)
        except KafkaException as exc:
            log.debug("no positions for the lag gauge: %s", exc)
            return
        for tp in positions:
            try:
                _low, high = client.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            if high < 0 or tp.offset < 0:
                continue
            self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - tp.offset))

    def run(self) -> None:
        """Run until the stop flag is set, then drain: commit, leave the group, flush."""
        if self._eos:
            self.commits.init_transactions()
        else:
            self.producer.open()
        self.consumer.subscribe(
            list(self.config.inputs),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self._last_tick = self._clock()
        backoff = self.config.retry_backoff_s[0]
        log.info(
            "%s consuming %s in %s mode",
            self.config.service,
            list(self.config.inputs),
            self.config.mode.value,
        )
        try:
            while not self.stop:
                try:
                    self.run_once()
                    backoff = self.config.retry_backoff_s[0]
                except RetryLater as exc:
                    self.health.set_ready(False, f"waiting: {exc}")
                    self._recover(Recovery.ABORT, f"handler asked to retry later: {exc}")
                    self._pause_polling(backoff)
                    backoff = min(backoff * 2, self.config.retry_backoff_s[1])
                except (KafkaException, KafkaCallStalled) as exc:
                    kind = (
                        recovery_for(exc.args[0])
                        if isinstance(exc, KafkaException)
                        else Recovery.RECREATE
                    )
                    self._waiting_for_kafka(str(exc))
                    if self._eos and (self.commits.in_txn or kind is not Recovery.RETRY):
                        # Inside a transaction any failure ends the commit window: it is given
                        # up (aborted, or fenced by a new producer) and processed again.
                        self._recover(Recovery.ABORT if kind is Recovery.RETRY else kind, str(exc))
                        continue
                    if isinstance(exc, KafkaException) and exc.args[0].fatal():
                        raise_if_refused(exc, self.producer)  # a right refused, said so
                        raise
                    # No transaction at stake (at least once, or between transactions): the
                    # outputs are flushed, and the next commit covers the offsets.
                    log.warning("Kafka error, trying again: %s", exc)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, self.config.retry_backoff_s[1])
            self._drain()
        finally:
            self._shutdown()

    def _drain(self) -> None:
        """Stopping: commit what the open window did, so no one does it again."""
        if not self.commits.pending:
            return
        try:
            self._commit()
        except (KafkaException, KafkaCallStalled) as exc:
            # Given up on the way out: whoever takes the partitions does it again.
            log.warning("the last commit failed: %s", exc)

    def _pause_polling(self, seconds: float) -> None:
        """Wait while keeping group membership alive: pause fetching, keep calling consume()."""
        assignment = list(self._assignment)
        if assignment:
            self.consumer.client.pause(assignment)
        deadline = self._clock() + seconds
        try:
            while self._clock() < deadline and not self.stop:
                self.consumer.client.consume(1, min(0.2, seconds))
                self.health.beat()
        finally:
            current = {(tp.topic, tp.partition) for tp in self._assignment}
            still = [tp for tp in assignment if (tp.topic, tp.partition) in current]
            if still:
                self.consumer.client.resume(still)
        self.health.set_ready(bool(self._assignment), "" if self._assignment else "no partitions")

    def _shutdown(self) -> None:
        log.info("%s stopping after %d records", self.config.service, self.processed)
        self.health.set_ready(False, "stopping")
        # Whatever is still open failed: it is not committed on the way out, by the consumer's
        # revoke on close either.
        self._fail_spans(KafkaError("stopped before the commit"))
        self.commits.abandon()
        self.consumer.close()
        self.commits.close(self.commits.producer_calls.timeout_s)


def _fmt(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"


def _committed(
    consumer: confluent_kafka.Consumer, partitions: list[TopicPartition], timeout: float
) -> list[TopicPartition]:
    return list(consumer.committed(partitions, timeout=timeout))
