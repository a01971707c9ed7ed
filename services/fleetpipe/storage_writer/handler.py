"""One batch of records → one PostgreSQL transaction and one append to the Parquet spools.

The order inside a batch is what makes the writer safe to kill anywhere: the database commit,
then the spool append (flushed), then ``handle()`` returns and the loop commits the offsets. A
crash before the offsets are committed replays the batch: the database ignores rows it has
(primary keys) and the lake skips offsets at or below its watermarks. A database that cannot be
reached raises :class:`RetryLater`: the loop rewinds to the committed offsets and backs off, and
the batch waits in Kafka.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from prometheus_client import CollectorRegistry

from fleetpipe.core.db import DatabaseUnavailable
from fleetpipe.core.kafka import Message, TopicPartition
from fleetpipe.core.loop import BaseHandler, RetryLater
from fleetpipe.core.metrics import Instruments, Metrics
from fleetpipe.core.packs import PackedRecord
from fleetpipe.core.records import Output, Record, set_aside_undecodable
from fleetpipe.pb.v1 import enriched_pb2
from fleetpipe.storage_writer import columns
from fleetpipe.storage_writer.database import RowRetention, WriteBatch, WriteResult
from fleetpipe.storage_writer.deadletters import dead_letter_table
from fleetpipe.storage_writer.lake import LINEAGE_COLUMNS, Lake, LakeError, with_lineage
from fleetpipe.storage_writer.partitions import HotWindow, hot_window

log = logging.getLogger(__name__)

_partition = Message.partition
_offset = Message.offset


def _pack_index(record: Record[Any]) -> int:
    """The record's place in its Kafka record: an event of a pack its position, else 0."""
    return record.index if isinstance(record, PackedRecord) else 0


class StorePort(Protocol):
    def write(self, batch: WriteBatch) -> WriteResult: ...
    def maintain(
        self,
        window: HotWindow,
        *,
        events_retention_days: float,
        rows: RowRetention | None = None,
    ) -> tuple[list[date], list[date]]: ...
    def forget_stored_seqs(self) -> None: ...


@dataclass(frozen=True)
class StorageTopics:
    telemetry: str
    alerts: str
    trips: str
    scores: str
    # Empty when this writer does not store dead letters.
    deadletter: str = ""


@dataclass(frozen=True)
class StoragePolicy:
    hot_retention_days: float = 3.0
    partitions_ahead_days: int = 2
    events_retention_days: float = 90.0
    rows: RowRetention = field(default_factory=RowRetention)
    maintenance_interval_s: float = 600.0
    latest_interval_s: float = 5.0
    hold_s: float = 0.0


class StorageMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        m = Instruments(registry, "fleetpipe_storage")
        self.rows = m.counter("rows", "Rows written to PostgreSQL", ["table"])
        self.outside_window = m.counter(
            "rows_outside_hot_window",
            "Telemetry rows whose day is past retention or too far ahead: Parquet only",
        )
        self.replayed = m.counter(
            "replayed_batches",
            "Batches that repeated stored rows (after a crash) and were de-duplicated",
        )
        self.duplicates = m.counter(
            "duplicate_rows",
            "Telemetry rows left out: their (vehicle, seq) was stored already, on any day",
        )
        self.taken_over = m.counter(
            "key_groups_taken_over",
            "Key groups whose telemetry another writer (or none) stored last: their vehicles "
            "were probed afresh",
        )
        self.erased_rows = m.counter(
            "erased_rows",
            "Rows of erased vehicles or drivers left out of PostgreSQL (arrived after the erasure)",
            ["table"],
        )
        self.lake_rows = m.counter("lake_rows", "Rows appended to the Parquet spools", ["table"])
        self.lake_files = m.counter("lake_files", "Parquet files written")
        self.db_seconds = m.histogram(
            "db_seconds",
            "Time of one batch's database transaction",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )


class StorageHandler(BaseHandler):
    def __init__(
        self,
        *,
        topics: StorageTopics,
        store: StorePort,
        lake: Lake | None,
        metrics: StorageMetrics,
        policy: StoragePolicy,
        decoder: columns.TelemetryDecoder | None = None,
        single_input: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        shared: Metrics | None = None,
    ) -> None:
        self.shared = shared
        self.topics = topics
        self.store = store
        self.lake = lake
        self.metrics = metrics
        self.policy = policy
        self.decoder = decoder or columns.TelemetryDecoder()
        # Set when the loop consumes this one topic only: no per-record sorting by topic.
        self.single_input = single_input
        self._clock = clock
        self._sleep = sleep
        self._next_maintenance = 0.0
        self._latest: list[pa.Table] = []
        self._latest_flushed = clock()

    # -- hooks ---------------------------------------------------------------------------------
    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        # Their vehicles may be stored by another writer from now on: probe them afresh.
        self.store.forget_stored_seqs()
        # Close the spools while the records in them are still ours: the next owner starts
        # after our committed offsets.
        if self.lake is not None:
            try:
                self._count_files(self.lake.roll(force=True))
            except LakeError as exc:
                log.error("could not roll the Parquet spools on revoke: %s", exc)

    def on_tick(self, now: float, out: Output) -> None:
        if now >= self._next_maintenance:
            try:
                self._maintain(now)
            except DatabaseUnavailable as exc:
                log.warning("partition maintenance postponed: %s", exc)
        if self.lake is not None:
            try:
                self._count_files(self.lake.roll())
            except LakeError as exc:
                log.error("could not roll the Parquet spools: %s", exc)

    def _maintain(self, now: float) -> None:
        self.store.maintain(
            self._window(now),
            events_retention_days=self.policy.events_retention_days,
            rows=self.policy.rows,
        )
        self._next_maintenance = now + self.policy.maintenance_interval_s

    def _window(self, now: float) -> HotWindow:
        return hot_window(
            datetime.fromtimestamp(now, UTC),
            retention_days=self.policy.hot_retention_days,
            ahead_days=self.policy.partitions_ahead_days,
        )

    def _count_files(self, paths: list[Any]) -> None:
        if paths:
            self.metrics.lake_files.inc(len(paths))

    # -- the batch -----------------------------------------------------------------------------
    def handle(self, records: list[Record[Any]], out: Output) -> None:
        now = self._clock()
        by_topic: defaultdict[str, list[Record[Any]]] = defaultdict(list)
        if self.single_input is not None:
            by_topic[self.single_input] = records  # a writer dedicated to one topic
        else:
            for record in records:
                by_topic[record.msg.topic() or ""].append(record)
        try:
            if now >= self._next_maintenance:
                self._maintain(now)
            batch = WriteBatch()
            to_lake: list[tuple[str, pa.Table, str, str]] = []
            telemetry = by_topic.get(self.topics.telemetry)
            if telemetry:
                rows = self._telemetry(telemetry, out, now, batch)
                if rows is not None:
                    to_lake.append(("telemetry", rows, self.topics.telemetry, "event_time"))
            events = (
                ("alerts", "alerts", "event_time", columns.alert_table, columns.alert_problem),
                ("trips", "trips", "start_time", columns.trip_table, columns.trip_problem),
                (
                    "scores",
                    "driver_scores",
                    "window_end",
                    columns.score_table,
                    columns.score_problem,
                ),
            )
            for attr, name, time_column, build, problem in events:
                topic = getattr(self.topics, attr)
                found = by_topic.get(topic)
                if not found:
                    continue
                table = self._events(found, out, build, problem)
                if table is None:
                    continue
                setattr(batch, attr, table.drop_columns(list(LINEAGE_COLUMNS)))
                to_lake.append((name, table, topic, time_column))
            dead = by_topic.get(self.topics.deadletter) if self.topics.deadletter else None
            if dead:
                batch.dead_letters = dead_letter_table(dead, now_us=int(now * 1_000_000))
            started = time.monotonic()
            # One transaction for the batch: its span links the spans of the traced records
            # in it (a fan-in), or is the child of the one traced record.
            with out.tracing.linked(
                "postgres write",
                list(out.traced.values()),
                attributes={"db.system": "postgresql", "db.operation": "COPY"},
            ):
                result = self.store.write(batch)
            self.metrics.db_seconds.observe(time.monotonic() - started)
        except DatabaseUnavailable as exc:
            raise RetryLater(str(exc)) from exc
        if batch.latest is not None:
            self._latest.clear()
            self._latest_flushed = now
        if result.erased:
            for name, count in result.erased.items():
                self.metrics.erased_rows.labels(name).inc(count)
            # Counts only: the subjects are named in the erasure audit, not in the log.
            log.info(
                "left %d row(s) of erased subjects out of PostgreSQL (%s)",
                sum(result.erased.values()),
                ", ".join(f"{name}: {count}" for name, count in sorted(result.erased.items())),
            )
        if result.replayed:
            self.metrics.replayed.inc()
            log.info("a batch repeated stored rows (a replay): de-duplicated on (vehicle, seq)")
        if result.duplicates:
            self.metrics.duplicates.inc(result.duplicates)
        if result.taken_over_groups:
            self.metrics.taken_over.inc(result.taken_over_groups)
        if result.telemetry_rows:
            self.metrics.rows.labels("telemetry").inc(result.telemetry_rows)
        for name, table in (
            ("alerts", batch.alerts),
            ("trips", batch.trips),
            ("driver_scores", batch.scores),
            ("dead_letters", batch.dead_letters),
        ):
            if table is not None and table.num_rows:
                self.metrics.rows.labels(name).inc(table.num_rows)
        if self.lake is not None:
            try:
                for name, table, topic, time_column in to_lake:
                    appended = self.lake.append(name, table, topic=topic, time_column=time_column)
                    self.metrics.lake_rows.labels(name).inc(appended)
                self._count_files(self.lake.roll())
            except LakeError as exc:
                raise RetryLater(str(exc)) from exc
        if self.policy.hold_s:
            # Fault injection: stored everywhere, offsets not committed yet.
            out.poll()
            self._sleep(self.policy.hold_s)

    def _telemetry(
        self, records: list[Record[Any]], out: Output, now: float, batch: WriteBatch
    ) -> pa.Table | None:
        try:
            decoded = self.decoder.decode([r.value for r in records])
        except ValueError:
            records = set_aside_undecodable(records, out, enriched_pb2.EnrichedTelemetry)
            if not records:
                return None
            decoded = self.decoder.decode([r.value for r in records])
        rows = columns.telemetry_rows(decoded)
        if rows.invalid:
            for index, why in rows.invalid:
                record = records[index]
                out.dead_letter(
                    record,
                    reason="invalid",
                    error=f"{why} (record key {record.key!r}, offset {record.offset})",
                )
        msgs = [r.msg for r in records]
        partitions = np.fromiter(map(_partition, msgs), np.int32, len(msgs))[rows.kept]
        offsets = np.fromiter(map(_offset, msgs), np.int64, len(msgs))[rows.kept]
        indexes = np.fromiter(map(_pack_index, records), np.int32, len(records))[rows.kept]
        table = rows.table
        if table.num_rows == 0:
            return None
        window = self._window(now)
        days = table.column("event_day")
        inside = pc.and_(
            pc.greater_equal(days, pa.scalar(window.first, pa.date32())),
            pc.less_equal(days, pa.scalar(window.last, pa.date32())),
        )
        outside = table.num_rows - pc.sum(inside.cast(pa.int64())).as_py()
        hot = table if outside == 0 else table.filter(inside)
        if outside:
            self.metrics.outside_window.inc(outside)
        batch.telemetry = hot
        if self.shared is not None and table.num_rows:
            # One observation per batch, its last row: per row it would cost more than the row.
            newest = table.column("ingest_time")[table.num_rows - 1].value
            self.shared.observe_end_to_end(newest, now)
        if hot.num_rows:
            self._latest.append(columns.latest_rows(hot))
        if self._latest and now - self._latest_flushed >= self.policy.latest_interval_s:
            pending = pa.concat_tables(self._latest) if len(self._latest) > 1 else self._latest[0]
            batch.latest = columns.latest_rows(pending)
        return with_lineage(
            columns.bronze_rows(decoded, rows), partitions, offsets, pack_indexes=indexes
        )

    def _events(
        self,
        records: list[Record[Any]],
        out: Output,
        build: Callable[[list[Any]], pa.Table],
        problem: Callable[[Any], str],
    ) -> pa.Table | None:
        kept = []
        for record in records:
            why = problem(record.value)
            if why:
                out.dead_letter(record, reason="invalid", error=f"{why} (offset {record.offset})")
                continue
            kept.append(record)
        if not kept:
            return None
        table = build([r.value for r in kept])
        return with_lineage(
            table,
            np.array([r.partition for r in kept], dtype=np.int32),
            np.array([r.offset for r in kept], dtype=np.int64),
            pack_indexes=np.array([_pack_index(r) for r in kept], dtype=np.int32),
        )
