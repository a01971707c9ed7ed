"""Detection killed with SIGKILL mid-stream, again and again: no alert lost, none doubled."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from fleetpipe.core.kafka import build_admin
from fleetpipe_dev.drills import drill_fleet
from fleetpipe_dev.testing import ServiceProcess, transaction_open, wait_for

from .conftest import Detection, expected_alerts, said

pytestmark = pytest.mark.integration


def test_sigkill_mid_stream_neither_loses_nor_duplicates_alerts(
    detection: Callable[..., Detection],
) -> None:
    run = detection(3)
    events = drill_fleet(100, episodes=5, seed=4)
    expected = expected_alerts(events)
    assert len(expected) > 100, "the drill produces plenty of alerts"
    run.produce(events)
    total = len(events)

    changelog = run.topics.detection_state
    admin = build_admin(run.kafka, timeout_s=10)

    def in_flight() -> bool:
        return transaction_open(admin, changelog)

    open_at_kill = 0
    for share in (0.15, 0.35, 0.55):
        # The same instance id every time: the restarted process fences its predecessor.
        # Each commit is held open after its alerts and state are produced, before its
        # transaction commits: most of the time there is a transaction to die inside.
        proc = run.start("crash-drill", FLEET_KAFKA__MAX_BATCH="1000", FLEET_HOLD_MS="150")

        def reached(proc: ServiceProcess = proc, share: float = share) -> bool:
            proc.check_alive()
            return run.committed() >= share * total

        wait_for(
            reached,
            timeout=180,
            interval=0.05,
            what=f"{share:.0%} of the input",
        )
        wait_for(in_flight, timeout=30, interval=0.01, what="an open batch")
        proc.kill()
        assert run.committed() < total, "the kill lands mid-stream"
        # Seldom, the batch committed between the look and the kill: then a plain replay.
        open_at_kill += in_flight()
    assert open_at_kill, "at least one kill left its transaction open"

    run.start("crash-drill")
    run.wait_processed()

    alerts = said(run.alerts())
    assert alerts == expected
    assert max(alerts.values()) == 1, "no alert twice"
    trips = Counter((t.trip_id, t.state) for t in run.trips())
    assert trips and max(trips.values()) == 1, "no trip record twice"
