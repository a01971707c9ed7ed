"""Bronze → silver and gold: the compaction job (``fleetpipe lake compact``, a CronJob).

The unit of work is a day. For each day the job fingerprints the bronze files of each of its
hours (names and sizes: bronze files are written once and never change) and compares them with
the day's manifest, written when the day was last compacted:

1. each hour whose bronze changed gets its silver file (and its rejected rows) rebuilt;
2. a (vehicle, seq) silver holds in another hour too, of this day or another, stays only in the
   hour of its first stored copy (see :mod:`fleetpipe.lake.keys`, whose index says where silver's
   keys are): the other hours' silver files lose it, and those days' gold is rebuilt;
3. the day's gold files are rebuilt from the day's silver;
4. the day's key index is written, and the manifest, last.

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

from fleetpipe.lake import erased, keys, layout, queries
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
    # Rows taken out of silver hours not rebuilt here (other days', or this day's unchanged
    # hours): a copy stored before them is in this day's new bronze.
    displaced: int = 0
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
            self._index_unindexed_days()
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
            fresh = [
                self._silver_hour(con, day, hour, [p for p, _ in hours[hour]], result)
                for hour in stale
            ]
            day_keys, later = self._later_copies(con, day, stale, fresh)
            displaced_days = self._displace(day, stale, later, result)
            if self.hold_s and self.hold_at is HoldAt.GOLD:
                self._sleep(self.hold_s)
            self.rebuild_gold(con, day)
            for other, copies in sorted(displaced_days.items()):
                self.rebuild_gold(con, other)
                # Its silver no longer has them: neither has its index (written after its gold,
                # so a run killed before sees them again and finishes the day).
                index = keys.read_day(self.store, other)
                if index is not None:
                    hour_keys = ("vehicle_id", "seq", "hour")
                    keys.write_day(self.store, other, keys.without(index, copies, on=hour_keys))
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
        keys.write_day(self.store, day, day_keys)
        manifest = {"day": day, "hours": {**done, **wanted}}
        self.store.write_bytes(
            layout.manifest(TELEMETRY, day), json.dumps(manifest, indent=1).encode()
        )
        log.info(
            "compacted %s: %d hour(s), %d silver rows, %d rejected, %d duplicates dropped,"
            " %d displaced from other hours",
            day,
            len(result.hours_rebuilt),
            result.silver_rows,
            result.rejected_rows,
            result.duplicates,
            result.displaced,
        )
        return result

    def _silver_hour(
        self,
        con: duckdb.DuckDBPyConnection,
        day: str,
        hour: str,
        files: list[str],
        result: DayResult,
    ) -> pa.Table:
        """Build the hour's silver (one row per key within the hour) and rejected rows; the
        silver rows' keys. A key whose first stored copy is in another hour leaves it next
        (``_displace``): reading the hour's bronze twice, to know its keys first, would cost
        every hour more than rewriting the few hours that hold such a key."""
        bronze = self._bronze(con, day, hour, files)
        try:
            # Rows the view leaves out are erased, not duplicates: counted through it.
            total = bronze.count_rows() if self.erasures is None else _count(con, "bronze")
            silver = _with_times(_query(con, queries.SILVER, f"silver {day} {hour}h"))
            rejected = _with_times(_query(con, queries.REJECTED, f"rejected {day} {hour}h"))
        finally:
            self._drop_source(con, "bronze")
        silver = _as_read_back(silver)
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
        return keys.of_silver(silver, day, hour)

    def _bronze(
        self, con: duckdb.DuckDBPyConnection, day: str, hour: str, files: list[str]
    ) -> ds.Dataset:
        """The hour's bronze as ``bronze`` on ``con`` (erased rows left out); drop it with
        ``_drop_source``."""
        try:
            bronze = _with_pack_index(self.store, files)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise CompactionError(f"the bronze files of {day} {hour}h differ: {exc}") from exc
        self._source(con, "bronze", bronze, erased.BRONZE)
        return bronze

    def _index_unindexed_days(self) -> None:
        """Index the days whose silver has no key index (compacted before the index was kept,
        or by a run killed before it wrote it), so every day's keys can be compared."""
        indexed = set(keys.indexed_days(self.store))
        silver_days = {
            p.split("/")[2].removeprefix("dt=")
            for p, _ in self.store.files(f"{layout.SILVER}/{TELEMETRY}")
        }
        for day in sorted(silver_days - indexed):
            keys.write_day(self.store, day, keys.from_silver(self.store, day))

    def _later_copies(
        self,
        con: duckdb.DuckDBPyConnection,
        day: str,
        stale: list[str],
        fresh: list[pa.Table],
    ) -> tuple[pa.Table, pa.Table]:
        """Compare the day's keys (its stale hours' ``fresh`` ones, the index's for the others)
        with the other days' that may repeat them. The day's keys without its later copies, and
        every later copy found (vehicle_id, seq, day, hour), in this day or another."""
        prefix = f"{layout.SILVER}/{TELEMETRY}/"
        kept_hours = {
            where[1]
            for p, _ in self.store.files(f"{prefix}dt={day}")
            if (where := layout.day_and_hour(p.removeprefix(prefix))) is not None
        } - set(stale)
        before = keys.read_day(self.store, day)
        if before is None:
            # Not indexed yet: the hours it keeps are read from their silver (none for a new day).
            before = keys.from_silver(self.store, day, hours=kept_hours)
        unchanged = before.filter(
            pc.is_in(before["hour"], pa.array(sorted(kept_hours), pa.string()))
        )
        day_keys = pa.concat_tables([unchanged, *fresh])
        con.register("day_keys", day_keys)
        try:
            neighbours = keys.neighbours(con, self.store, day)
        finally:
            con.unregister("day_keys")
        later = keys.later_copies(con, pa.concat_tables([day_keys, neighbours]))
        mine = later.filter(pc.equal(later["day"], day))
        return keys.without(day_keys, mine, on=("vehicle_id", "seq", "hour")), later

    def _displace(
        self, day: str, stale: list[str], later: pa.Table, result: DayResult
    ) -> dict[str, pa.Table]:
        """Take the later copies out of their silver hours; the later copies of each other
        day."""
        displaced: dict[str, pa.Table] = {}
        for (at_day, hour), copies in _by_hour(later).items():
            removed = self._drop_from_silver(at_day, hour, copies)
            if at_day == day and hour in stale:
                result.silver_rows -= removed
                result.duplicates += removed
            else:
                result.displaced += removed
            if at_day != day:
                displaced.setdefault(at_day, keys.empty().select(["vehicle_id", "seq", "hour"]))
                displaced[at_day] = pa.concat_tables(
                    [displaced[at_day], copies.select(["vehicle_id", "seq", "hour"])]
                )
        return displaced

    def _drop_from_silver(self, day: str, hour: str, copies: pa.Table) -> int:
        """Rewrite an hour's silver without ``copies`` (its rows of those keys); how many went."""
        path = layout.silver_hour(TELEMETRY, day, hour)
        if not self.store.exists(path):
            return 0
        silver = self.store.read_table(path)
        kept = keys.without(silver, copies)
        removed = int(silver.num_rows - kept.num_rows)
        if not removed:
            return 0
        # Kept even when empty, as an hour built from bronze with nothing left is.
        self.store.write_parquet(kept, path, options=COMPACTED)
        return removed

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


def _by_hour(later: pa.Table) -> dict[tuple[str, str], pa.Table]:
    """``later`` (sorted by day and hour) split by (day, hour)."""
    groups: dict[tuple[str, str], pa.Table] = {}
    for day, hour in sorted(
        set(zip(later["day"].to_pylist(), later["hour"].to_pylist(), strict=True))
    ):
        mask = pc.and_(pc.equal(later["day"], day), pc.equal(later["hour"], hour))
        groups[(day, hour)] = later.filter(mask)
    return groups


def _as_read_back(table: pa.Table) -> pa.Table:
    """``table`` with the types a Parquet reader gives it back (list items named ``element``,
    DuckDB names them ``l``): a silver hour rewritten from its file (an earlier copy came in
    elsewhere) then has the bytes it would have had if built from bronze after that copy."""
    return table.cast(pa.schema([f.with_type(_read_back_type(f.type)) for f in table.schema]))


def _read_back_type(typ: pa.DataType) -> pa.DataType:
    if pa.types.is_list(typ):
        item = typ.value_field
        return pa.list_(pa.field("element", _read_back_type(item.type), item.nullable))
    if pa.types.is_struct(typ):
        return pa.struct([f.with_type(_read_back_type(f.type)) for f in typ])
    return typ


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
