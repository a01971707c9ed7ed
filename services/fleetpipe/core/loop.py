"""The one consume → process → produce loop every Kafka-facing service runs.

A handler receives a *batch* of decoded records and writes to an :class:`Output`. The loop owns
offsets and delivery guarantees:

* ``AT_LEAST_ONCE`` — after the handler returns, the producer is flushed (every output
  acknowledged) and only then are the input offsets committed. A crash in between replays the
  batch; handlers with external effects make them idempotent.
* ``EXACTLY_ONCE`` — outputs, dead letters and the input offsets go into one Kafka transaction
  (``read_committed`` input, ``send_offsets_to_transaction``). A crash aborts the open
  transaction: the replacement fences it by reusing the transactional id.

Undecodable records go to the dead-letter topic with the reason and their coordinates, and the
loop carries on. A handler that cannot make progress for now (its database is down) raises
:class:`RetryLater`: the loop rewinds to the last committed offsets and tries again after a
backoff, while still polling so the consumer keeps its place in the group.

Tracing (see :mod:`fleetpipe.core.tracing`): a record whose headers carry a sampled W3C trace
context gets a consumer span, child of its producer's span, from the start of its batch until
the batch is committed; the handler finds it in ``Output.traced``. Records without trace
headers — all but a few in a thousand — cost one ``headers()`` call each, and nothing at all
when tracing is off.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol

import confluent_kafka
from confluent_kafka import KafkaException, TopicPartition

from fleetpipe.core.codecs import ProtoCodec
from fleetpipe.core.errors import CodecError
from fleetpipe.core.health import Health
from fleetpipe.core.kafka import (
    build_consumer,
    build_producer,
    build_transactional_producer,
)
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.records import Output, Record
from fleetpipe.core.settings import DeliveryMode, KafkaSettings
from fleetpipe.core.tracing import CONSUMER, Span, Tracing, messaging_attributes

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """Raised by a handler when a dependency is unavailable; the batch is retried later."""


class Handler(Protocol):
    def handle(self, records: list[Record[Any]], out: Output) -> None:
        """Process one batch. Called with at least one record."""

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        """Partitions were assigned: restore their state before their first record arrives."""

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        """Partitions are leaving this process: flush or drop their state."""

    def on_tick(self, now: float, out: Output) -> None:
        """Processing-time timers (for example, vehicles gone silent)."""


class BaseHandler:
    """No-op hooks, so handlers implement only what they need."""

    def handle(self, records: list[Record[Any]], out: Output) -> None:
        raise NotImplementedError

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        return None

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        return None

    def on_tick(self, now: float, out: Output) -> None:
        return None


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


class StopFlag:
    """Set by SIGTERM/SIGINT (or by a test); the loop drains its batch and exits."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()

    def install_signal_handlers(self) -> None:
        def _stop(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s, draining", signal.Signals(signum).name)
            self.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)


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
        self._in_txn = False
        self._last_tick = clock()
        self._assignment: list[TopicPartition] = []
        self.out = Output(
            self.producer,
            service=config.service,
            deadletter_topic=config.deadletter_topic,
            metrics=metrics,
            before_send=self._begin if eos else None,
            tracing=self.tracing,
        )
        self.processed = 0

    # -- rebalance ---------------------------------------------------------------------------
    def _on_assign(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", _fmt(partitions))
        self._assignment = list(partitions)
        self.metrics.assigned.set(len(partitions))
        self.handler.on_assign(list(partitions))
        self.health.set_ready(True)

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        log.info("revoked %s", _fmt(partitions))
        # Batches are committed before the next consume(), inside which this callback runs, so
        # no transaction is open here and the handler can drop the partitions' state safely.
        self.handler.on_revoke(list(partitions))
        gone = {(tp.topic, tp.partition) for tp in partitions}
        for topic, partition in gone:
            with contextlib.suppress(KeyError):
                self.metrics.lag.remove(topic, str(partition))
        self._assignment = [tp for tp in self._assignment if (tp.topic, tp.partition) not in gone]
        self.metrics.assigned.set(len(self._assignment))

    # -- transactions ------------------------------------------------------------------------
    def _begin(self) -> None:
        if not self._in_txn:
            self.producer.client.begin_transaction()
            self._in_txn = True

    def _positions(self) -> list[TopicPartition]:
        if not self._assignment:
            return []
        return [tp for tp in self.consumer.client.position(self._assignment) if tp.offset >= 0]

    def _commit(self, consumed: bool) -> None:
        if self._eos:
            if consumed:
                self._begin()
                self.producer.client.send_offsets_to_transaction(
                    self._positions(), self.consumer.client.consumer_group_metadata()
                )
            if self._in_txn:
                self.producer.client.commit_transaction()
                self._in_txn = False
                self.metrics.transactions.labels("committed").inc()
            self.producer.raise_for_failures()
        else:
            self.producer.flush()
            if consumed:
                positions = self._positions()
                if positions:
                    self.consumer.client.commit(offsets=positions, asynchronous=False)

    def _abort_and_rewind(self, why: str) -> None:
        """Throw away the batch's effects and go back to the last committed offsets."""
        log.warning("rewinding to committed offsets: %s", why)
        if self._eos and self._in_txn:
            try:
                self.producer.client.abort_transaction()
            except KafkaException as exc:
                log.error("abort_transaction failed: %s", exc)
                raise
            self._in_txn = False
            self.producer.discard_failures()
            self.metrics.transactions.labels("aborted").inc()
        if not self._assignment:
            return
        committed = self.consumer.client.committed(self._assignment, timeout=30)
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else confluent_kafka.OFFSET_BEGINNING
            self.consumer.client.seek(TopicPartition(tp.topic, tp.partition, offset))
        # The handler's in-memory state may reflect the discarded batch: rebuild it.
        self.handler.on_revoke(list(self._assignment))
        self.handler.on_assign(list(self._assignment))

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
                    raise KafkaException(err)
                log.warning("consumer error: %s", err)
                continue
            topic = msg.topic() or ""
            counts[topic] = counts.get(topic, 0) + 1
            try:
                value = codecs[topic].decode(
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

    def _end_spans(self, error: BaseException | None = None) -> None:
        spans = self.out.traced
        if not spans:
            return
        self.out.traced = {}
        for span in spans.values():
            if error is not None:
                span.fail(error)
            span.end()

    def run_once(self) -> int:
        """One iteration: consume a batch, handle it, commit. Returns records consumed."""
        msgs = self.consumer.consume(self.config.max_batch, self.config.poll_timeout_s)
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
            if msgs or self._in_txn or not self._eos:
                self._commit(consumed=bool(msgs))
        except BaseException as exc:
            self._end_spans(exc)
            raise
        self._end_spans()
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
        self.producer.open()
        self.consumer.subscribe(
            list(self.config.inputs),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
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
                    self._abort_and_rewind(f"handler asked to retry later: {exc}")
                    self._pause_polling(backoff)
                    backoff = min(backoff * 2, self.config.retry_backoff_s[1])
                except KafkaException as exc:
                    err = exc.args[0]
                    if self._eos and getattr(err, "txn_requires_abort", lambda: False)():
                        self._abort_and_rewind(f"transaction must abort: {err}")
                        continue
                    if getattr(err, "retriable", lambda: False)():
                        log.warning("retriable Kafka error, retrying the commit: %s", err)
                        time.sleep(backoff)
                        backoff = min(backoff * 2, self.config.retry_backoff_s[1])
                        continue
                    raise
        finally:
            self._shutdown()

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
        try:
            if self._eos and self._in_txn:
                self.producer.client.abort_transaction()
                self._in_txn = False
        except KafkaException as exc:
            log.warning("abort on shutdown failed: %s", exc)
        self.consumer.close()
        self.producer.close()


def _fmt(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"
