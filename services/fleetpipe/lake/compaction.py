"""Bronze → silver and gold: the compaction job (``fleetpipe lake compact``, a CronJob).

The unit of work is a day. For each day the job fingerprints the bronze files of each of its
hours (names and sizes: bronze files are written once and never change) and compares them with
the day's manifest, written when the day was last compacted:

1. each hour whose bronze changed gets its silver file (and its rejected rows) rebuilt;
2. the day's gold files are rebuilt from the day's silver;
3. the manifest is written, last.

Given the erasure audit (an :class:`~fleetpipe.lake.erased.ErasureSource`), silver and gold
are built without the rows of erased subjects, and the audit is asked again before the
manifest: an erasure recorded while the day was being built (its own scan of the lake may have
missed the files written since) has the day's silver and gold built again without its subject.

Every output is written whole or not at all (see :mod:`fleetpipe.lake.store`) and depends only
on its inputs, sorted: a run killed anywhere leaves the previous files or the new ones, never a
part of one, and the next run redoes the days whose manifest it did not write, producing the
same bytes an uninterrupted run would have. A day whose manifest matches is skipped, so running
the job twice changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from fleetpipe.lake import erased, layout, queries
from fleetpipe.lake.store import LakeStore, LakeStoreError, ParquetOptions

log = logging.getLogger(__name__)

TELEMETRY = "telemetry"
REJECTED = "rejected"
VEHICLE_HOUR = "vehicle_hour"
FLEET_DAY = "fleet_day"
UTC_US = pa.timestamp("us", tz="UTC")
# Silver and gold are read by scans over months: big row groups.
COMPACTED = ParquetOptions(compression="zstd", row_group_size=1024 * 1024)


class HoldAt(StrEnum):
    """Where a crash drill's pause falls: after a day's silver is written, before its gold
    (``gold``), or after an hour's bronze is read and its silver computed, before it is written
    (``silver``)."""

    GOLD = "gold"
    SILVER = "silver"


class CompactionError(LakeStoreError):
    """Bronze cannot be compacted (files of different shapes, a query that fails)."""


@dataclass
class DayResult:
    day: str
    hours_rebuilt: list[str] = field(default_factory=list)
    silver_rows: int = 0
    rejected_rows: int = 0
    duplicates: int = 0
    # How many times the day was built again for an erasure recorded meanwhile.
    rebuilt_for_erasures: int = 0


@dataclass
class CompactionReport:
    compacted: list[DayResult] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    leftovers_removed: int = 0


Hours = dict[str, dict[str, list[tuple[str, int]]]]  # day → hour → bronze files with sizes


def bronze_hours(store: LakeStore, table: str = TELEMETRY) -> Hours:
    prefix = layout.bronze(table) + "/"
    hours: Hours = defaultdict(lambda: defaultdict(list))
    for path, size in store.files(layout.bronze(table)):
        where = layout.day_and_hour(path.removeprefix(prefix))
        if where is not None:
            hours[where[0]][where[1]].append((path, size))
    return hours


def fingerprint(files: list[tuple[str, int]]) -> str:
    return hashlib.sha256(json.dumps(sorted(files)).encode()).hexdigest()[:32]


class Compactor:
    def __init__(
        self,
        store: LakeStore,
        *,
        hold_s: float = 0.0,
        hold_at: HoldAt = HoldAt.GOLD,
        sleep: Callable[[float], None] = time.sleep,
        erasures: erased.ErasureSource | None = None,
    ) -> None:
        self.store = store
        # Fault injection for crash drills: a pause at ``hold_at`` (see HoldAt).
        self.hold_s = hold_s
        self.hold_at = hold_at
        self._sleep = sleep
        # None: no audit to consult (a lake without erasures, or a test of compaction alone).
        self.erasures = erasures
        self._erased: list[erased.ErasedSubject] = []

    def _new_erasures(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Read the erasures recorded since the last look into the connection's table; True
        when there were any."""
        if self.erasures is None:
            return False
        last = self._erased[-1].erasure_id if self._erased else 0
        found = self.erasures.recorded_after(last)
        self._erased.extend(found)
        erased.register(con, self._erased)
        return bool(found)

    def run(self) -> CompactionReport:
        report = CompactionReport()
        for folder in (layout.SILVER, layout.GOLD, layout.MANIFESTS):
            report.leftovers_removed += self.store.remove_leftovers(folder)
        con = duckdb.connect()
        try:
            self._new_erasures(con)
            for day, hours in sorted(bronze_hours(self.store).items()):
                result = self._day(con, day, hours)
                if result is None:
                    report.unchanged.append(day)
                else:
                    report.compacted.append(result)
        finally:
            con.close()
        return report

    def _day(
        self, con: duckdb.DuckDBPyConnection, day: str, hours: dict[str, list[tuple[str, int]]]
    ) -> DayResult | None:
        wanted = {hour: fingerprint(files) for hour, files in sorted(hours.items())}
        saved = self.store.read_bytes(layout.manifest(TELEMETRY, day))
        done: dict[str, str] = json.loads(saved)["hours"] if saved else {}
        stale = [h for h, f in wanted.items() if done.get(h) != f]
        if not stale:
            return None
        result = DayResult(day)
        while True:
            for hour in stale:
                self._silver_hour(con, day, hour, [p for p, _ in hours[hour]], result)
            if self.hold_s and self.hold_at is HoldAt.GOLD:
                self._sleep(self.hold_s)
            self.rebuild_gold(con, day)
            if not self._new_erasures(con):
                break
            # An erasure started while the day was built: its scan of the lake may have come
            # before these files were written. The day's bronze is listed again (the erasure
            # rewrites or deletes files) and its stale hours built again, without its subject.
            log.info("an erasure was recorded while %s was compacted: building it again", day)
            result.rebuilt_for_erasures += 1
            hours = bronze_hours(self.store).get(day, {})
            for hour in stale:
                if hour not in hours:
                    self.store.delete(layout.silver_hour(TELEMETRY, day, hour))
                    self.store.delete(layout.silver_hour(REJECTED, day, hour))
            wanted = {hour: fingerprint(files) for hour, files in sorted(hours.items())}
            stale = [h for h in stale if h in hours]
            result = DayResult(day, rebuilt_for_erasures=result.rebuilt_for_erasures)
        manifest = {"day": day, "hours": {**done, **wanted}}
        self.store.write_bytes(
            layout.manifest(TELEMETRY, day), json.dumps(manifest, indent=1).encode()
        )
        log.info(
            "compacted %s: %d hour(s), %d silver rows, %d rejected, %d duplicates dropped",
            day,
            len(result.hours_rebuilt),
            result.silver_rows,
            result.rejected_rows,
            result.duplicates,
        )
        return result

    def _silver_hour(
        self,
        con: duckdb.DuckDBPyConnection,
        day: str,
        hour: str,
        files: list[str],
        result: DayResult,
    ) -> None:
        try:
            bronze = _with_pack_index(self.store, files)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise CompactionError(f"the bronze files of {day} {hour}h differ: {exc}") from exc
        self._source(con, "bronze", bronze, erased.BRONZE)
        try:
            # Rows the view leaves out are erased, not duplicates: counted through it.
            total = bronze.count_rows() if self.erasures is None else _count(con, "bronze")
            silver = _with_times(_query(con, queries.SILVER, f"silver {day} {hour}h"))
            rejected = _with_times(_query(con, queries.REJECTED, f"rejected {day} {hour}h"))
        finally:
            self._drop_source(con, "bronze")
        if self.hold_s and self.hold_at is HoldAt.SILVER:
            self._sleep(self.hold_s)
        self.store.write_parquet(
            silver, layout.silver_hour(TELEMETRY, day, hour), options=COMPACTED
        )
        rejected_path = layout.silver_hour(REJECTED, day, hour)
        if rejected.num_rows:
            self.store.write_parquet(rejected, rejected_path, options=COMPACTED)
        else:
            self.store.delete(rejected_path)
        result.hours_rebuilt.append(hour)
        result.silver_rows += silver.num_rows
        result.rejected_rows += rejected.num_rows
        result.duplicates += total - silver.num_rows - rejected.num_rows

    def rebuild_gold(self, con: duckdb.DuckDBPyConnection, day: str) -> None:
        """The day's gold files, from all of the day's silver (none left: no gold)."""
        files = [p for p, _ in self.store.files(f"{layout.SILVER}/{TELEMETRY}/dt={day}")]
        if not files:
            self.store.delete(layout.gold_day(VEHICLE_HOUR, day))
            self.store.delete(layout.gold_day(FLEET_DAY, day))
            return
        self._source(con, "silver", self.store.dataset(files), erased.SILVER)
        try:
            vehicle_hour = _query(con, queries.VEHICLE_HOUR, f"vehicle-hours of {day}")
            fleet_day = _query(con, queries.FLEET_DAY, f"fleet-days of {day}")
        finally:
            self._drop_source(con, "silver")
        vehicle_hour = _us_column(vehicle_hour, "hour_us", "hour", UTC_US)
        fleet_day = _us_column(fleet_day, "day_us", "day", pa.date32())
        self.store.write_parquet(
            vehicle_hour, layout.gold_day(VEHICLE_HOUR, day), options=COMPACTED
        )
        self.store.write_parquet(fleet_day, layout.gold_day(FLEET_DAY, day), options=COMPACTED)

    def _source(
        self,
        con: duckdb.DuckDBPyConnection,
        name: str,
        data: object,
        columns: erased.RowColumns,
    ) -> None:
        """``data`` under ``name`` for the queries: as it is, or through a view that leaves
        out the erased subjects' rows when there is an audit."""
        if self.erasures is None:
            con.register(name, data)
            return
        con.register(f"{name}_files", data)
        erased.filtered_view(con, name, f"{name}_files", columns)

    def _drop_source(self, con: duckdb.DuckDBPyConnection, name: str) -> None:
        if self.erasures is None:
            con.unregister(name)
            return
        con.execute(f"DROP VIEW IF EXISTS {name}")
        con.unregister(f"{name}_files")


def _with_pack_index(store: LakeStore, files: list[str]) -> ds.Dataset:
    """The bronze files as one dataset that always has the pack index column: files written
    before it was kept read as null there (the position is not known), so the queries can
    order on it whichever file the dataset took its schema from."""
    dataset = store.dataset(files)
    schema = dataset.schema
    if layout.PACK_INDEX in schema.names:
        return dataset
    # Where the storage writer puts it: right after the offset.
    offset = schema.get_field_index("_kafka_offset")
    at = offset + 1 if offset >= 0 else len(schema)
    return store.dataset(files, schema=schema.insert(at, pa.field(layout.PACK_INDEX, pa.int32())))


def _count(con: duckdb.DuckDBPyConnection, name: str) -> int:
    # fetchall: the result is finished, and the connection free for the next query.
    rows = con.execute(f"SELECT count(*) FROM {name}").fetchall()  # noqa: S608 - a fixed name
    return int(rows[0][0]) if rows else 0


def _query(con: duckdb.DuckDBPyConnection, sql: str, what: str) -> pa.Table:
    try:
        table: pa.Table = con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        raise CompactionError(f"cannot compute the {what}: {exc}") from exc
    return table


def _with_times(table: pa.Table) -> pa.Table:
    """Event and ingest time as UTC timestamps beside the device's microseconds."""
    at = table.schema.get_field_index("ingest_time_us") + 1
    event = table.column("event_time_us").cast(pa.int64()).cast(UTC_US)
    ingest = table.column("ingest_time_us").cast(pa.int64()).cast(UTC_US)
    return table.add_column(at, "event_time", event).add_column(at + 1, "ingest_time", ingest)


def _us_column(table: pa.Table, name: str, new: str, typ: pa.DataType) -> pa.Table:
    """Microseconds since the epoch → a UTC timestamp, or a date (whole days)."""
    index = table.schema.get_field_index(name)
    micros = table.column(name).cast(pa.int64())
    if typ == pa.date32():
        days = pc.divide(micros, queries.US_PER_DAY).cast(pa.int32())
        return table.set_column(index, new, days.cast(pa.date32()))
    return table.set_column(index, new, micros.cast(typ))
