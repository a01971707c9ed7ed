"""Erased subjects as the compaction sees them, and the SQL that keeps their rows out.

An erasure rewrites every lake file that holds its subject, but a compaction that read bronze
before the erasure rewrote it, and writes silver or gold after the erasure scanned those layers,
would bring the subject's rows back. So the compaction builds silver and gold through views
that leave out every erased subject's rows from before its erasure (the rule the storage
writer applies: received before the erasure, give or take ``MARGIN_US``, or about a time before
it), and asks for erasures again once a day's files are written, building them again when one
came in between.

The audit itself is the erasure package's (a layer above the lake): it hands the compaction an
:class:`ErasureSource`.
"""

# The statements are put together from this module's constants only, never from input: the
# subjects go in as a registered table.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import duckdb
import pyarrow as pa

# The clocks of the host that received a row and of the database that dated the erasure may
# differ by this much (the storage writer's margin).
MARGIN_US = 60_000_000
ERASED_TABLE = "erased_subjects"


@dataclass(frozen=True)
class ErasedSubject:
    erasure_id: int
    kind: str  # "vehicle" or "driver"
    subject_id: str
    erased_at_us: int


class ErasureSource(Protocol):
    def recorded_after(self, erasure_id: int) -> list[ErasedSubject]:
        """Every erasure recorded after ``erasure_id`` (0: all), oldest first."""
        ...


@dataclass(frozen=True)
class RowColumns:
    """Where a layer's rows name their vehicle and driver and say when they are from."""

    vehicle: str
    driver: str
    event_us: str
    ingest_us: str


BRONZE = RowColumns(
    vehicle="r.telemetry.vehicle_id",
    driver="r.vehicle.driver_id",
    event_us="r.telemetry.event_time_us",
    ingest_us="nullif(r.telemetry.ingest_time_us, 0)",
)
SILVER = RowColumns(
    vehicle="r.vehicle_id",
    driver="r.vehicle.driver_id",
    event_us="r.event_time_us",
    ingest_us="r.ingest_time_us",
)


def kept(source: str, columns: RowColumns) -> str:
    """The rows of ``source`` that no erasure in ``ERASED_TABLE`` covers."""
    received = f"({columns.ingest_us} - {MARGIN_US})"
    moment = (
        f"least(coalesce({columns.event_us}, {received}), coalesce({received}, {columns.event_us}))"
    )
    return f"""
        SELECT r.* FROM {source} r
        WHERE NOT EXISTS (
            SELECT 1 FROM {ERASED_TABLE} e
            WHERE ((e.kind = 'vehicle' AND e.subject_id = {columns.vehicle})
                OR (e.kind = 'driver' AND e.subject_id = {columns.driver}))
              AND {moment} <= e.erased_at_us
        )
    """


def register(con: duckdb.DuckDBPyConnection, erased: list[ErasedSubject]) -> None:
    """The erased subjects as ``ERASED_TABLE`` on ``con`` (replacing what was there)."""
    table = pa.table(
        {
            "kind": pa.array([e.kind for e in erased], pa.string()),
            "subject_id": pa.array([e.subject_id for e in erased], pa.string()),
            "erased_at_us": pa.array([e.erased_at_us for e in erased], pa.int64()),
        }
    )
    con.register(ERASED_TABLE, table)


def filtered_view(
    con: duckdb.DuckDBPyConnection, name: str, source: str, columns: RowColumns
) -> None:
    """``name`` as a view of ``source`` (registered on ``con``) without the erased rows."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {kept(source, columns)}")
