"""The hot window: which daily partitions to create and which to drop."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fleetpipe.storage_writer.partitions import (
    HotWindow,
    hot_window,
    partition_day,
    partition_name,
    plan_partitions,
)

pytestmark = pytest.mark.unit

NOW = datetime(2025, 1, 15, 10, 30, tzinfo=UTC)


def test_names_round_trip() -> None:
    assert partition_name(date(2025, 1, 5)) == "telemetry_p20250105"
    assert partition_day("telemetry_p20250105") == date(2025, 1, 5)
    assert partition_day("telemetry_stage") is None


@pytest.mark.parametrize(
    ("retention", "ahead", "first", "last"),
    [
        pytest.param(3, 2, date(2025, 1, 12), date(2025, 1, 17), id="default-keeps-3-days"),
        pytest.param(1, 1, date(2025, 1, 14), date(2025, 1, 16), id="one-day"),
        pytest.param(0.25, 1, date(2025, 1, 15), date(2025, 1, 16), id="hours-keep-today"),
    ],
)
def test_hot_window(retention: float, ahead: int, first: date, last: date) -> None:
    window = hot_window(NOW, retention_days=retention, ahead_days=ahead)
    assert (window.first, window.last) == (first, last)


def test_plan_creates_missing_days_and_drops_those_before_the_window() -> None:
    window = HotWindow(date(2025, 1, 12), date(2025, 1, 17))
    existing = {date(2025, 1, 10), date(2025, 1, 11), date(2025, 1, 12), date(2025, 1, 15)}
    plan = plan_partitions(existing, window)
    assert plan.drop == [date(2025, 1, 10), date(2025, 1, 11)]
    assert plan.create == [date(2025, 1, d) for d in (13, 14, 16, 17)]


def test_window_membership() -> None:
    window = HotWindow(date(2025, 1, 12), date(2025, 1, 17))
    assert date(2025, 1, 12) in window and date(2025, 1, 17) in window
    assert date(2025, 1, 11) not in window and date(2025, 1, 18) not in window
