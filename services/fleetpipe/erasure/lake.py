"""Erasing a subject from every lake layer: each Parquet file that holds the subject's rows is
rewritten without them (atomically: a reader sees the old file or the new one) or deleted when
nothing else is left in it; then the gold of every day whose silver changed is rebuilt from
that silver, so no aggregate still counts the subject, and the subject's keys leave silver's
key index (:mod:`fleetpipe.lake.keys`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from fleetpipe.erasure.subject import Subject
from fleetpipe.lake import keys, layout
from fleetpipe.lake.compaction import COMPACTED, Compactor
from fleetpipe.lake.store import LakeStore, ParquetOptions

log = logging.getLogger(__name__)

# Where a file's rows name their vehicle and driver: flat columns (silver, gold, bronze alerts,
# trips and scores) or the nested event (bronze telemetry, and silver's copy of it).
_NESTED = {"vehicle_id": ("telemetry", "vehicle_id"), "driver_id": ("vehicle", "driver_id")}


@dataclass(frozen=True)
class FileErasure:
    path: str
    rows_erased: int
    rows_left: int

    def as_record(self) -> dict[str, object]:
        return asdict(self)


def subject_rows(table: pa.Table, subject: Subject) -> pa.ChunkedArray | None:
    """A mask of the rows of ``table`` that belong to ``subject``; None when the table has no
    column that names one."""
    column = subject.kind.column
    masks = []
    if column in table.column_names:
        masks.append(pc.equal(table[column], subject.id))
    parent, child = _NESTED[column]
    if parent in table.column_names and pa.types.is_struct(table.schema.field(parent).type):
        masks.append(pc.equal(pc.struct_field(table[parent], child), subject.id))
    if not masks:
        return None
    mask = masks[0]
    for other in masks[1:]:
        mask = pc.or_(mask, other)
    return pc.fill_null(mask, False)


def erase_from_lake(store: LakeStore, subject: Subject) -> list[FileErasure]:
    done: list[FileErasure] = []
    silver_days: set[str] = set()
    for layer in (layout.BRONZE, layout.SILVER, layout.GOLD):
        for path, _ in store.files(layer):
            table = store.read_table(path)
            mask = subject_rows(table, subject)
            if mask is None:
                continue
            erased = int(pc.sum(mask.cast(pa.int64())).as_py() or 0)
            if not erased:
                continue
            kept = table.filter(pc.invert(mask))
            if kept.num_rows:
                options = ParquetOptions() if layer == layout.BRONZE else COMPACTED
                store.write_parquet(kept, path, options=options)
            else:
                store.delete(path)
            done.append(FileErasure(path, erased, kept.num_rows))
            log.info("erased %d row(s) of %s from %s", erased, subject, path)
            if layer == layout.SILVER:
                silver_days.add(path.split("/")[2].removeprefix("dt="))
    for day in keys.indexed_days(store):
        index = keys.read_day(store, day)
        mask = None if index is None else subject_rows(index, subject)
        if index is None or mask is None:
            continue
        erased = int(pc.sum(mask.cast(pa.int64())).as_py() or 0)
        if erased:
            keys.write_day(store, day, index.filter(pc.invert(mask)))
            log.info("erased %d key(s) of %s from silver's key index of %s", erased, subject, day)
    # Gold aggregates that counted the subject's events (a fleet's day, a driver's hours on a
    # vehicle) are rebuilt from the silver that no longer has them.
    compactor = Compactor(store)
    con = duckdb.connect()
    try:
        for day in sorted(silver_days):
            compactor.rebuild_gold(con, day)
    finally:
        con.close()
    return done
