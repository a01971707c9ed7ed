"""The batch's own repeats, and the per-vehicle marks that spare a fresh batch the probe."""

from __future__ import annotations

import pyarrow as pa
import pytest

from fleetpipe.storage_writer.duplicates import NewRows, StoredSeqs, first_of_each_seq, seq_ranges

pytestmark = pytest.mark.unit


def _batch(*rows: tuple[str, int, float]) -> pa.Table:
    vehicles, seqs, speeds = zip(*rows, strict=True)
    return pa.table(
        {
            "vehicle_id": pa.array(vehicles, pa.string()),
            "seq": pa.array(seqs, pa.int64()),
            "speed_kmh": pa.array(speeds, pa.float32()),
        }
    )


def test_the_first_row_of_each_seq_in_a_batch_is_kept_in_order() -> None:
    batch = _batch(("a", 7, 1.0), ("b", 7, 2.0), ("a", 7, 3.0), ("a", 8, 4.0), ("b", 7, 5.0))
    kept, left_out = first_of_each_seq(batch)
    assert left_out == 2
    assert kept.to_pylist() == [
        {"vehicle_id": "a", "seq": 7, "speed_kmh": 1.0},
        {"vehicle_id": "b", "seq": 7, "speed_kmh": 2.0},
        {"vehicle_id": "a", "seq": 8, "speed_kmh": 4.0},
    ]


def test_a_batch_without_repeats_is_returned_as_it_is() -> None:
    batch = _batch(("a", 1, 1.0), ("a", 2, 1.0), ("b", 1, 1.0))
    kept, left_out = first_of_each_seq(batch)
    assert kept is batch and left_out == 0


def test_seq_ranges_per_vehicle_and_whether_a_seq_repeats() -> None:
    ranges = seq_ranges(_batch(("a", 5, 0.0), ("b", 2, 0.0), ("a", 3, 0.0)))
    found = zip(ranges.vehicles, ranges.low.tolist(), ranges.high, strict=True)
    assert sorted(found) == [("a", 3, 5), ("b", 2, 2)]
    assert not ranges.repeats
    assert seq_ranges(_batch(("a", 5, 0.0), ("b", 5, 0.0), ("a", 5, 1.0))).repeats


def test_marks_only_rise_and_are_forgotten_on_revoke() -> None:
    seqs = StoredSeqs()
    empty = _batch(("a", 1, 0.0))
    seqs.committed(NewRows(empty, highest={"a": 9, "b": 4}))
    seqs.committed(NewRows(empty, highest={"a": 5}))
    assert seqs._marks == {"a": 9, "b": 4}
    seqs.committed(NewRows(empty, highest={"a": 12}, above_marks=True))
    assert seqs._marks == {"a": 12, "b": 4}
    seqs.forget()
    assert seqs._marks == {}


def test_marks_past_the_limit_start_over_without_the_batch() -> None:
    # Kept only with their key group known: a batch's marks recorded after a clear-out would
    # have none, and would outlive another writer's claim of their group.
    seqs = StoredSeqs(marks_limit=2)
    empty = _batch(("a", 1, 0.0))
    seqs.committed(NewRows(empty, highest={"a": 9}))
    seqs.committed(NewRows(empty, highest={"b": 4, "c": 5}))
    assert seqs._marks == {}


def test_each_writer_takes_a_name_of_its_own() -> None:
    one, two = StoredSeqs(writer="storage-writer-w1"), StoredSeqs(writer="storage-writer-w1")
    assert one.writer.startswith("storage-writer-w1/")
    assert one.writer != two.writer, "a restarted writer (empty memory) is another writer"
