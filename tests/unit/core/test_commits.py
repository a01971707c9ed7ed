"""When a commit window is due (fleetpipe.core.commits): the interval under steady input, at
once when a poll finds nothing, and every poll in at-least-once mode when idle."""

from __future__ import annotations

from fleetpipe.core.commits import Commits
from fleetpipe.core.kafka import build_consumer, build_producer, build_transactional_producer
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.seal import Sealer
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.stopping import StopFlag


def _commits(*, eos: bool, interval_s: float) -> Commits:
    # Clients are made on first use: nothing here talks to a broker.
    kafka = KafkaSettings()
    producer = (
        build_transactional_producer(kafka, client_id="t", transactional_id="t-1")
        if eos
        else build_producer(kafka, client_id="t")
    )
    return Commits(
        producer,
        build_consumer(kafka, group_id="g", client_id="t", read_committed=eos),
        kafka,
        service="t",
        eos=eos,
        interval_s=interval_s,
        sealer=Sealer(kafka, group_id="g", input_topic="in", changelogs=()),
        metrics=Metrics("t"),
        stop=StopFlag(),
        waiting=lambda _why: None,
        clock=lambda: 0.0,
    )


def test_a_window_is_due_once_open_for_the_interval_while_polls_bring_records() -> None:
    commits = _commits(eos=True, interval_s=0.1)
    assert not commits.due(5.0, caught_up=False), "nothing consumed: nothing to commit"
    commits.consumed(10.0)
    commits.consumed(10.05)  # a later poll of the same window does not move its start
    assert commits.opened_at == 10.0
    assert not commits.due(10.08, caught_up=False)
    assert commits.due(10.125, caught_up=False)


def test_a_poll_that_finds_nothing_commits_what_is_open_at_once() -> None:
    commits = _commits(eos=True, interval_s=10.0)
    assert not commits.due(1.0, caught_up=True), "an idle exactly-once loop has nothing open"
    commits.consumed(1.0)
    assert commits.due(1.01, caught_up=True)
    commits.in_txn, commits.opened_at = True, None  # a tick's outputs alone
    assert commits.pending and commits.due(1.02, caught_up=True)


def test_interval_zero_commits_every_poll_and_at_least_once_flushes_when_idle() -> None:
    every = _commits(eos=True, interval_s=0.0)
    every.consumed(3.0)
    assert every.due(3.0, caught_up=False)
    idle = _commits(eos=False, interval_s=0.1)
    assert idle.due(1.0, caught_up=True), "at least once, ticks' outputs are flushed when idle"
    assert not idle.due(1.0, caught_up=False)
