"""Detection killed with SIGKILL mid-stream, again and again: no alert lost, none doubled."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from fleetpipe.detection.drills import drill_fleet
from fleetpipe.testing import end_offsets, wait_for

from .conftest import Detection, expected_alerts, said

pytestmark = pytest.mark.integration


def test_sigkill_mid_stream_neither_loses_nor_duplicates_alerts(
    detection: Callable[..., Detection],
) -> None:
    run = detection(3)
    # Enough input that the kills land mid-stream: detection takes some 50K events/s here.
    events = drill_fleet(250, episodes=5, seed=4)
    expected = expected_alerts(events)
    assert len(expected) > 200, "the drill produces plenty of alerts"
    run.produce(events)
    total = len(events)

    open_at_kill = 0
    for share in (0.15, 0.35, 0.55):
        # The same instance id every time: the restarted process fences its predecessor.
        # Small batches: many transactions, many chances to die inside one.
        proc = run.start("crash-drill", FLEET_KAFKA__MAX_BATCH="200")
        wait_for(
            lambda p=proc, s=share: p.check_alive() or run.committed() >= s * total,
            timeout=180,
            interval=0.05,
            what=f"{share:.0%} of the input",
        )
        # Aim for a moment when a batch's records are on the broker but not yet committed.
        try:
            wait_for(lambda: _transaction_open(run), timeout=1, interval=0.01, what="an open batch")
            open_at_kill += 1
        except TimeoutError:
            pass  # then it dies between transactions: a plain replay, also worth having
        proc.kill()
        assert run.committed() < total, "the kill lands mid-stream"
    assert open_at_kill, "at least one kill while a transaction was open"

    run.start("crash-drill")
    run.wait_processed()

    alerts = said(run.alerts())
    assert alerts == expected
    assert max(alerts.values()) == 1, "no alert twice"
    trips = Counter((t.trip_id, t.state) for t in run.trips())
    assert trips and max(trips.values()) == 1, "no trip record twice"


def _transaction_open(run: Detection) -> bool:
    """Records on the state changelog beyond its last stable offset: a batch is in flight."""
    topic = run.topics.detection_state
    high = end_offsets(run.kafka, topic)
    stable = end_offsets(run.kafka, topic, read_committed=True)
    return any(high[p] > stable[p] for p in high)
