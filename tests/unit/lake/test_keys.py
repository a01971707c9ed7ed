"""Which copy of a (vehicle, seq) silver keeps: the first stored, by bronze coordinate."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from fleetpipe.lake import keys

pytestmark = pytest.mark.unit

Copy = tuple[str, str, str, int, int, int | None]  # day, hour, topic, partition, offset, pack


def _keys(copies: list[Copy]) -> pa.Table:
    return pa.table(
        {
            "vehicle_id": ["v1"] * len(copies),
            "seq": [7] * len(copies),
            "day": [c[0] for c in copies],
            "hour": [c[1] for c in copies],
            "_kafka_topic": [c[2] for c in copies],
            "_kafka_partition": [c[3] for c in copies],
            "_kafka_offset": [c[4] for c in copies],
            "_kafka_pack_index": [c[5] for c in copies],
            "driver_id": ["d1"] * len(copies),
        }
    ).cast(keys.SCHEMA)


@pytest.mark.parametrize(
    ("copies", "kept"),
    [
        pytest.param(
            [("2025-01-15", "23", "t", 0, 90, 0), ("2025-01-16", "00", "t", 0, 40, 0)],
            ("2025-01-16", "00"),
            id="lower-offset-in-a-later-hour",
        ),
        pytest.param(
            [("2025-01-15", "10", "t", 1, 5, 0), ("2025-01-15", "11", "t", 0, 900, 0)],
            ("2025-01-15", "11"),
            id="lower-partition-first",
        ),
        pytest.param(
            [("2025-01-15", "10", "t", 0, 5, 3), ("2025-01-15", "14", "t", 0, 5, 1)],
            ("2025-01-15", "14"),
            id="same-pack-lower-position",
        ),
        pytest.param(
            [("2025-01-15", "10", "t", 0, 5, None), ("2025-01-15", "14", "t", 0, 5, 2)],
            ("2025-01-15", "14"),
            id="unknown-position-sorts-after",
        ),
        pytest.param(
            [("2025-01-15", "14", "t", 0, 5, 0), ("2025-01-15", "10", "t", 0, 5, 0)],
            ("2025-01-15", "10"),
            id="equal-coordinates-earlier-hour",
        ),
    ],
)
def test_every_copy_but_the_first_stored_is_a_later_copy(
    copies: list[Copy], kept: tuple[str, str]
) -> None:
    con = duckdb.connect()
    try:
        for order in (copies, copies[::-1]):
            later = keys.later_copies(con, _keys(order))
            found = {(r["day"], r["hour"]) for r in later.to_pylist()}
            assert found == {(c[0], c[1]) for c in copies} - {kept}
    finally:
        con.close()


def test_without_drops_only_the_rows_of_the_keys_given() -> None:
    table = pa.table({"vehicle_id": ["a", "a", "b"], "seq": [1, 2, 1], "x": [10, 20, 30]})
    drop = pa.table({"vehicle_id": ["a", "c"], "seq": [2, 1]})
    assert keys.without(table, drop)["x"].to_pylist() == [10, 30]
