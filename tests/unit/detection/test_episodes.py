"""The episode machine driven by sequences of (seconds, value) samples."""

from __future__ import annotations

from uuid import UUID

import pytest

from fleetpipe.detection.episodes import (
    NONE,
    OPENED,
    RESOLVED,
    UPDATED,
    advance,
    alert_id,
    trip_id,
)
from fleetpipe.detection.state import Episode

pytestmark = pytest.mark.unit

S = 1_000_000


def _run(
    samples: list[tuple[float, float | None]],
    *,
    min_s: float = 10,
    clear_s: float = 5,
    update_s: float = 0,
    lower_is_worse: bool = False,
) -> list[tuple[float, str, Episode | None]]:
    names = {OPENED: "OPEN", UPDATED: "UPDATE", RESOLVED: "RESOLVED"}
    ep: Episode | None = None
    said = []
    for seq, (t, value) in enumerate(samples, start=1):
        ep, what = advance(
            ep,
            value,
            int(t * S),
            seq,
            min_us=int(min_s * S),
            clear_us=int(clear_s * S),
            update_us=int(update_s * S),
            lower_is_worse=lower_is_worse,
        )
        if what != NONE:
            said.append((t, names[what], ep))
        if what == RESOLVED:
            ep = None
    return said


def _seconds(first: float, last: float, value: float | None) -> list[tuple[float, float | None]]:
    return [(float(t), value) for t in range(int(first), int(last) + 1)]


def test_opens_after_the_minimum_duration_and_resolves_after_the_clearing_time() -> None:
    said = _run(_seconds(0, 20, 95.0) + _seconds(21, 40, None))
    assert [(t, what) for t, what, _ in said] == [(10.0, "OPEN"), (26.0, "RESOLVED")]
    resolved = said[1][2]
    assert resolved is not None
    assert resolved.start_us == 0 and resolved.since_us == 21 * S


def test_a_blip_shorter_than_the_minimum_duration_is_never_announced() -> None:
    assert _run(_seconds(0, 8, 95.0) + _seconds(9, 30, None)) == []


def test_a_dip_shorter_than_the_clearing_time_keeps_one_episode() -> None:
    samples = _seconds(0, 20, 95.0) + _seconds(21, 24, None) + _seconds(25, 40, 95.0)
    samples += _seconds(41, 60, None)
    said = _run(samples)
    assert [what for _, what, _ in said] == ["OPEN", "RESOLVED"]
    assert said[1][0] == 46.0


def test_zero_minimum_opens_at_once_and_zero_clearing_resolves_at_once() -> None:
    said = _run([(0.0, 5.0), (1.0, None)], min_s=0, clear_s=0)
    assert [(t, what) for t, what, _ in said] == [(0.0, "OPEN"), (1.0, "RESOLVED")]


def test_updates_follow_the_interval_while_open() -> None:
    said = _run(_seconds(0, 40, 95.0), min_s=0, update_s=15)
    assert [(t, what) for t, what, _ in said] == [(0.0, "OPEN"), (15.0, "UPDATE"), (30.0, "UPDATE")]


@pytest.mark.parametrize(
    ("lower_is_worse", "peak"),
    [pytest.param(False, 99.0, id="higher-is-worse"), pytest.param(True, 3.0, id="lower")],
)
def test_the_peak_is_the_worst_value(lower_is_worse: bool, peak: float) -> None:
    samples = [(0.0, 5.0), (1.0, 99.0), (2.0, 3.0), (3.0, 50.0), (4.0, None)]
    said = _run(samples, min_s=0, clear_s=0, lower_is_worse=lower_is_worse)
    resolved = said[-1][2]
    assert resolved is not None and resolved.peak == peak


def test_ids_are_deterministic_uuids() -> None:
    assert alert_id("v-1", "speeding", 5) == alert_id("v-1", "speeding", 5)
    assert alert_id("v-1", "speeding", 5) != alert_id("v-1", "speeding", 6)
    assert alert_id("v-1", "speeding", 5) != alert_id("v-2", "speeding", 5)
    assert UUID(alert_id("v-1", "sos", 1)).version == UUID(trip_id("v-1", 1)).version == 5
    assert trip_id("v-1", 1) != alert_id("v-1", "", 1)
