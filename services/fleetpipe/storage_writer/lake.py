"""The cold path's bronze layer: Parquet files under
``bronze/<table>/dt=YYYY-MM-DD/hour=HH/`` of the lake's location (a local folder or an
S3-compatible bucket, see :mod:`fleetpipe.lake.store`).

Offsets are committed after every batch, but a good Parquet file holds minutes of data, so
each batch is first appended to a *spool* — an Arrow IPC stream on local disk, flushed (and by
default fsynced) before the batch's offsets are committed — one spool per table, day and hour.
A spool is *rolled* into Parquet when it is big or old enough, on shutdown, or when partitions
are revoked. The roll closes the spool at once and converts it on a background thread, so the
batches keep flowing meanwhile (a million rows take seconds). The Parquet file appears whole or
not at all (see the store); then the state is saved and the spool deleted. The file is named
after its spool, so rolling the same spool again after a crash rewrites the same file instead
of adding one.

Every row carries its Kafka coordinates (``_kafka_topic``, ``_kafka_partition``,
``_kafka_offset``) and its place in that record (``_kafka_pack_index``: the event's position in
a pack, 0 for a record that holds one event): any row of any file is traceable to the event it
came from. Files written before the index was kept have no such column. The highest
offset stored per topic partition — the *watermark* — is kept in memory, saved when a spool
rolls and recovered from the saved state and the surviving spools at start, so records replayed
after a crash (their offsets were not committed) are not written twice. Spools and state belong
to one instance id (stable in a StatefulSet or across restarts of one pod) and stay on local
disk; a partition that a crash hands to another instance may repeat that last batch in bronze,
and the coordinates say which rows are the same (silver keeps one of them).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fleetpipe.core.errors import FleetPipeError
from fleetpipe.lake import layout
from fleetpipe.lake.store import LakeStore, LakeStoreError, ParquetOptions
from fleetpipe.storage_writer.erased import (
    ErasureLog,
    ErasureLogError,
    append_times,
    erased_rows,
    row_moments,
)

log = logging.getLogger(__name__)

TOPIC_COLUMN = "_kafka_topic"
PARTITION_COLUMN = "_kafka_partition"
OFFSET_COLUMN = "_kafka_offset"
# Many events share a pack's offset (core.packs): the position names the one event.
PACK_INDEX_COLUMN = layout.PACK_INDEX
LINEAGE_COLUMNS = (PARTITION_COLUMN, OFFSET_COLUMN, PACK_INDEX_COLUMN)
TOPIC_KEY = "fleetpipe.topic"
# When the spool was opened (its writer's clock): a spool recovered after a crash has lost its
# appends' times, and its rows count as appended then.
CREATED_KEY = "fleetpipe.spool_created"
TIME_COLUMN_KEY = "fleetpipe.time_column"
US_PER_HOUR = 3_600_000_000


class LakeError(FleetPipeError):
    """The lake folder cannot be written (disk full, permissions)."""


def with_lineage(
    table: pa.Table,
    partitions: np.ndarray[Any, Any],
    offsets: np.ndarray[Any, Any],
    *,
    pack_indexes: np.ndarray[Any, Any] | None = None,
) -> pa.Table:
    """``table`` with each row's partition, offset and position in its record (``None``:
    every record holds one event, position 0)."""
    if pack_indexes is None:
        pack_indexes = np.zeros(table.num_rows, dtype=np.int32)
    return (
        table.append_column(PARTITION_COLUMN, pa.array(partitions.astype(np.int32, copy=False)))
        .append_column(OFFSET_COLUMN, pa.array(offsets.astype(np.int64, copy=False)))
        .append_column(PACK_INDEX_COLUMN, pa.array(pack_indexes.astype(np.int32, copy=False)))
    )


@dataclass
class _Spool:
    table: str
    topic: str
    dt: str
    hour: str
    path: Path
    created: float
    file: IO[bytes]
    writer: pa.ipc.RecordBatchStreamWriter
    time_column: str = ""
    rows: int = 0
    # (rows so far, time) after each append: which rows an erasure started later concerns.
    appends: list[tuple[int, float]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return int(self.file.tell())


@dataclass
class LakeStats:
    files: int = 0
    rows: int = 0
    skipped_replayed: int = 0
    erased_rows: int = 0
    paths: list[PurePosixPath] = field(default_factory=list)


class Lake:
    def __init__(
        self,
        root: Path,
        *,
        instance: str,
        store: LakeStore | None = None,
        max_rows: int = 1_000_000,
        max_bytes: int = 256 * 2**20,
        max_age_s: float = 300.0,
        fsync: bool = True,
        compression: str = "zstd",
        clock: Callable[[], float] = time.time,
        erasures: ErasureLog | None = None,
    ) -> None:
        self.root = root
        # The erasure audit, asked at every roll (None: no erasure is ever applied to spools).
        self.erasures = erasures
        # The Parquet files go to the store; the spools and the state stay under root.
        self.store = store if store is not None else LakeStore.from_url(root, fsync=fsync)
        self.instance = instance
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.fsync = fsync
        self.compression = compression
        self._clock = clock
        self._spools: dict[tuple[str, str, str], _Spool] = {}
        self._watermarks: dict[str, dict[int, int]] = {}
        self._counter = 0
        # One converter thread: rolls finish, and save the state, in the order they started.
        self._converter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake-roll")
        self._rolling: list[Future[list[PurePosixPath]]] = []
        self.stats = LakeStats()

    @property
    def spool_root(self) -> Path:
        return self.root / "_spool" / self.instance

    @property
    def state_file(self) -> Path:
        return self.root / "_state" / f"{self.instance}.json"

    # -- start-up ------------------------------------------------------------------------------
    def open(self) -> list[PurePosixPath]:
        """Load the saved watermarks and roll what a previous run of this instance left."""
        try:
            self.spool_root.mkdir(parents=True, exist_ok=True)
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LakeError(f"cannot create the lake folders under {self.root}: {exc}") from exc
        if self.state_file.exists():
            saved = json.loads(self.state_file.read_text())
            self._watermarks = {
                topic: {int(p): int(o) for p, o in parts.items()}
                for topic, parts in saved.get("watermarks", {}).items()
            }
        rolled = []
        for path in sorted(self.spool_root.rglob("*.arrows")):
            rolled.extend(self._recover(path))
        if rolled:
            log.info("rolled %d spool(s) left by an earlier run into Parquet", len(rolled))
        return rolled

    def _recover(self, path: Path) -> list[PurePosixPath]:
        relative = path.relative_to(self.spool_root)
        table_name, dt_part, hour_part = relative.parts[0], relative.parts[1], relative.parts[2]
        table, topic = _read_complete_batches(path)
        if table is None or table.num_rows == 0:
            path.unlink()
            return []
        self._raise_watermarks(topic, table)
        final = self._final_path(table_name, dt_part, hour_part, path.stem)
        meta = table.schema.metadata or {}
        created = float(meta.get(CREATED_KEY.encode(), b"0"))
        time_column = meta.get(TIME_COLUMN_KEY.encode(), b"").decode()
        self._file(table, [(table.num_rows, created)], final, time_column)
        self._save_state(self._watermarks)
        path.unlink()
        return [final]

    # -- appending -----------------------------------------------------------------------------
    def watermark(self, topic: str, partition: int) -> int:
        return self._watermarks.get(topic, {}).get(partition, -1)

    def append(self, table_name: str, table: pa.Table, *, topic: str, time_column: str) -> int:
        """Spool ``table`` (with lineage columns); returns the rows appended (not replayed)."""
        if table.num_rows == 0:
            return 0
        table = self._drop_replayed(topic, table)
        if table.num_rows == 0:
            return 0
        if TOPIC_COLUMN not in table.column_names:
            table = table.append_column(TOPIC_COLUMN, pa.repeat(pa.scalar(topic), table.num_rows))
        hours = pc.divide(table.column(time_column).cast(pa.int64()), US_PER_HOUR).to_numpy()
        touched = []
        now = self._clock()
        try:
            for hour in np.unique(hours):
                part = table if len(hours) == 1 else table.filter(pa.array(hours == hour))
                spool = self._spool(table_name, topic, int(hour), part.schema, time_column)
                spool.writer.write_table(part)
                spool.rows += part.num_rows
                spool.appends.append((spool.rows, now))
                touched.append(spool)
            for spool in touched:
                spool.file.flush()
                if self.fsync:
                    os.fsync(spool.file.fileno())
        except OSError as exc:
            raise LakeError(f"cannot append to the lake under {self.root}: {exc}") from exc
        self._raise_watermarks(topic, table)
        return int(table.num_rows)

    def _drop_replayed(self, topic: str, table: pa.Table) -> pa.Table:
        marks = self._watermarks.get(topic)
        if not marks:
            return table
        partitions = table.column(PARTITION_COLUMN).to_numpy()
        offsets = table.column(OFFSET_COLUMN).to_numpy()
        limit = np.full(int(partitions.max()) + 1, -1, dtype=np.int64)
        for p, o in marks.items():
            if p < len(limit):
                limit[p] = o
        fresh = offsets > limit[partitions]
        if fresh.all():
            return table
        self.stats.skipped_replayed += int((~fresh).sum())
        return table.filter(pa.array(fresh))

    def _raise_watermarks(self, topic: str, table: pa.Table) -> None:
        partitions = table.column(PARTITION_COLUMN).to_numpy()
        offsets = table.column(OFFSET_COLUMN).to_numpy()
        marks = self._watermarks.setdefault(topic, {})
        for p in np.unique(partitions):
            top = int(offsets[partitions == p].max())
            if top > marks.get(int(p), -1):
                marks[int(p)] = top

    def _spool(
        self, table_name: str, topic: str, hour: int, schema: pa.Schema, time_column: str
    ) -> _Spool:
        dt, hh = layout.hour_dirs(hour)
        key = (table_name, dt, hh)
        spool = self._spools.get(key)
        if spool is not None:
            return spool
        self._counter += 1
        now = self._clock()
        spool_id = f"{self.instance}-{int(now * 1e6)}-{self._counter}"
        path = self.spool_root / table_name / dt / hh / f"{spool_id}.arrows"
        path.parent.mkdir(parents=True, exist_ok=True)
        file = path.open("wb")
        schema = schema.with_metadata(
            {TOPIC_KEY: topic, CREATED_KEY: repr(now), TIME_COLUMN_KEY: time_column}
        )
        writer = pa.ipc.new_stream(file, schema)
        spool = _Spool(table_name, topic, dt, hh, path, now, file, writer, time_column)
        self._spools[key] = spool
        return spool

    # -- rolling -------------------------------------------------------------------------------
    def roll(self, *, force: bool = False, wait: bool = False) -> list[PurePosixPath]:
        """Close full or old spools (every spool when ``force``) and start turning them into
        Parquet files; returns the files finished since the last call. ``force`` and ``wait``
        wait for every roll started so far. A roll that failed raises LakeError here, once;
        its spool stays on disk, and the next start rolls it."""
        now = self._clock()
        due = [
            key
            for key, s in self._spools.items()
            if force
            or s.rows >= self.max_rows
            or s.size >= self.max_bytes
            or now - s.created >= self.max_age_s
        ]
        if due:
            spools = [self._spools.pop(key) for key in due]
            for spool in spools:
                try:
                    spool.writer.close()
                    spool.file.close()
                except OSError as exc:
                    raise LakeError(f"cannot close the spool {spool.path}: {exc}") from exc
            # Every row up to these marks is in a Parquet file or a spool that is still on
            # disk, once this roll has written its files.
            marks = {topic: dict(parts) for topic, parts in self._watermarks.items()}
            self._rolling.append(self._converter.submit(self._convert, spools, marks))
        return self._finished(wait=force or wait)

    def _finished(self, *, wait: bool) -> list[PurePosixPath]:
        done = [f for f in self._rolling if wait or f.done()]
        self._rolling = [f for f in self._rolling if f not in done]
        written: list[PurePosixPath] = []
        failure: LakeError | None = None
        for future in done:
            try:
                written.extend(future.result())
            except LakeError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return written

    def _convert(
        self, spools: list[_Spool], marks: dict[str, dict[int, int]]
    ) -> list[PurePosixPath]:
        """On the converter thread: the spools' Parquet files, then the state, then the
        spools are deleted."""
        written = []
        for spool in spools:
            try:
                table, _topic = _read_complete_batches(spool.path)
                final = self._final_path(spool.table, spool.dt, spool.hour, spool.path.stem)
                if table is not None and table.num_rows:
                    self._file(table, spool.appends, final, spool.time_column)
            except (OSError, LakeError) as exc:
                raise LakeError(f"cannot roll {spool.path} into Parquet: {exc}") from exc
            written.append(final)
        try:
            self._save_state(marks)
            for spool in spools:
                spool.path.unlink(missing_ok=True)
        except OSError as exc:
            raise LakeError(f"cannot save the lake state {self.state_file}: {exc}") from exc
        return written

    def _file(
        self,
        table: pa.Table,
        appends: list[tuple[int, float]],
        final: PurePosixPath,
        time_column: str,
    ) -> None:
        """A spool's rows as the Parquet file ``final``, without the rows erased meanwhile:
        the audit is asked before the write and again after it, and an erasure that started
        in between has the file rewritten (its own scan of the lake may have missed it)."""
        moments = row_moments(table, append_times(appends, table.num_rows), time_column)
        seen: set[int] = set()
        table, moments = self._without_erased(table, moments, seen)
        if not table.num_rows:
            return
        self._write_parquet(table, final)
        rest, _ = self._without_erased(table, moments, seen)
        if rest.num_rows == table.num_rows:
            return
        try:
            if rest.num_rows:
                self.store.write_parquet(
                    rest.replace_schema_metadata(None),
                    final.as_posix(),
                    options=ParquetOptions(compression=self.compression),
                )
            else:
                self.store.delete(final.as_posix())
        except LakeStoreError as exc:
            raise LakeError(str(exc)) from exc

    def _without_erased(
        self, table: pa.Table, moments: np.ndarray[Any, Any], seen: set[int]
    ) -> tuple[pa.Table, np.ndarray[Any, Any]]:
        if self.erasures is None or not table.num_rows:
            return table, moments
        try:
            found = self.erasures.started_since(float(np.nanmin(moments)))
        except ErasureLogError as exc:
            raise LakeError(f"cannot check the spool against erasures: {exc}") from exc
        fresh = [e for e in found if e.erasure_id not in seen]
        seen.update(e.erasure_id for e in fresh)
        drop = erased_rows(table, moments, fresh)
        if drop is None or not drop.any():
            return table, moments
        dropped = int(drop.sum())
        self.stats.erased_rows += dropped
        log.info(
            "left %d spooled row(s) of %s out of the lake: erased",
            dropped,
            ", ".join(str(e.subject) for e in fresh),
        )
        keep = ~drop
        return table.filter(pa.array(keep)), moments[keep]

    def _final_path(self, table_name: str, dt: str, hour: str, spool_id: str) -> PurePosixPath:
        return PurePosixPath(layout.bronze(table_name), dt, hour, f"part-{spool_id}.parquet")

    def _write_parquet(self, table: pa.Table, final: PurePosixPath) -> None:
        table = table.replace_schema_metadata(None)
        try:
            self.store.write_parquet(
                table, final.as_posix(), options=ParquetOptions(compression=self.compression)
            )
        except LakeStoreError as exc:
            raise LakeError(str(exc)) from exc
        self.stats.files += 1
        self.stats.rows += table.num_rows
        self.stats.paths.append(final)

    def _save_state(self, marks: dict[str, dict[int, int]]) -> None:
        state = {
            "watermarks": {
                topic: {str(p): o for p, o in sorted(parts.items())}
                for topic, parts in marks.items()
            }
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.state_file)

    def close(self) -> list[PurePosixPath]:
        """Roll every spool and wait for it (a graceful stop leaves nothing behind)."""
        return self.roll(force=True)

    def spools(self) -> Iterator[Path]:
        return (s.path for s in self._spools.values())


def _read_complete_batches(path: Path) -> tuple[pa.Table | None, str]:
    """The whole batches of a spool; a torn last batch (a crash mid-write) is left out: its
    offsets were never committed, so Kafka delivers those records again."""
    batches = []
    schema = None
    try:
        with pa.OSFile(str(path), "rb") as source:
            reader = pa.ipc.open_stream(source)
            schema = reader.schema
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    break
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        log.warning("spool %s ends with a torn batch, kept %d: %s", path, len(batches), exc)
    if schema is None:
        return None, ""
    topic = (schema.metadata or {}).get(TOPIC_KEY.encode(), b"").decode()
    return pa.Table.from_batches(batches, schema=schema), topic
