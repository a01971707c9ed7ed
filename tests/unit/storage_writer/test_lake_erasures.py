"""Spooled rows of an erased subject stay out of the lake: those appended before the erasure
started, found when the spool rolls, or just after its file was written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from fleetpipe.erasure.audit import Erasure
from fleetpipe.erasure.subject import Subject, SubjectKind
from fleetpipe.storage_writer.erased import MARGIN_S, append_times
from fleetpipe.storage_writer.lake import Lake, with_lineage

pytestmark = pytest.mark.unit

T0 = 1_736_949_600_000_000  # 2025-01-15 14:00 UTC, the events' time
WRITER_T = T0 / 1e6 + 7200  # the writer's clock at the first append: two hours later


class Clock:
    def __init__(self) -> None:
        self.now = WRITER_T

    def __call__(self) -> float:
        return self.now


class FakeErasureLog:
    """The audit as the writer sees it: ``answers`` are returned in turn (the last one
    repeated), so an erasure can appear between two looks."""

    def __init__(self, *answers: list[Erasure]) -> None:
        self.answers = list(answers)
        self.asked: list[float] = []

    def started_since(self, since: float) -> list[Erasure]:
        self.asked.append(since)
        answer = self.answers[0] if len(self.answers) == 1 else self.answers.pop(0)
        return [e for e in answer if e.erased_at.timestamp() >= since]


def _erasure(vehicle: str, at: float, erasure_id: int = 1) -> Erasure:
    return Erasure(
        erasure_id, Subject(SubjectKind.VEHICLE, vehicle), datetime.fromtimestamp(at, UTC)
    )


def _batch(vehicles: list[str], first_offset: int, *, t_us: int = T0) -> pa.Table:
    n = len(vehicles)
    table = pa.table(
        {
            "vehicle_id": vehicles,
            "event_time": pa.array([t_us + i for i in range(n)], pa.int64()).cast(
                pa.timestamp("us", tz="UTC")
            ),
        }
    )
    return with_lineage(table, np.zeros(n), np.arange(first_offset, first_offset + n))


def _stored(root: Path) -> list[str]:
    files = sorted((root / "bronze").rglob("*.parquet"))
    if not files:
        return []
    return list(ds.dataset(files, format="parquet").to_table()["vehicle_id"].to_pylist())


def _lake(root: Path, log: FakeErasureLog, clock: Clock) -> Lake:
    lake = Lake(root, instance="i1", fsync=False, clock=clock, erasures=log)
    lake.open()
    return lake


def test_rows_appended_before_the_erasure_are_left_out_and_later_ones_kept(
    tmp_path: Path,
) -> None:
    clock = Clock()
    erased_at = WRITER_T + 10
    log = FakeErasureLog([_erasure("v-1", erased_at)])
    lake = _lake(tmp_path, log, clock)
    lake.append("telemetry", _batch(["v-1", "v-2", "v-1"], 0), topic="t", time_column="event_time")
    # Its new data, from after the erasure and appended past the clocks' margin: kept.
    clock.now = erased_at + MARGIN_S + 1
    later = int((erased_at + 30) * 1e6)
    lake.append(
        "telemetry", _batch(["v-1", "v-2"], 3, t_us=later), topic="t", time_column="event_time"
    )
    lake.roll(force=True)
    assert sorted(_stored(tmp_path)) == ["v-1", "v-2", "v-2"]
    assert lake.stats.erased_rows == 2
    assert min(log.asked) == pytest.approx(T0 / 1e6), "asked from the oldest row's time on"


def test_a_backlog_about_the_time_before_the_erasure_is_left_out(tmp_path: Path) -> None:
    clock = Clock()
    erased_at = WRITER_T + 10
    lake = _lake(tmp_path, FakeErasureLog([_erasure("v-1", erased_at)]), clock)
    # Appended long after the erasure, but its events are from before it (Kafka held them).
    clock.now = erased_at + 600
    lake.append("telemetry", _batch(["v-1", "v-2"], 0), topic="t", time_column="event_time")
    lake.roll(force=True)
    assert _stored(tmp_path) == ["v-2"]


def test_an_erasure_recorded_while_the_file_was_written_has_it_rewritten(tmp_path: Path) -> None:
    clock = Clock()
    log = FakeErasureLog([], [_erasure("v-1", WRITER_T + 5)])
    lake = _lake(tmp_path, log, clock)
    lake.append("telemetry", _batch(["v-1", "v-2"], 0), topic="t", time_column="event_time")
    lake.roll(force=True)
    assert len(log.asked) == 2, "asked before the write and after it"
    assert _stored(tmp_path) == ["v-2"]


def test_a_spool_of_only_erased_rows_leaves_no_file(tmp_path: Path) -> None:
    log = FakeErasureLog([_erasure("v-1", WRITER_T)])
    lake = _lake(tmp_path, log, Clock())
    lake.append("telemetry", _batch(["v-1", "v-1"], 0), topic="t", time_column="event_time")
    lake.roll(force=True)
    assert not list(tmp_path.rglob("*.parquet"))


def test_a_spool_recovered_after_a_crash_counts_its_rows_as_appended_when_it_opened(
    tmp_path: Path,
) -> None:
    clock = Clock()
    crashed = Lake(tmp_path, instance="i1", fsync=False, clock=clock)
    crashed.open()
    crashed.append("telemetry", _batch(["v-1", "v-2"], 0), topic="t", time_column="event_time")
    # The process dies here: the spool stays on disk, unrolled. The erasure comes meanwhile.
    log = FakeErasureLog([_erasure("v-1", WRITER_T + 3600)])
    restarted = Lake(tmp_path, instance="i1", fsync=False, clock=clock, erasures=log)
    restarted.open()
    assert _stored(tmp_path) == ["v-2"]


def test_append_times_follow_the_appends_and_a_torn_batch() -> None:
    times = append_times([(2, 10.0), (5, 20.0)], 4)
    assert times.tolist() == [10.0, 10.0, 20.0, 20.0]
