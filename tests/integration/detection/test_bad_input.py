"""Undecodable records on detection's input: dead-lettered, and nothing else is lost."""

from __future__ import annotations

from collections.abc import Callable

import pytest

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
