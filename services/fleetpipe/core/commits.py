"""The consume loop's commits (fleetpipe.core.loop): when they are due, and how one is made,
given up, or made safe again after Kafka trouble.

A *commit window* opens with the first record consumed after a commit. In ``EXACTLY_ONCE``
mode it is one Kafka transaction (begun by the window's first output) holding every poll's
outputs and, at its commit, the consumer's positions; in ``AT_LEAST_ONCE`` mode its commit is a
flush of every output and then the positions' commit. The window is committed when it has been
open for the commit interval, at once when a poll comes back short (the input is caught up: a
small fleet's records must not wait for the interval), before partitions move in a rebalance,
and on stop. A poll that returns fewer records than it asked for waited out its timeout with
nothing more to read, so windows stay open across polls only while a backlog fills every poll:
a stage that keeps up commits after each poll, as fast as before, and one that falls behind
commits once an interval. A commit per interval rather than per poll is one transaction's
round trips (send offsets, commit, the markers) per interval whatever the number of polls, and
lets handlers write their keyed state once per commit (``before_commit``).

Giving a window up (abort, or a new producer that fences the old one) gives up every poll of
it: the loop then rewinds to the committed offsets, which are those of the last commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import KafkaException, TopicPartition

from fleetpipe.core.errors import KafkaError
from fleetpipe.core.kafka import Consumer, Producer
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.rights import raise_if_refused
from fleetpipe.core.seal import Sealer
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.stopping import StopFlag
from fleetpipe.core.transactions import BoundedCalls, KafkaCallStalled, Recovery, recovery_for

log = logging.getLogger(__name__)


class Commits:
    """The open commit window of one loop, and the producer's transactions (exactly once)."""

    def __init__(
        self,
        producer: Producer,
        consumer: Consumer,
        kafka: KafkaSettings,
        *,
        service: str,
        eos: bool,
        interval_s: float,
        sealer: Sealer,
        metrics: Metrics,
        stop: StopFlag,
        waiting: Callable[[str], None],
        clock: Callable[[], float],
    ) -> None:
        self.producer = producer
        self.consumer = consumer
        self.eos = eos
        self.interval_s = interval_s
        self.metrics = metrics
        self.in_txn = False
        # When the window's first record was consumed; None: nothing consumed since the commit.
        self.opened_at: float | None = None
        # Whether a producer was made and sealed since Kafka trouble began: the trouble's end
        # then needs no seal of its own.
        self.sealed_since_trouble = False
        self._sealer = sealer
        self._stop = stop
        self._waiting = waiting
        self._clock = clock
        call_timeout_s = kafka.call_timeout_ms / 1000
        self.producer_calls = BoundedCalls(f"{service}-producer", timeout_s=call_timeout_s)
        self.consumer_calls = BoundedCalls(f"{service}-consumer", timeout_s=call_timeout_s)
        # A retriable transaction step is retried for as long as the transaction can live:
        # past that the coordinator aborts it anyway.
        self._txn_budget_s = kafka.transaction_timeout_ms / 1000

    # -- the window --------------------------------------------------------------------------
    @property
    def pending(self) -> bool:
        """Whether anything was consumed or produced since the last commit."""
        return self.opened_at is not None or self.in_txn

    def consumed(self, now: float) -> None:
        if self.opened_at is None:
            self.opened_at = now

    def due(self, now: float, *, caught_up: bool) -> bool:
        """Whether the window is to be committed after a poll (``caught_up``: it came back with
        fewer records than it asked for, so nothing more was waiting)."""
        if caught_up:
            # At least once, an idle loop still flushes what its ticks produced.
            return self.pending or not self.eos
        return self.opened_at is not None and now - self.opened_at >= self.interval_s

    def begin(self) -> None:
        if not self.in_txn:
            self.producer.client.begin_transaction()
            self.in_txn = True

    def commit(self, positions: Callable[[], list[TopicPartition]]) -> None:
        """Commit the window: its outputs and, when it consumed anything, ``positions()``."""
        consumed = self.opened_at is not None
        if self.eos:
            producer = self.producer
            if consumed:
                self.begin()
                offsets = positions()
                group = self.consumer.client.consumer_group_metadata()
                # Retried with the very same offsets and group metadata, as librdkafka asks:
                # a retry is a new request, not a resumption.
                self.transactional(
                    "send_offsets_to_transaction",
                    lambda t: producer.client.send_offsets_to_transaction(offsets, group, t),
                )
            if self.in_txn:
                self.transactional("commit_transaction", producer.client.commit_transaction)
                self.in_txn = False
                self.metrics.transactions.labels("committed").inc()
            if consumed:
                self.metrics.commits.inc()
            self.opened_at = None
            self.producer.raise_for_failures()
        else:
            self.flush()
            if consumed:
                offsets = positions()
                if offsets:
                    client = self.consumer.client
                    self.consumer_calls.call(
                        "commit", lambda _t: client.commit(offsets=offsets, asynchronous=False)
                    )
                self.metrics.commits.inc()
            self.opened_at = None

    def flush(self) -> None:
        """Wait until every record is acknowledged, a bounded wait at a time: the broker's
        delivery timeout, not this loop, decides when a record has failed."""
        while remaining := self.producer.wait(self.producer_calls.timeout_s):
            self._waiting(f"{remaining} record(s) not yet acknowledged")
        self.producer.raise_for_failures()

    def transactional(self, what: str, call: Callable[[float], object]) -> None:
        """Run a transaction step, retrying it while librdkafka calls its error retriable."""
        deadline = self._clock() + self._txn_budget_s
        while True:
            try:
                self.producer_calls.call(what, call)
                return
            except KafkaException as exc:
                err = exc.args[0]
                if recovery_for(err) is not Recovery.RETRY:
                    raise
                if self._clock() >= deadline:
                    # A timed-out commit goes on in the background and refuses an abort
                    # (_CONFLICT) until it ends: only a new producer is sure to end it.
                    raise KafkaCallStalled(f"{what} ({err})", self._txn_budget_s) from exc
                self._waiting(f"{what}: {err}")
                time.sleep(0.2)  # an error returned at once must not become a busy loop

    # -- giving up ---------------------------------------------------------------------------
    def give_up(self, kind: Recovery, why: str) -> None:
        """Leave the window behind: abort its transaction or, when the producer cannot do even
        that, replace the producer. The caller rewinds to the committed offsets."""
        self.opened_at = None
        if self.eos and self.in_txn and kind is not Recovery.RECREATE:
            try:
                self.transactional("abort_transaction", self.producer.client.abort_transaction)
                self.in_txn = False
                self.producer.discard_failures()
                self.metrics.transactions.labels("aborted").inc()
            except (KafkaException, KafkaCallStalled) as exc:
                log.error("abort_transaction failed: %s", exc)
                kind = Recovery.RECREATE
        if self.eos and kind is Recovery.RECREATE:
            log.warning("replacing the producer: %s", why)
            self.producer.discard()
            if self.in_txn:
                # Never committed: the new producer's init_transactions aborts it.
                self.in_txn = False
                self.metrics.transactions.labels("aborted").inc()
            self.init_transactions()

    def abandon(self) -> None:
        """On the way out: abort what is open, commit nothing more."""
        self.opened_at = None
        try:
            if self.eos and self.in_txn:
                client = self.producer.client
                self.producer_calls.call("abort_transaction", client.abort_transaction)
                self.in_txn = False
        except (KafkaException, KafkaCallStalled) as exc:
            log.warning("abort on shutdown failed: %s", exc)

    # -- the transactional producer ----------------------------------------------------------
    def init_transactions(self) -> None:
        """Build the producer, fence every earlier one with its transactional id, and seal what
        an earlier one may have left open (fleetpipe.core.seal)."""
        seal_first = True
        while not self._stop:
            self.producer.open(init_transactions=False)
            client = self.producer.client
            try:
                self.producer_calls.call("init_transactions", client.init_transactions)
                if seal_first:
                    seal_first = False
                    if not self.sealed():
                        self.producer.discard()  # left mid-transaction: start clean, unsealed
                        continue
                return
            except KafkaCallStalled as exc:
                self._waiting(str(exc))
                self.producer.discard()
            except KafkaException as exc:
                err = exc.args[0]
                if recovery_for(err) is not Recovery.RETRY:
                    raise_if_refused(exc, self.producer)
                    raise KafkaError(f"init_transactions failed: {err}") from exc
                self._waiting(f"init_transactions: {err}")
                time.sleep(0.2)

    def sealed(self) -> bool:
        """Seal (fleetpipe.core.seal); whether it was committed. A failed seal is only said."""
        try:
            self._sealer.seal(self.producer, transactional=self.transactional)
        except (KafkaException, KafkaCallStalled, KafkaError) as exc:
            log.warning("could not seal the group's offsets and state changelogs: %s", exc)
            return False
        self.sealed_since_trouble = True
        return True

    def close(self, timeout_s: float) -> None:
        self.producer.close(timeout_s)
        self.producer_calls.close()
        self.consumer_calls.close()
        self._sealer.close()
