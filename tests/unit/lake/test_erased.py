"""The compaction's view without erased subjects (DuckDB): a vehicle's or a driver's rows
received or dated before the erasure are left out, its later data and every other row kept."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from fleetpipe.lake import erased
from fleetpipe.lake.erased import ErasedSubject

pytestmark = pytest.mark.unit

ERASED_US = 1_765_000_000_000_000
S = 1_000_000


def _silver() -> pa.Table:
    rows = [
        # vehicle, driver, event time, ingest time (relative to the erasure, seconds)
        ("veh-1", "drv-1", -3600, -3599),
        ("veh-1", "drv-1", -600, 300),  # a backlog sent after the erasure
        ("veh-1", "drv-1", 120, 30),  # received inside the clocks' margin
        ("veh-1", "drv-1", 300, 300),  # new data
        ("veh-2", "drv-7", -60, -60),  # the erased driver on another vehicle
        ("veh-3", "drv-3", -60, None),  # untouched
    ]
    return pa.table(
        {
            "vehicle_id": [r[0] for r in rows],
            "seq": list(range(1, len(rows) + 1)),
            "event_time_us": [ERASED_US + r[2] * S for r in rows],
            "ingest_time_us": [None if r[3] is None else ERASED_US + r[3] * S for r in rows],
            "vehicle": [{"driver_id": r[1], "model": "Transit"} for r in rows],
        }
    )


@pytest.mark.parametrize(
    ("subjects", "kept"),
    [
        pytest.param([], [1, 2, 3, 4, 5, 6], id="no-erasure"),
        pytest.param([("vehicle", "veh-1")], [4, 5, 6], id="vehicle"),
        pytest.param([("driver", "drv-7")], [1, 2, 3, 4, 6], id="driver"),
        pytest.param([("vehicle", "veh-1"), ("driver", "drv-7")], [4, 6], id="both"),
    ],
)
def test_the_silver_view_leaves_out_erased_subjects_rows(
    subjects: list[tuple[str, str]], kept: list[int]
) -> None:
    con = duckdb.connect()
    silver = _silver()
    con.register("silver_files", silver)
    erased.register(
        con, [ErasedSubject(i + 1, kind, sid, ERASED_US) for i, (kind, sid) in enumerate(subjects)]
    )
    erased.filtered_view(con, "silver", "silver_files", erased.SILVER)

    found = con.sql("SELECT seq FROM silver ORDER BY seq").fetchall()

    assert [s for (s,) in found] == kept
