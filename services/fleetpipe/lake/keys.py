"""Silver's key index: which (vehicle, seq) silver holds, in which hour, from which bronze row.

Silver keeps **one row per (vehicle, seq) across all its hours**, not only within each hour of
bronze (bronze is filed by event hour, so a seq re-sent with a clock in another hour, or
replayed, lands in two hours). The row kept is the **first stored**: the copy with the lowest
bronze coordinate ``(_kafka_topic, _kafka_partition, _kafka_offset, _kafka_pack_index)``, the
order Kafka gave the copies (a pack's events share its offset and are told apart by their
position; rows of files written before the position was kept sort after those with one, as
within an hour). Should two copies share a coordinate, the earlier event hour wins. Neither the
order bronze files arrive in nor the order days are compacted in changes which copy that is.

The index is what lets a compaction find the other copies without reading all of silver:

::

    _compaction/keys/telemetry/dt=YYYY-MM-DD.parquet        a row per silver row of the day:
                                                            vehicle, seq, day, hour, coordinate,
                                                            driver
    _compaction/seq_ranges/telemetry/dt=YYYY-MM-DD.parquet  per vehicle: the day's lowest and
                                                            highest seq

A day being compacted reads every day's seq ranges (one small row per vehicle and day), and the
keys only of the days whose range for a vehicle overlaps its own: a device counts its seq up, so
those are the days that hold a copy, or next to it. Both files are rewritten whole, like silver,
and follow it: an erasure takes its subject's keys out, retention the keys of expired hours.
"""

# The statements are put together from this module's constants only, never from input.
# ruff: noqa: S608

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from fleetpipe.lake import layout
from fleetpipe.lake.store import LakeStore, ParquetOptions

KEYS = "keys"
SEQ_RANGES = "seq_ranges"
TELEMETRY = "telemetry"
# Read whole, a day at a time: one row group.
_INDEX = ParquetOptions(compression="zstd", row_group_size=64 * 1024 * 1024)

SCHEMA = pa.schema(
    [
        ("vehicle_id", pa.string()),
        ("seq", pa.int64()),
        ("day", pa.string()),
        ("hour", pa.string()),
        ("_kafka_topic", pa.string()),
        ("_kafka_partition", pa.int32()),
        ("_kafka_offset", pa.int64()),
        (layout.PACK_INDEX, pa.int32()),
        ("driver_id", pa.string()),
    ]
)
RANGES = pa.schema(
    [
        ("vehicle_id", pa.string()),
        ("day", pa.string()),
        ("min_seq", pa.int64()),
        ("max_seq", pa.int64()),
    ]
)
_COORDINATES = f"_kafka_topic, _kafka_partition, _kafka_offset, {layout.PACK_INDEX}"


def keys_path(day: str) -> str:
    return f"{layout.MANIFESTS}/{KEYS}/{TELEMETRY}/dt={day}.parquet"


def ranges_path(day: str) -> str:
    return f"{layout.MANIFESTS}/{SEQ_RANGES}/{TELEMETRY}/dt={day}.parquet"


def _day_of(path: str) -> str:
    return path.rsplit("/", 1)[1].removeprefix("dt=").removesuffix(".parquet")


def indexed_days(store: LakeStore) -> list[str]:
    return [_day_of(p) for p, _ in store.files(f"{layout.MANIFESTS}/{KEYS}/{TELEMETRY}")]


def _ranged_files(store: LakeStore) -> list[str]:
    return [p for p, _ in store.files(f"{layout.MANIFESTS}/{SEQ_RANGES}/{TELEMETRY}")]


def empty() -> pa.Table:
    return SCHEMA.empty_table()


def of_silver(silver: pa.Table, day: str, hour: str) -> pa.Table:
    """The keys of an hour's silver rows (a file from before the pack index: null there)."""
    n = silver.num_rows
    pack = silver[layout.PACK_INDEX] if layout.PACK_INDEX in silver.column_names else None
    driver = pc.struct_field(silver["vehicle"], "driver_id") if n else pa.array([], pa.string())
    columns = [
        silver["vehicle_id"],
        silver["seq"],
        pa.repeat(pa.scalar(day, pa.string()), n),
        pa.repeat(pa.scalar(hour, pa.string()), n),
        silver["_kafka_topic"],
        silver["_kafka_partition"],
        silver["_kafka_offset"],
        pa.nulls(n, pa.int32()) if pack is None else pack,
        driver,
    ]
    return pa.Table.from_arrays(
        [c if isinstance(c, pa.ChunkedArray) else pa.chunked_array([c]) for c in columns],
        names=SCHEMA.names,
    ).cast(SCHEMA)


def read_day(store: LakeStore, day: str) -> pa.Table | None:
    """The day's keys; None when the day has no index (never compacted, or by a version that
    kept none)."""
    if not store.exists(keys_path(day)):
        return None
    return store.read_table(keys_path(day)).cast(SCHEMA)


def from_silver(store: LakeStore, day: str, *, hours: set[str] | None = None) -> pa.Table:
    """The day's keys as its silver files hold them (a lake compacted before the index), of
    ``hours`` only when given."""
    parts = [empty()]
    for path, _ in store.files(f"{layout.SILVER}/{TELEMETRY}/dt={day}"):
        where = layout.day_and_hour(path.removeprefix(f"{layout.SILVER}/{TELEMETRY}/"))
        if where is not None and (hours is None or where[1] in hours):
            parts.append(of_silver(store.read_table(path), day, where[1]))
    return pa.concat_tables(parts)


def write_day(store: LakeStore, day: str, keys: pa.Table) -> None:
    """The day's keys and seq ranges, sorted so the same keys give the same bytes; both files
    go when the day has no key left."""
    if not keys.num_rows:
        store.delete(ranges_path(day))
        store.delete(keys_path(day))
        return
    keys = keys.cast(SCHEMA).sort_by([("vehicle_id", "ascending"), ("seq", "ascending")])
    spans = keys.group_by("vehicle_id").aggregate([("seq", "min"), ("seq", "max")])
    spans = spans.sort_by("vehicle_id")
    ranges = pa.table(
        [
            spans["vehicle_id"],
            pa.repeat(pa.scalar(day, pa.string()), spans.num_rows),
            spans["seq_min"],
            spans["seq_max"],
        ],
        schema=RANGES,
    )
    # Keys first: ranges that name a day whose keys are not written yet would be read as none.
    store.write_parquet(keys, keys_path(day), options=_INDEX)
    store.write_parquet(ranges, ranges_path(day), options=_INDEX)


def neighbours(con: duckdb.DuckDBPyConnection, store: LakeStore, day: str) -> pa.Table:
    """The keys of other days that may be copies of ``day_keys`` (registered on ``con``): for
    each vehicle, those of the days whose seq range overlaps the day's own."""
    files = [p for p in _ranged_files(store) if _day_of(p) != day]
    if not files:
        return empty()
    con.register("other_ranges", store.dataset(files, schema=RANGES))
    try:
        overlaps: pa.Table = con.sql(
            """
            WITH mine AS (
                SELECT vehicle_id, min(seq) AS lo, max(seq) AS hi FROM day_keys GROUP BY ALL
            )
            SELECT r.day, m.vehicle_id, m.lo, m.hi
            FROM other_ranges r JOIN mine m USING (vehicle_id)
            WHERE r.min_seq <= m.hi AND r.max_seq >= m.lo
            """
        ).to_arrow_table()
    finally:
        con.unregister("other_ranges")
    days = sorted(set(overlaps["day"].to_pylist()))
    if not days:
        return empty()
    con.register("shared_ranges", overlaps)
    con.register("other_keys", store.dataset([keys_path(d) for d in days], schema=SCHEMA))
    try:
        found: pa.Table = con.sql(
            """
            SELECT k.* FROM other_keys k
            JOIN shared_ranges o ON k.day = o.day AND k.vehicle_id = o.vehicle_id
            WHERE k.seq BETWEEN o.lo AND o.hi
            """
        ).to_arrow_table()
    finally:
        con.unregister("other_keys")
        con.unregister("shared_ranges")
    return found.cast(SCHEMA)


def later_copies(con: duckdb.DuckDBPyConnection, keys: pa.Table) -> pa.Table:
    """The (vehicle_id, seq, day, hour) of every copy in ``keys`` that is not the first stored
    of its (vehicle, seq)."""
    con.register("all_keys", keys)
    try:
        later: pa.Table = con.sql(
            f"""
            WITH repeated AS (
                SELECT vehicle_id, seq FROM all_keys GROUP BY ALL HAVING count(*) > 1
            )
            SELECT vehicle_id, seq, day, hour FROM all_keys SEMI JOIN repeated
                USING (vehicle_id, seq)
            QUALIFY row_number() OVER (
                PARTITION BY vehicle_id, seq ORDER BY {_COORDINATES}, day, hour
            ) > 1
            ORDER BY day, hour, vehicle_id, seq
            """
        ).to_arrow_table()
    finally:
        con.unregister("all_keys")
    return later


def _key_strings(table: pa.Table, on: tuple[str, ...]) -> pa.ChunkedArray:
    """One string per row of the columns ``on``, to match the rows of two tables with
    ``is_in``."""
    parts = [pc.cast(table[name], pa.string()) for name in on]
    joined: pa.ChunkedArray = pc.binary_join_element_wise(*parts, "\x1f")
    return joined


def without(
    table: pa.Table, drop: pa.Table, *, on: tuple[str, ...] = ("vehicle_id", "seq")
) -> pa.Table:
    """``table`` without the rows whose columns ``on`` match a row of ``drop``."""
    if not drop.num_rows or not table.num_rows:
        return table
    gone = _key_strings(drop, on).combine_chunks()
    return table.filter(pc.invert(pc.is_in(_key_strings(table, on), value_set=gone)))
