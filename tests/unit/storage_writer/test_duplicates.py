"""The batch's own repeats, and the per-vehicle marks that spare a fresh batch the probe."""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa
import pytest

from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.storage_writer.duplicates import (
    NewRows,
    Rows,
    Statements,
    StoredSeqs,
    first_of_each_seq,
    seq_ranges,
)

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


class FakeDatabase(Statements):
    """Answers the filter's statements: which claimed groups another writer had, the highest
    seq stored per vehicle, and the stored (vehicle, seq) pairs; and records what was asked."""

    def __init__(self) -> None:
        self.taken: set[int] = set()
        self.highest: dict[str, int] = {}
        self.stored: set[tuple[str, int]] = set()
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def execute(self, query: str, params: dict[str, Any] | None = None, /) -> FakeRows:
        params = params or {}
        if "telemetry_key_group_writers" in query:
            self.asked.append(("claim", params))
            return FakeRows([(g,) for g in params["groups"] if g in self.taken])
        if "ORDER BY t.seq DESC" in query:
            self.asked.append(("highest", params))
            return FakeRows([(v, self.highest[v]) for v in params["vehicles"] if v in self.highest])
        if "BETWEEN r.lo AND r.hi" in query:
            self.asked.append(("probe", params))
            ranges = zip(params["vehicles"], params["low"], params["high"], strict=True)
            return FakeRows(
                [
                    (v, s)
                    for v, lo, hi in ranges
                    for (w, s) in self.stored
                    if w == v and lo <= s <= hi
                ]
            )
        return FakeRows([])

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.asked]


class FakeRows(Rows):
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def fetchall(self) -> list[Any]:
        return self.rows


DAYS = (date(2025, 1, 1), date(2025, 1, 5))


def test_a_take_over_forgets_the_marks_of_that_key_groups_vehicles_only() -> None:
    groups = KeyGroups()
    a = "fleet-1-veh-000001"
    b = next(
        v for i in range(2, 99) if groups.group(v := f"fleet-1-veh-{i:06d}") != groups.group(a)
    )
    seqs = StoredSeqs(key_groups=groups)
    db = FakeDatabase()

    # First batch: both groups claimed afresh, both vehicles' marks read.
    db.taken = {groups.group(a), groups.group(b)}
    rows = seqs.new_rows(db, _batch((a, 1, 0.0), (b, 1, 0.0), (a, 2, 0.0)), DAYS)
    seqs.committed(rows)
    assert db.kinds() == ["claim", "highest"]
    assert db.asked[0][1]["groups"] == sorted(db.taken), "claimed in ascending order"
    assert rows.taken_over == 2

    # Still this writer's groups: the marks serve, nothing is read but the claim.
    db.taken, db.asked = set(), []
    seqs.committed(seqs.new_rows(db, _batch((a, 3, 0.0), (b, 2, 0.0)), DAYS))
    assert db.kinds() == ["claim"]

    # Another writer had a's group and stored a up to seq 9: a is read and probed again, b's
    # mark (another group) still serves.
    db.taken, db.asked = {groups.group(a)}, []
    db.highest, db.stored = {a: 9}, {(a, 4)}
    rows = seqs.new_rows(db, _batch((a, 4, 0.0), (b, 3, 0.0)), DAYS)
    assert db.kinds() == ["claim", "highest", "probe"]
    assert db.asked[1][1]["vehicles"] == [a]
    assert db.asked[2][1]["vehicles"] == [a]
    assert rows.table.column("vehicle_id").to_pylist() == [b]
    assert (rows.stored_before, rows.taken_over) == (1, 1)
