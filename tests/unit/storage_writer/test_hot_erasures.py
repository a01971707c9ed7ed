"""Which rows the hot store leaves out for an erasure: the subject's rows received or dated
before it, by vehicle or driver, in every table of a batch; its new data and every other
subject's rows are kept."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from fleetpipe.erasure.audit import Erasure
from fleetpipe.erasure.subject import Subject, SubjectKind
from fleetpipe.storage_writer.erased import MARGIN_S
from fleetpipe.storage_writer.hot_erasures import without_erased

pytestmark = pytest.mark.unit

ERASED_S = 1_765_000_000.0
US = pa.timestamp("us", tz="UTC")


def _at(offset_s: float) -> int:
    return int((ERASED_S + offset_s) * 1_000_000)


def _erasure(kind: SubjectKind, subject: str, erasure_id: int = 1) -> Erasure:
    return Erasure(erasure_id, Subject(kind, subject), datetime.fromtimestamp(ERASED_S, UTC))


def _telemetry(rows: list[tuple[str, str, float, float | None]]) -> pa.Table:
    return pa.table(
        {
            "vehicle_id": [r[0] for r in rows],
            "driver_id": [r[1] for r in rows],
            "seq": list(range(1, len(rows) + 1)),
            "event_time": pa.array([_at(r[2]) for r in rows], US),
            "ingest_time": pa.array([None if r[3] is None else _at(r[3]) for r in rows], US),
        }
    )


def test_a_vehicles_rows_from_before_its_erasure_are_left_out_and_its_new_data_kept() -> None:
    table = _telemetry(
        [
            ("veh-1", "drv-1", -3600, -3599),  # from before, still in Kafka
            ("veh-1", "drv-1", -600, MARGIN_S + 5),  # a backlog: dated before, sent after
            ("veh-1", "drv-1", 30, 10),  # device clock ahead: received just after, in the margin
            ("veh-1", "drv-1", 120, 120),  # new data, received and dated after
            ("veh-1", "drv-1", -10, None),  # no receipt time: goes by its own
            ("veh-2", "drv-2", -3600, -3599),  # another vehicle
        ]
    )

    left = without_erased(table, "telemetry", [_erasure(SubjectKind.VEHICLE, "veh-1")])

    assert left.rows == 4
    assert left.table is not None
    kept = left.table.select(["vehicle_id", "seq"]).to_pylist()
    assert kept == [{"vehicle_id": "veh-1", "seq": 4}, {"vehicle_id": "veh-2", "seq": 6}]


def test_a_drivers_erasure_takes_their_rows_on_every_vehicle() -> None:
    table = _telemetry([("veh-1", "drv-9", -60, -60), ("veh-2", "drv-9", -60, -60)])
    table = table.append_column("x", pa.array([1, 2]))
    other = _telemetry([("veh-3", "drv-3", -60, -60)]).append_column("x", pa.array([3]))

    left = without_erased(
        pa.concat_tables([table, other]), "telemetry", [_erasure(SubjectKind.DRIVER, "drv-9")]
    )

    assert left.rows == 2 and left.table is not None
    assert left.table["vehicle_id"].to_pylist() == ["veh-3"]


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        pytest.param("trips", {"start_time": [-100, 100]}, id="trips-by-start"),
        pytest.param("scores", {"window_start": [-100, 100]}, id="scores-by-window-start"),
        pytest.param("latest", {"event_time": [-100, 100]}, id="latest-by-event"),
        pytest.param(
            "alerts",
            {"event_time": [-100, 100], "ingest_time": [-100, 100]},
            id="alerts-by-event-and-ingest",
        ),
    ],
)
def test_every_table_of_a_batch_is_filtered_by_its_own_time(
    name: str, columns: dict[str, list[int]]
) -> None:
    table = pa.table(
        {
            "vehicle_id": ["veh-1", "veh-1"],
            **{c: pa.array([_at(v) for v in values], US) for c, values in columns.items()},
        }
    )

    left = without_erased(table, name, [_erasure(SubjectKind.VEHICLE, "veh-1")])

    assert left.rows == 1 and left.table is not None and left.table.num_rows == 1


def test_a_dead_letter_is_the_vehicles_by_its_record_key() -> None:
    table = pa.table(
        {
            "record_key": ["veh-1", "veh-2", None],
            "time": pa.array([_at(-5)] * 3, US),
        }
    )

    left = without_erased(table, "dead_letters", [_erasure(SubjectKind.VEHICLE, "veh-1")])

    assert left.rows == 1 and left.table is not None
    assert left.table["record_key"].to_pylist() == ["veh-2", None]
    assert left.table.column_names == ["record_key", "time"], "stored as it came"


def test_no_erasure_or_no_rows_leaves_the_table_as_it_is() -> None:
    table = _telemetry([("veh-1", "drv-1", -60, -60)])
    assert without_erased(table, "telemetry", []).table is table
    assert without_erased(None, "telemetry", [_erasure(SubjectKind.VEHICLE, "veh-1")]).rows == 0
