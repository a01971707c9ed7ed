"""Commits on an interval (fleetpipe.core.commits): several polls a transaction under a backlog,
at once when the input is caught up (a poll came back empty or short), and every poll of a
window given up and processed again when the window fails — aborted in-process, or killed
with SIGKILL."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from prometheus_client import generate_latest

from fleetpipe.core.loop import BaseHandler, ConsumeProduceLoop, RetryLater
from fleetpipe.core.records import Output, Record
from fleetpipe.core.settings import DeliveryMode, KafkaSettings, Topics
from fleetpipe_dev.testing import (
    committed_total,
    end_offsets,
    produce_all,
    read_all,
    start_passthrough,
    wait_committed,
    wait_for,
)
from fleetpipe_loadtest import synthetic
from support.loops import running_loop, telemetry_loop

pytestmark = pytest.mark.integration


class Copier(BaseHandler):
    """Copies records to an output topic; notes each batch and each commit it is told of."""

    def __init__(self, output: str, *, fail_at: int = 0) -> None:
        self.output = output
        self.fail_at = fail_at  # give up the window when it reaches this many batches, once
        self.assigned: set[tuple[str, int]] = set()
        self.batches = 0
        self.seen = 0
        self.handled_at = 0.0
        self.window_batches = 0
        self.window_records = 0
        self.given_up: tuple[int, int] | None = None  # (batches, records) of the failed window
        self.commits: list[tuple[float, int]] = []  # (when, batches in the window)

    def handle(self, records: list[Record[Any]], out: Output) -> None:
        if self.fail_at and self.given_up is None and self.window_batches + 1 == self.fail_at:
            self.given_up = (self.window_batches, self.window_records)
            raise RetryLater("giving the window up")
        self.batches += 1
        self.window_batches += 1
        self.window_records += len(records)
        self.seen += len(records)
        out.send_many(self.output, [(r.key, r.msg.value()) for r in records])
        self.handled_at = time.monotonic()

    def before_commit(self, out: Output) -> None:
        if self.window_batches:
            self.commits.append((time.monotonic(), self.window_batches))
        self.window_batches = self.window_records = 0

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned |= {(tp.topic, tp.partition) for tp in partitions}

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        # Also told when a window is given up (then assigned again): its batches are gone.
        self.window_batches = self.window_records = 0
        self.assigned -= {(tp.topic, tp.partition) for tp in partitions}


def _loop(
    kafka: KafkaSettings,
    topics: Topics,
    handler: Copier,
    *,
    interval_s: float,
    max_batch: int = 100,
) -> ConsumeProduceLoop:
    return telemetry_loop(
        kafka,
        topics,
        handler,
        group=f"interval-{topics.raw}",
        instance="interval",
        mode=DeliveryMode.EXACTLY_ONCE,
        max_batch=max_batch,
        commit_interval_s=interval_s,
    )


def _load(kafka: KafkaSettings, topic: str, n: int, *, fleet: str = "fleet-1") -> set[bytes]:
    payloads = [e.SerializeToString() for e in synthetic.stream(200, n, fleet=fleet)]
    produce_all(kafka, topic, ((p[:40], p) for p in payloads))
    return set(payloads)


def _exactly(kafka: KafkaSettings, topic: str, sent: set[bytes]) -> None:
    out = Counter(m.value() for m in read_all(kafka, topic, read_committed=True))
    assert set(out) == sent, "every input reaches the output"
    assert max(out.values()) == 1, "no output twice"


def test_a_backlog_is_committed_once_an_interval_many_polls_a_transaction(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    interval = 0.1  # the default
    sent = _load(kafka_settings, topics.raw, 30_000)
    handler = Copier(topics.enriched)
    loop = _loop(kafka_settings, topics, handler, interval_s=interval, max_batch=100)
    with running_loop(loop):
        wait_for(lambda: handler.seen >= 30_000, timeout=120, what="the backlog processed")
        wait_for(lambda: handler.window_batches == 0, timeout=30, what="the last commit")
    _exactly(kafka_settings, topics.enriched, sent)

    times = [t for t, _ in handler.commits]
    sizes = [n for _, n in handler.commits]
    assert sum(sizes) == handler.batches
    assert len(times) >= 2, f"the backlog took several intervals: {handler.commits}"
    # Every window but the last (which the drained input may end early) stayed open for the
    # interval: at most one commit an interval, however many polls.
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps[:-1] or [interval]) >= interval, gaps
    assert len(times) <= (times[-1] - times[0]) / interval + 2
    assert handler.batches >= 3 * len(times), f"several polls a transaction: {sizes}"
    metrics = generate_latest(loop.metrics.registry).decode()
    assert f"fleetpipe_offset_commits_total {float(len(times))}" in metrics
    assert f"fleetpipe_batch_size_count {float(handler.batches)}" in metrics


def test_a_caught_up_loop_commits_at_once(kafka_settings: KafkaSettings, topics: Topics) -> None:
    interval = 10.0  # the longest the setting allows: a commit that waited would show
    handler = Copier(topics.enriched)
    loop = _loop(kafka_settings, topics, handler, interval_s=interval)
    with running_loop(loop):
        wait_for(lambda: len(handler.assigned) == 3, timeout=60, what="the partitions")
        sent = _load(kafka_settings, topics.raw, 5)
        produced = time.monotonic()
        wait_for(lambda: handler.seen >= 5 and handler.commits, timeout=30, what="a commit")
        committed = handler.commits[-1][0]
        # Visible to a read-committed reader well before the interval is over.
        wait_for(
            lambda: len(read_all(kafka_settings, topics.enriched, idle_s=0.2)) == 5,
            timeout=interval / 2,
            what="the records committed",
        )
    assert committed - handler.handled_at < 1.0, "committed right after the poll found nothing"
    assert committed - produced < interval / 2
    _exactly(kafka_settings, topics.enriched, sent)


def test_a_loop_that_keeps_up_commits_after_every_poll(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Records trickle in, so polls are never empty but always short (fewer than max_batch):
    each poll's window is committed at once, none waits for the (long) interval."""
    interval = 10.0
    handler = Copier(topics.enriched)
    loop = _loop(kafka_settings, topics, handler, interval_s=interval, max_batch=100)
    payloads = [e.SerializeToString() for e in synthetic.stream(20, 100)]
    with running_loop(loop):
        wait_for(lambda: len(handler.assigned) == 3, timeout=60, what="the partitions")
        for payload in payloads:  # ~50 records/s for 2 s: a few per 50 ms poll
            produce_all(kafka_settings, topics.raw, [(payload[:40], payload)])
            time.sleep(0.02)  # paces the producer; nothing waits on it
        wait_for(lambda: handler.seen >= 100, timeout=30, what="every record handled")
        wait_for(lambda: handler.window_batches == 0, timeout=5, what="the last commit")
    assert handler.batches >= 5, "the trickle came in several polls"
    assert all(n == 1 for _, n in handler.commits), f"one poll a window: {handler.commits}"
    assert sum(n for _, n in handler.commits) == handler.batches
    _exactly(kafka_settings, topics.enriched, set(payloads))


def test_a_window_given_up_is_processed_again_from_the_last_commit(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    first = _load(kafka_settings, topics.raw, 1_000, fleet="fleet-1")
    before = Copier(topics.enriched)
    with running_loop(_loop(kafka_settings, topics, before, interval_s=10.0)):
        wait_for(lambda: before.seen >= 1_000, timeout=60, what="the first records")
    # Stopped: the drain committed them.
    assert committed_total(kafka_settings, f"interval-{topics.raw}", topics.raw) == 1_000

    second = _load(kafka_settings, topics.raw, 3_000, fleet="fleet-2")
    handler = Copier(topics.enriched, fail_at=6)
    loop = _loop(kafka_settings, topics, handler, interval_s=10.0)
    with running_loop(loop):
        wait_for(
            lambda: handler.given_up is not None and handler.seen >= 3_000 + handler.given_up[1],
            timeout=90,
            what="everything, the window given up again",
        )
        wait_for(lambda: handler.window_batches == 0, timeout=30, what="the last commit")
    assert handler.given_up is not None
    batches, records = handler.given_up
    assert batches == 5, "five polls were in the window given up"
    # Processed again from the last commit (offset 1,000), not from the last poll.
    assert handler.seen == 3_000 + records
    _exactly(kafka_settings, topics.enriched, first | second)
    metrics = generate_latest(loop.metrics.registry).decode()
    assert 'fleetpipe_transactions_total{outcome="aborted"} 1.0' in metrics


def test_sigkill_mid_interval_repeats_the_whole_window_and_nothing_else(
    kafka_settings: KafkaSettings, topics: Topics, tmp_path: Path
) -> None:
    events, batch = 30_000, 300
    sent = _load(kafka_settings, topics.raw, events)
    group = f"pt-{topics.raw}"

    def worker(log: str, **extra: str) -> Any:
        env = {
            "FLEET_KAFKA__MAX_BATCH": str(batch),
            # The restarted worker reuses the transactional id to fence the killed one.
            "FLEET_INSTANCE_ID": "interval-drill",
            **extra,
        }
        return start_passthrough(
            kafka_settings, topics, tmp_path / log, group=group, mode="exactly-once", extra=env
        )

    # 200 ms a batch and 3 s a window: about fifteen batches a transaction.
    killed = worker("w1.log", FLEET_HOLD_MS="200", FLEET_KAFKA__COMMIT_INTERVAL_MS="3000")

    def progressed() -> bool:
        killed.check_alive()
        return committed_total(kafka_settings, group, topics.raw) >= batch

    wait_for(progressed, timeout=90, what="a first commit")

    def open_records() -> int:
        high = end_offsets(kafka_settings, topics.enriched)
        stable = end_offsets(kafka_settings, topics.enriched, read_committed=True)
        return sum(high[p] - stable[p] for p in high)

    # Three batches' worth open means at least three polls in the transaction.
    wait_for(lambda: open_records() >= 3 * batch, timeout=30, interval=0.05, what="polls open")
    killed.kill()
    committed_at_kill = committed_total(kafka_settings, group, topics.raw)
    assert committed_at_kill < events, "the kill lands mid-stream"
    uncommitted = read_all(kafka_settings, topics.enriched, read_committed=False, idle_s=1)
    assert len(uncommitted) - committed_at_kill >= 3 * batch, "several polls were open"

    restarted = worker("w2.log")
    wait_committed([restarted], kafka_settings, group, topics.raw, events)
    assert restarted.stop() == 0
    _exactly(kafka_settings, topics.enriched, sent)
    assert len(read_all(kafka_settings, topics.enriched, read_committed=True)) == events
