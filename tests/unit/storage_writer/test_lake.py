"""The Parquet lake: spools, atomic files, watermarks and recovery after a crash."""

from __future__ import annotations

import threading
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from fleetpipe.storage_writer.lake import Lake, LakeError, with_lineage

pytestmark = pytest.mark.unit

HOUR = 3_600_000_000
T0 = 1_736_949_600_000_000  # 2025-01-15 14:00 UTC


def _batch(offsets: range, *, partition: int = 0, t: int = T0) -> pa.Table:
    n = len(offsets)
    table = pa.table(
        {
            "vehicle_id": [f"v-{i}" for i in offsets],
            "event_time": pa.array([t + i for i in offsets], pa.int64()).cast(
                pa.timestamp("us", tz="UTC")
            ),
        }
    )
    return with_lineage(table, np.full(n, partition), np.array(list(offsets)))


def _lake(root: Path, *, max_rows: int = 1_000_000) -> Lake:
    lake = Lake(root, instance="i1", fsync=False, max_rows=max_rows)
    lake.open()
    return lake


def _read(root: Path) -> pa.Table:
    return ds.dataset(
        root / "bronze" / "telemetry", format="parquet", partitioning="hive"
    ).to_table()


def test_rows_are_filed_by_date_and_hour_and_rolled_atomically(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    lake.append("telemetry", _batch(range(0, 10)), topic="t", time_column="event_time")
    lake.append(
        "telemetry", _batch(range(10, 20), t=T0 + HOUR), topic="t", time_column="event_time"
    )
    assert not list(tmp_path.rglob("*.parquet")), "nothing is visible before a roll"
    files = lake.roll(force=True)
    assert sorted(f.parent.name for f in files) == ["hour=14", "hour=15"]
    assert all(f.parent.parent.name == "dt=2025-01-15" for f in files)
    table = _read(tmp_path)
    assert table.num_rows == 20
    assert set(table["_kafka_topic"].to_pylist()) == {"t"}, "each row names its topic"
    assert not list(tmp_path.rglob("*.arrows")) and not list(tmp_path.rglob("*.tmp"))


def test_a_spool_rolls_when_full_or_old(tmp_path: Path) -> None:
    clock = [1000.0]
    lake = Lake(
        tmp_path, instance="i1", fsync=False, max_rows=15, max_age_s=60, clock=lambda: clock[0]
    )
    lake.open()
    lake.append("telemetry", _batch(range(0, 10)), topic="t", time_column="event_time")
    assert lake.roll() == []
    lake.append("telemetry", _batch(range(10, 20)), topic="t", time_column="event_time")
    assert len(lake.roll(wait=True)) == 1, "full"
    lake.append("telemetry", _batch(range(20, 25)), topic="t", time_column="event_time")
    clock[0] += 61
    assert len(lake.roll(wait=True)) == 1, "old"


def test_a_roll_converts_in_the_background_while_batches_keep_coming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _lake(tmp_path, max_rows=10)
    release = threading.Event()
    write = lake._write_parquet

    def slow_write(table: pa.Table, final: PurePosixPath) -> None:
        assert release.wait(10), "the test releases the converter"
        write(table, final)

    monkeypatch.setattr(lake, "_write_parquet", slow_write)
    lake.append("telemetry", _batch(range(0, 10)), topic="t", time_column="event_time")
    assert lake.roll() == [], "the roll has started, not finished"
    # The next batches go to a new spool while the full one is being converted.
    lake.append("telemetry", _batch(range(10, 15)), topic="t", time_column="event_time")
    assert lake.roll() == []
    assert len(list(tmp_path.rglob("*.arrows"))) == 2, "the full spool stays until it is rolled"
    release.set()
    (first,) = lake.roll(wait=True)
    assert pq.read_table(tmp_path / first).num_rows == 10
    assert len(list(tmp_path.rglob("*.arrows"))) == 1, "a rolled spool is deleted"
    lake.close()
    assert sorted(_read(tmp_path)["_kafka_offset"].to_pylist()) == list(range(15))
    assert Lake(tmp_path, instance="i1", fsync=False).open() == [], "nothing left to recover"


def test_a_failed_roll_raises_later_and_keeps_its_spool_for_the_next_start(
    tmp_path: Path,
) -> None:
    lake = _lake(tmp_path)
    lake.append("telemetry", _batch(range(0, 10)), topic="t", time_column="event_time")
    # A file where the table's folder should be: the Parquet file cannot be written.
    (tmp_path / "bronze").mkdir()
    (tmp_path / "bronze" / "telemetry").write_text("in the way")
    with pytest.raises(LakeError, match="cannot roll"):
        lake.roll(force=True)
    assert len(list(tmp_path.rglob("*.arrows"))) == 1, "the spool is kept"
    assert lake.roll(force=True) == [], "the failure is reported once"

    (tmp_path / "bronze" / "telemetry").unlink()
    rolled = Lake(tmp_path, instance="i1", fsync=False).open()
    assert len(rolled) == 1 and _read(tmp_path).num_rows == 10


def test_replayed_offsets_are_skipped(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    assert lake.append("telemetry", _batch(range(0, 10)), topic="t", time_column="event_time") == 10
    # The same records again (offsets not committed before a crash), plus new ones.
    assert lake.append("telemetry", _batch(range(5, 15)), topic="t", time_column="event_time") == 5
    other = _batch(range(0, 3), partition=1)
    assert lake.append("telemetry", other, topic="t", time_column="event_time") == 3
    lake.roll(force=True)
    assert _read(tmp_path).num_rows == 18


def test_a_crash_leaves_spools_that_the_next_run_rolls_without_duplicates(tmp_path: Path) -> None:
    first = _lake(tmp_path)
    first.append("telemetry", _batch(range(0, 10)), topic="t", time_column="event_time")
    first.append("telemetry", _batch(range(10, 20)), topic="t", time_column="event_time")
    # A torn write at the end of the spool, as a kill in the middle of an append leaves.
    (spool,) = list(first.spools())
    with spool.open("ab") as f:
        f.write(b"\xff\xff\xff\xff\x10\x00")
    del first  # SIGKILL: nothing is closed

    second = Lake(tmp_path, instance="i1", fsync=False)
    rolled = second.open()
    assert len(rolled) == 1 and _read(tmp_path).num_rows == 20
    assert second.watermark("t", 0) == 19
    # Kafka delivers the uncommitted records again: they are recognised.
    assert (
        second.append("telemetry", _batch(range(15, 25)), topic="t", time_column="event_time") == 5
    )
    second.close()
    assert sorted(_read(tmp_path)["_kafka_offset"].to_pylist()) == list(range(25))


def test_rolling_the_same_spool_twice_rewrites_one_file(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    lake.append("telemetry", _batch(range(0, 10)), topic="t", time_column="event_time")
    (spool,) = list(lake.spools())
    copy = spool.with_suffix(".keep")
    lake._spools[next(iter(lake._spools))].file.flush()
    copy.write_bytes(spool.read_bytes())
    (first,) = lake.roll(force=True)
    copy.rename(spool)  # as if the process died after the rename, before deleting the spool
    again = Lake(tmp_path, instance="i1", fsync=False).open()
    assert again == [first] and _read(tmp_path).num_rows == 10


def test_each_row_keeps_its_position_in_its_pack_and_a_single_record_is_position_0(
    tmp_path: Path,
) -> None:
    lake = _lake(tmp_path)
    # Two packs of three events at offsets 40 and 41, then two single records.
    table = pa.table(
        {
            "vehicle_id": [f"v-{i}" for i in range(8)],
            "event_time": pa.array([T0] * 8, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        }
    )
    packs = with_lineage(
        table.slice(0, 6),
        np.full(6, 2),
        np.array([40, 40, 40, 41, 41, 41]),
        pack_indexes=np.array([0, 1, 2, 0, 1, 2]),
    )
    singles = with_lineage(table.slice(6), np.full(2, 2), np.array([42, 43]))
    assert packs.schema.names[-3:] == ["_kafka_partition", "_kafka_offset", "_kafka_pack_index"]
    lake.append("telemetry", packs, topic="t", time_column="event_time")
    lake.append("telemetry", singles, topic="t", time_column="event_time")
    lake.roll(force=True)
    stored = _read(tmp_path).sort_by("vehicle_id")
    assert stored["_kafka_pack_index"].type == pa.int32()
    assert list(
        zip(
            stored["_kafka_offset"].to_pylist(),
            stored["_kafka_pack_index"].to_pylist(),
            strict=True,
        )
    ) == [(40, 0), (40, 1), (40, 2), (41, 0), (41, 1), (41, 2), (42, 0), (43, 0)]
