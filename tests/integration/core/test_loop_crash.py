"""The core loop's guarantees, shown by killing a real worker process with SIGKILL mid-batch."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe_dev.testing import (
    ServiceProcess,
    committed_total,
    end_offsets,
    produce_all,
    read_all,
    start_passthrough,
    wait_committed,
    wait_for,
)
from fleetpipe_loadtest import synthetic

pytestmark = pytest.mark.integration

EVENTS = 30_000


def _preload(kafka: KafkaSettings, topic: str) -> set[bytes]:
    payloads = [e.SerializeToString() for e in synthetic.stream(300, EVENTS)]
    produce_all(kafka, topic, ((p[:40], p) for p in payloads))
    return set(payloads)


def _worker(
    kafka: KafkaSettings, topics: Topics, mode: str, log: Path, *, hold_ms: int
) -> ServiceProcess:
    extra = {
        "FLEET_HOLD_MS": str(hold_ms),
        "FLEET_KAFKA__MAX_BATCH": "1000",
        # The restarted worker must reuse the transactional id to fence the killed one.
        "FLEET_INSTANCE_ID": "crash-drill",
    }
    return start_passthrough(kafka, topics, log, group=f"pt-{topics.raw}", mode=mode, extra=extra)


def _wait_done(worker: ServiceProcess, kafka: KafkaSettings, topics: Topics) -> None:
    wait_committed([worker], kafka, f"pt-{topics.raw}", topics.raw, EVENTS)


def _kill_mid_batch(
    worker: ServiceProcess, kafka: KafkaSettings, topics: Topics, *, transactional: bool
) -> int:
    """Let a few batches commit, then SIGKILL the worker while it holds a batch open."""
    group = f"pt-{topics.raw}"

    def progressed() -> bool:
        worker.check_alive()
        return committed_total(kafka, group, topics.raw) >= 3000

    wait_for(progressed, timeout=90, what="the worker to commit a few batches")
    # hold_ms keeps each batch open for a while after producing it, and says so in the log.
    holds = worker.log().count("holding a batch")
    wait_for(
        lambda: worker.log().count("holding a batch") > holds,
        timeout=60,
        interval=0.02,
        what="the worker to hold a new batch open",
    )

    # Kill only once the held batch has reached the broker (uncommitted), not while it is still
    # in the client's memory: that is the case where a zombie transaction must be aborted.
    def held_batch_on_broker() -> bool:
        high = end_offsets(kafka, topics.enriched)
        if transactional:
            # An open transaction: records written beyond the last stable offset.
            stable = end_offsets(kafka, topics.enriched, read_committed=True)
            return any(high[p] > stable[p] for p in high)
        return sum(high.values()) > committed_total(kafka, group, topics.raw)

    wait_for(
        held_batch_on_broker,
        timeout=2.5,
        interval=0.05,
        what="the held batch to reach the broker",
    )
    worker.kill()
    return committed_total(kafka, group, topics.raw)


def test_exactly_once_survives_sigkill_mid_batch(
    kafka_settings: KafkaSettings, topics: Topics, tmp_path: Path
) -> None:
    sent = _preload(kafka_settings, topics.raw)
    worker = _worker(kafka_settings, topics, "exactly-once", tmp_path / "w1.log", hold_ms=3000)
    committed_at_kill = _kill_mid_batch(worker, kafka_settings, topics, transactional=True)
    assert committed_at_kill < EVENTS, "the kill must land before the work is done"
    # The killed worker's open transaction holds records that must never become visible.
    uncommitted = read_all(kafka_settings, topics.enriched, read_committed=False, idle_s=1)
    assert len(uncommitted) > committed_at_kill, "a batch was open (produced, not committed)"

    restarted = _worker(kafka_settings, topics, "exactly-once", tmp_path / "w2.log", hold_ms=0)
    _wait_done(restarted, kafka_settings, topics)
    assert restarted.stop() == 0

    out = [m.value() for m in read_all(kafka_settings, topics.enriched, read_committed=True)]
    counts = Counter(out)
    assert set(counts) == sent
    assert max(counts.values()) == 1, "no output may appear twice"
    assert len(out) == EVENTS


def test_at_least_once_loses_nothing_across_sigkill(
    kafka_settings: KafkaSettings, topics: Topics, tmp_path: Path
) -> None:
    sent = _preload(kafka_settings, topics.raw)
    worker = _worker(kafka_settings, topics, "at-least-once", tmp_path / "w1.log", hold_ms=3000)
    _kill_mid_batch(worker, kafka_settings, topics, transactional=False)
    restarted = _worker(kafka_settings, topics, "at-least-once", tmp_path / "w2.log", hold_ms=0)
    _wait_done(restarted, kafka_settings, topics)
    assert restarted.stop() == 0

    out = [m.value() for m in read_all(kafka_settings, topics.enriched, read_committed=False)]
    assert set(out) == sent, "every input reaches the output at least once"
    # The replayed batch may repeat, but no more than what was in flight at the kill.
    assert len(out) - EVENTS <= 2 * 1000
