"""Sliding windows per partition: when a window is emitted, what is too late, what it holds."""

from __future__ import annotations

import pytest

from fleetpipe.kpis.windows import (
    FLEET,
    MODEL,
    VEHICLE_TYPE,
    PartitionProgress,
    PartitionWindows,
    WindowFigures,
    WindowSpec,
)

pytestmark = pytest.mark.unit

S = 1_000_000
# 20 s windows, a new one every 5 s, emitted 10 s after their end; quiet for 3 s: idle.
SPEC = WindowSpec(size_us=20 * S, hop_us=5 * S, lateness_us=10 * S, idle_us=3 * S)
T0 = 1_800_000_000 * S  # a multiple of the hop


def _windows() -> PartitionWindows:
    return PartitionWindows(SPEC, PartitionProgress(0))


def _event(
    w: PartitionWindows,
    vehicle: str,
    t_us: int,
    *,
    speed: float = 50.0,
    odometer: float = 0.0,
    now: float = 0.0,
) -> list[WindowFigures]:
    """What the stage does with one telemetry event: the windows it lets out."""
    assert not w.too_late(t_us)
    v = w.vehicle(vehicle, "fleet-1")
    v.model, v.vehicle_type = "Model A", "car"
    v.pane(SPEC.pane_of(t_us)).add_sample(speed, odometer)
    w.observe_time(t_us, t_us, now)
    return w.emit_due(now)[0]


def test_a_window_is_emitted_once_the_watermark_passes_its_end_plus_the_lateness() -> None:
    w = _windows()
    assert _event(w, "v1", T0) == []
    # The first window holding T0 ends at T0 + 5 s: due at a watermark of T0 + 15 s.
    assert _event(w, "v1", T0 + 14 * S) == []
    out = _event(w, "v1", T0 + 15 * S)
    assert {(f.start_us, f.end_us) for f in out} == {(T0 - 15 * S, T0 + 5 * S)}
    assert {(f.dimension, f.value) for f in out} == {
        (FLEET, "fleet-1"),
        (MODEL, "Model A"),
        (VEHICLE_TYPE, "car"),
    }
    assert all(f.active_vehicles == 1 and f.speed_samples == 1 for f in out)


def test_sliding_windows_each_count_an_event_and_distance_is_the_odometer_span() -> None:
    w = _windows()
    _event(w, "v1", T0 + 1 * S, speed=40, odometer=100.0)
    _event(w, "v1", T0 + 6 * S, speed=60, odometer=100.5)
    _event(w, "v2", T0 + 7 * S, speed=80, odometer=7.0)
    out = _event(w, "v3", T0 + 60 * S)  # moves the watermark far past them
    fleet = {f.start_us: f for f in out if f.dimension == FLEET and f.end_us <= T0 + 30 * S}
    # Windows starting at T0-15, -10, -5, 0 hold the first event; -10 .. +5 the later ones.
    full = fleet[T0 - 10 * S]
    assert (full.active_vehicles, full.speed_samples) == (2, 3)
    assert full.max_speed_kmh == 80
    assert full.speed_sum_kmh == pytest.approx(180)
    assert full.distance_km == pytest.approx(0.5)  # v2's single reading spans nothing
    assert fleet[T0 - 15 * S].speed_samples == 1
    assert fleet[T0 + 5 * S].speed_samples == 2


def test_an_event_behind_an_emitted_window_is_too_late_one_within_the_lateness_is_not() -> None:
    w = _windows()
    _event(w, "v1", T0)
    _event(w, "v1", T0 + 40 * S)
    assert not w.too_late(T0 + 31 * S), "9 s behind the watermark, lateness 10 s"
    assert w.too_late(T0 + 20 * S), "its first window ended at T0 + 25 s, emitted at T0 + 35 s"


def test_a_quiet_partition_lets_its_event_time_run_with_the_clock() -> None:
    w = _windows()
    _event(w, "v1", T0, now=100.0)
    assert not w.due(102.9)
    # Idle after 3 s; from then on the watermark moves with the clock, and the first window
    # still open (ending T0 - 5 s) is due once it reaches T0 + 5 s.
    assert not w.due(100.0 + 3 + 4.9)
    assert w.due(100.0 + 3 + 5)
    out, _changed, gone = w.emit_due(100.0 + 3 + 40)
    assert {f.end_us for f in out if f.dimension == FLEET} == {T0 + k * 5 * S for k in (1, 2, 3, 4)}
    assert gone == {"v1"}, "a vehicle whose panes are all emitted is let go"
    assert w.vehicles == {}


def test_window_must_be_whole_hops() -> None:
    with pytest.raises(ValueError, match="whole number of hops"):
        WindowSpec(size_us=10 * S, hop_us=3 * S, lateness_us=0, idle_us=S)
