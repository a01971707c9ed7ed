"""Undecodable records on detection's input: dead-lettered, and nothing else is lost."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fleetpipe.core.readers import read_table
from fleetpipe.core.records import DL_REASON
from fleetpipe.pb.v1 import deadletter_pb2
from fleetpipe_dev.drills import drill_fleet
from fleetpipe_dev.testing import produce_all, read_all, wait_for
from support.messages import decoded, headers_of, key_of

from .conftest import Detection, expected_alerts, said

pytestmark = pytest.mark.integration


def test_garbage_and_tombstones_are_dead_lettered_inside_large_and_small_batches(
    detection: Callable[..., Detection],
) -> None:
    run = detection(1)
    events = drill_fleet(20, episodes=3, seed=11)
    expected = expected_alerts(events)
    assert expected, "the drill raises alerts"
    half = len(events) // 2
    items: list[tuple[bytes | str | None, bytes | None]] = [
        (e.telemetry.vehicle_id, e.SerializeToString()) for e in events
    ]
    # One garbage record and one tombstone in the middle, one garbage record at the very end
    # (the last, small, batch): the batch decoder refuses the batch, the records are sorted.
    items[half:half] = [(b"bad-1", b"\xff\xff\xff\xff"), (b"bad-2", None)]
    items.append((b"bad-3", b"\x0a\xff"))
    run.produced = produce_all(run.kafka, run.topics.enriched, items)
    run.start("bad-input", FLEET_KAFKA__MAX_BATCH="1000")
    run.wait_processed()

    assert said(run.alerts()) == expected
    dead = wait_for(
        lambda: (
            [m for m in read_all(run.kafka, run.topics.deadletter, idle_s=0.5) if m.key()] or None
        ),
        timeout=30,
        what="the dead letters",
    )
    assert sorted(key_of(m) for m in dead) == [b"bad-1", b"bad-2", b"bad-3"]
    for m in dead:
        assert headers_of(m)[DL_REASON] == b"undecodable"
        letter = decoded(m, deadletter_pb2.DeadLetter)
        assert letter.error
        assert letter.source_topic == run.topics.enriched


def test_unreadable_state_in_the_changelog_is_dead_lettered_once_with_its_coordinates(
    detection: Callable[..., Detection],
) -> None:
    run = detection(2)
    produce_all(run.kafka, run.topics.detection_state, [(b"veh-lost", b"\xff\xff\xff\xff")])
    (stored,) = read_all(run.kafka, run.topics.detection_state, idle_s=0.5)
    events = drill_fleet(10, episodes=2, seed=5)
    expected = expected_alerts(events)
    run.produce(events)
    first = run.start("state-a")
    run.wait_processed()

    def letters() -> list[deadletter_pb2.DeadLetter]:
        return [
            decoded(m, deadletter_pb2.DeadLetter)
            for m in read_all(run.kafka, run.topics.deadletter, read_committed=True, idle_s=0.5)
        ]

    (letter,) = wait_for(letters, timeout=30, what="the unreadable state's dead letter")
    assert letter.reason == "undecodable"
    assert letter.error
    assert letter.key == b"veh-lost"
    assert letter.payload == b"\xff\xff\xff\xff"
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        run.topics.detection_state,
        stored.partition(),
        stored.offset(),
    )
    # Tombstoned in the same transaction: the changelog's table no longer holds the record.
    wait_for(
        lambda: b"veh-lost" not in read_table(run.kafka, run.topics.detection_state, client_id="t"),
        timeout=30,
        what="the unreadable state's tombstone",
    )
    assert said(run.alerts()) == expected

    # A restart restores from the changelog again: the record is not met, nor reported, twice.
    first.stop()
    run.produce(drill_fleet(10, episodes=1, seed=6))
    second = run.start("state-b")
    run.wait_processed()
    assert second.alive()
    assert len(letters()) == 1
