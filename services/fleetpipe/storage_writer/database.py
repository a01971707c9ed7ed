"""The hot store in PostgreSQL: the only module of the writer that talks to the database.

One transaction per batch. Telemetry is stored once per (vehicle, seq) whatever its event day:
the batch claims its vehicles' key groups (a second writer of the same vehicles waits for this
one's commit), then the batch's own repeats and the seqs the hot store holds on any day are
left out (:mod:`fleetpipe.storage_writer.duplicates`, a probe of only the vehicles not past
their stored seqs). The rest goes in by binary COPY straight into the partitioned table, inside
a savepoint; should a row still hit the primary key (stored by a writer of a release without
claims, during a rolling upgrade), the COPY rolls back to the savepoint and the batch goes
through a temporary staging table and ``INSERT … ON CONFLICT DO NOTHING`` instead. Alert
episodes, trips and scores are upserted with guards so that a replayed older state never
overwrites a newer one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import errors, sql

from fleetpipe.core import db
from fleetpipe.core.db import (
    DatabaseClient,
    PostgresSettings,
    connect,
    load_migrations,
    migrate_when_ready,
)
from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.erasure.audit import Erasure, hold_off_starts, recorded_after
from fleetpipe.storage_writer.columns import LATEST_COPY, TELEMETRY_COPY
from fleetpipe.storage_writer.deadletters import DEAD_LETTER_INSERT
from fleetpipe.storage_writer.duplicates import StoredSeqs
from fleetpipe.storage_writer.hot_erasures import without_erased
from fleetpipe.storage_writer.partitions import (
    PREFIX,
    HotWindow,
    partition_day,
    plan_partitions,
)
from fleetpipe.storage_writer.pgcopy import CopyColumn, encode

log = logging.getLogger(__name__)


class DatabaseUnavailable(db.DatabaseUnavailable):
    """PostgreSQL cannot be reached or lost the connection; the batch waits in Kafka."""


@dataclass(frozen=True)
class RowRetention:
    """Days the small tables keep a row: the latest position of a vehicle that has gone quiet,
    a dead letter, a settled delivery (it holds a phone number). A pending delivery is never
    expired: the notifier still has to settle it."""

    latest_days: float = 30.0
    dead_letters_days: float = 90.0
    ledger_days: float = 90.0


@dataclass
class WriteBatch:
    telemetry: pa.Table | None = None
    latest: pa.Table | None = None
    alerts: pa.Table | None = None
    trips: pa.Table | None = None
    scores: pa.Table | None = None
    dead_letters: pa.Table | None = None


@dataclass
class WriteResult:
    telemetry_rows: int = 0
    # The batch repeated rows already stored (a replay, or a seq re-sent with another clock).
    replayed: bool = False
    # Rows left out: their (vehicle, seq) was stored before, or earlier in the same batch.
    duplicates: int = 0
    # Rows of erased subjects left out, per table of the batch.
    erased: dict[str, int] = field(default_factory=dict)
    # Key groups whose last writer was another one (or none): their vehicles were probed.
    taken_over_groups: int = 0


_ALERT_UPSERT = """
INSERT INTO alerts (alert_id, vehicle_id, fleet_id, driver_id, rule, severity, state, state_rank,
    episode_start, episode_end, event_time, ingest_time, detected_time, seq, lat, lon, geohash6,
    message, trigger_values)
VALUES (%(alert_id)s, %(vehicle_id)s, %(fleet_id)s, %(driver_id)s, %(rule)s, %(severity)s,
    %(state)s, %(state_rank)s, %(episode_start)s, %(episode_end)s, %(event_time)s,
    %(ingest_time)s, %(detected_time)s, %(seq)s, %(lat)s, %(lon)s, %(geohash6)s, %(message)s,
    %(trigger_values)s::jsonb)
ON CONFLICT (alert_id) DO UPDATE SET
    severity = EXCLUDED.severity, state = EXCLUDED.state, state_rank = EXCLUDED.state_rank,
    episode_end = EXCLUDED.episode_end, event_time = EXCLUDED.event_time,
    ingest_time = EXCLUDED.ingest_time, detected_time = EXCLUDED.detected_time,
    seq = EXCLUDED.seq, lat = EXCLUDED.lat, lon = EXCLUDED.lon, geohash6 = EXCLUDED.geohash6,
    message = EXCLUDED.message, trigger_values = EXCLUDED.trigger_values, updated_at = now()
WHERE (EXCLUDED.state_rank, EXCLUDED.detected_time) >= (alerts.state_rank, alerts.detected_time)
"""

# Every state an episode was in, for explaining it later (the alerts row keeps the newest).
_ALERT_TRANSITION_INSERT = """
INSERT INTO alert_transitions (alert_id, state, state_rank, detected_time, event_time, severity,
    seq, message, trigger_values)
VALUES (%(alert_id)s, %(state)s, %(state_rank)s, %(detected_time)s, %(event_time)s,
    %(severity)s, %(seq)s, %(message)s, %(trigger_values)s::jsonb)
ON CONFLICT (alert_id, state_rank, detected_time) DO NOTHING
"""

_TRIP_UPSERT = """
INSERT INTO trips (trip_id, vehicle_id, fleet_id, driver_id, state, state_rank, start_time,
    end_time, start_lat, start_lon, end_lat, end_lon, distance_km, duration_s, idle_s,
    max_speed_kmh, avg_speed_kmh, harsh_brakes, harsh_accels, speeding_s, start_seq, end_seq)
VALUES (%(trip_id)s, %(vehicle_id)s, %(fleet_id)s, %(driver_id)s, %(state)s, %(state_rank)s,
    %(start_time)s, %(end_time)s, %(start_lat)s, %(start_lon)s, %(end_lat)s, %(end_lon)s,
    %(distance_km)s, %(duration_s)s, %(idle_s)s, %(max_speed_kmh)s, %(avg_speed_kmh)s,
    %(harsh_brakes)s, %(harsh_accels)s, %(speeding_s)s, %(start_seq)s, %(end_seq)s)
ON CONFLICT (trip_id) DO UPDATE SET
    state = EXCLUDED.state, state_rank = EXCLUDED.state_rank, end_time = EXCLUDED.end_time,
    end_lat = EXCLUDED.end_lat, end_lon = EXCLUDED.end_lon, distance_km = EXCLUDED.distance_km,
    duration_s = EXCLUDED.duration_s, idle_s = EXCLUDED.idle_s,
    max_speed_kmh = EXCLUDED.max_speed_kmh, avg_speed_kmh = EXCLUDED.avg_speed_kmh,
    harsh_brakes = EXCLUDED.harsh_brakes, harsh_accels = EXCLUDED.harsh_accels,
    speeding_s = EXCLUDED.speeding_s, end_seq = EXCLUDED.end_seq, updated_at = now()
WHERE EXCLUDED.state_rank >= trips.state_rank
"""

_SCORE_UPSERT = """
INSERT INTO driver_scores (driver_id, vehicle_id, window_end, window_start, fleet_id, score,
    distance_km, driving_s, speeding_s, harsh_brakes, harsh_accels, idle_s, computed_time)
VALUES (%(driver_id)s, %(vehicle_id)s, %(window_end)s, %(window_start)s, %(fleet_id)s,
    %(score)s, %(distance_km)s, %(driving_s)s, %(speeding_s)s, %(harsh_brakes)s,
    %(harsh_accels)s, %(idle_s)s, %(computed_time)s)
ON CONFLICT (driver_id, vehicle_id, window_end) DO UPDATE SET
    window_start = EXCLUDED.window_start, score = EXCLUDED.score,
    distance_km = EXCLUDED.distance_km, driving_s = EXCLUDED.driving_s,
    speeding_s = EXCLUDED.speeding_s, harsh_brakes = EXCLUDED.harsh_brakes,
    harsh_accels = EXCLUDED.harsh_accels, idle_s = EXCLUDED.idle_s,
    computed_time = EXCLUDED.computed_time
WHERE EXCLUDED.computed_time >= driver_scores.computed_time
"""


def _names(columns: tuple[CopyColumn, ...] | tuple[str, ...]) -> sql.Composed:
    return sql.SQL(", ").join(
        sql.Identifier(c.name if isinstance(c, CopyColumn) else c) for c in columns
    )


class HotStore(DatabaseClient):
    def __init__(
        self,
        settings: PostgresSettings,
        *,
        application_name: str,
        key_groups: KeyGroups | None = None,
    ) -> None:
        super().__init__(settings, application_name=application_name)
        self._partitions: set[date] | None = None
        # The erasures on record, read as they are added (an erasure is never taken back).
        self._erasures: list[Erasure] = []
        # key_groups: the pipeline's (FLEET_KAFKA__KEY_GROUPS); every writer of a schema must
        # use the same count, or their claims of a vehicle would name different groups.
        self._stored_seqs = StoredSeqs(writer=application_name, key_groups=key_groups)

    # -- connection ----------------------------------------------------------------------------
    def _db(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._partitions = None
            try:
                # Autocommit: every transaction is an explicit ``conn.transaction()`` block.
                conn = connect(
                    self._settings, application_name=self._application_name, autocommit=True
                )
                conn.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS telemetry_stage "
                    "(LIKE telemetry INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                )
                conn.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS latest_stage "
                    "(LIKE vehicle_latest INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                )
            except psycopg.OperationalError as exc:
                raise DatabaseUnavailable(f"PostgreSQL unavailable: {exc}") from exc
            self._conn = conn
        return self._conn

    def _fail(self, exc: Exception) -> DatabaseUnavailable:
        self.close()
        return DatabaseUnavailable(f"PostgreSQL unavailable: {exc}")

    def migrate(self, *, timeout_s: float = 300.0) -> None:
        """Wait for the database (up to ``timeout_s``), then create or update the hot store."""
        migrate_when_ready(
            self._settings,
            application_name=self._application_name,
            component="storage",
            migrations=load_migrations("fleetpipe.storage_writer"),
            timeout_s=timeout_s,
        )

    # -- partitions ----------------------------------------------------------------------------
    def _existing_partitions(self, conn: psycopg.Connection[Any]) -> set[date]:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.oid = 'telemetry'::regclass AND c.relname LIKE %s",
            (f"{PREFIX}%",),
        ).fetchall()
        return {d for (name,) in rows if (d := partition_day(str(name))) is not None}

    def maintain(
        self,
        window: HotWindow,
        *,
        events_retention_days: float,
        rows: RowRetention | None = None,
    ) -> tuple[list[date], list[date]]:
        """Create the window's partitions, drop those past it, expire old episodes and trips."""
        try:
            conn = self._db()
            with conn.transaction():
                # One replica at a time: DDL on the parent from two sessions would deadlock.
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))",
                    (f"fleetpipe-partitions:{self._settings.schema_name}",),
                )
                existing = self._existing_partitions(conn)
                plan = plan_partitions(existing, window)
                for day in plan.create:
                    self._create_partition(conn, day)
                for day in plan.drop:
                    # The owner's function (migration 0010): the writer drops no table itself.
                    conn.execute("SELECT telemetry_partition_drop(%s)", (day,))
                cutoff = datetime.now(UTC) - timedelta(days=events_retention_days)
                conn.execute("DELETE FROM alerts WHERE episode_start < %s", (cutoff,))
                conn.execute("DELETE FROM trips WHERE start_time < %s", (cutoff,))
                conn.execute("DELETE FROM driver_scores WHERE window_end < %s", (cutoff,))
                conn.execute("DELETE FROM alert_transitions WHERE detected_time < %s", (cutoff,))
                expired = self._expire_rows(conn, rows or RowRetention(), datetime.now(UTC))
            self._partitions = (existing | set(plan.create)) - set(plan.drop)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise self._fail(exc) from exc
        for table, count in expired.items():
            if count:
                log.info("retention: deleted %d expired row(s) from %s", count, table)
        if plan.create or plan.drop:
            log.info(
                "telemetry partitions: created %s, dropped %s",
                [str(d) for d in plan.create],
                [str(d) for d in plan.drop],
            )
        return plan.create, plan.drop

    @staticmethod
    def _expire_rows(
        conn: psycopg.Connection[Any], rows: RowRetention, now: datetime
    ) -> dict[str, int]:
        def before(days: float) -> datetime:
            return now - timedelta(days=days)

        expired = {
            "vehicle_latest": conn.execute(
                "DELETE FROM vehicle_latest WHERE event_time < %s", (before(rows.latest_days),)
            ).rowcount,
            "dead_letters": conn.execute(
                "DELETE FROM dead_letters WHERE time < %s", (before(rows.dead_letters_days),)
            ).rowcount,
        }
        # The delivery ledger is the notifier's table; it is here when both share a schema.
        found = conn.execute("SELECT to_regclass('notification_ledger') IS NOT NULL").fetchone()
        if found and found[0]:
            expired["notification_ledger"] = conn.execute(
                "DELETE FROM notification_ledger WHERE created_at < %s AND status <> 'PENDING'",
                (before(rows.ledger_days),),
            ).rowcount
        return expired

    @staticmethod
    def _create_partition(conn: psycopg.Connection[Any], day: date) -> None:
        # Through the owner's function (migration 0010, where the partition's settings are
        # explained): the writer's role may not create tables.
        conn.execute("SELECT telemetry_partition_create(%s)", (day,))

    def _ensure_partitions(self, conn: psycopg.Connection[Any], days: set[date]) -> None:
        if self._partitions is None:
            self._partitions = self._existing_partitions(conn)
        missing = days - self._partitions
        if not missing:
            return
        # Before the data's transaction: creating a partition locks the parent table, which
        # is best held for a moment rather than for a whole batch.
        with conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))",
                (f"fleetpipe-partitions:{self._settings.schema_name}",),
            )
            for day in sorted(missing):
                self._create_partition(conn, day)
        self._partitions |= missing

    def _stored_days(self) -> tuple[date, date]:
        """The first and last day the hot store has a partition for: every stored row is in
        between, and constant bounds let the planner prune the partitions outside them."""
        known = self._partitions or set()
        if not known:
            today = datetime.now(UTC).date()
            return today, today
        return min(known), max(known)

    # -- the batch -----------------------------------------------------------------------------
    def write(self, batch: WriteBatch) -> WriteResult:
        result = WriteResult()
        try:
            conn = self._db()
            telemetry = batch.telemetry
            if telemetry is not None and telemetry.num_rows:
                days = set(telemetry.column("event_day").unique().to_pylist())
                self._ensure_partitions(conn, days)
            with conn.transaction():
                self._leave_out_erased(conn, batch, result)
                telemetry = batch.telemetry
                rows = None
                if telemetry is not None and telemetry.num_rows:
                    rows = self._stored_seqs.new_rows(conn, telemetry, self._stored_days())
                    result.duplicates = rows.repeated_in_batch + rows.stored_before
                    result.taken_over_groups = rows.taken_over
                    result.replayed = rows.stored_before > 0
                    if rows.table.num_rows:
                        result.replayed |= self._copy_telemetry(conn, rows.table)
                    result.telemetry_rows = rows.table.num_rows
                if batch.latest is not None and batch.latest.num_rows:
                    self._upsert_latest(conn, batch.latest)
                with conn.cursor() as cur:
                    for table, statement in (
                        (batch.alerts, _ALERT_UPSERT),
                        (batch.alerts, _ALERT_TRANSITION_INSERT),
                        (batch.trips, _TRIP_UPSERT),
                        (batch.scores, _SCORE_UPSERT),
                        (batch.dead_letters, DEAD_LETTER_INSERT),
                    ):
                        if table is not None and table.num_rows:
                            cur.executemany(statement.encode(), table.to_pylist())
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise self._fail(exc) from exc
        if rows is not None:
            self._stored_seqs.committed(rows)
        return result

    def forget_stored_seqs(self) -> None:
        """Forget the vehicles' high-water marks: the writer's partitions were revoked, and
        their vehicles are likely another writer's from now on."""
        self._stored_seqs.forget()

    def _leave_out_erased(
        self, conn: psycopg.Connection[Any], batch: WriteBatch, result: WriteResult
    ) -> None:
        """First in the batch's transaction: hold erasures off until it commits, read those
        recorded since the last batch, and take their subjects' rows out of ``batch``."""
        hold_off_starts(conn)
        last = self._erasures[-1].erasure_id if self._erasures else 0
        try:
            self._erasures.extend(recorded_after(conn, last))
        except errors.InsufficientPrivilege as exc:
            # Rows are not written unchecked: the batch waits in Kafka until the grant is
            # there (the owner's grants run after the erasure's migrations).
            raise DatabaseUnavailable(
                f"cannot read the erasure audit, the batch waits: {exc.diag.message_primary}"
            ) from exc
        if not self._erasures:
            return
        for f in fields(batch):
            left = without_erased(getattr(batch, f.name), f.name, self._erasures)
            if left.rows:
                setattr(batch, f.name, left.table)
                result.erased[f.name] = left.rows

    def _copy_telemetry(self, conn: psycopg.Connection[Any], table: pa.Table) -> bool:
        """COPY the rows in; True when they went through the staging table (duplicates)."""
        encoded = encode(table, TELEMETRY_COPY)
        columns = _names(TELEMETRY_COPY)
        try:
            with conn.transaction(), conn.cursor() as cur:
                statement = sql.SQL("COPY telemetry ({}) FROM STDIN (FORMAT BINARY)").format(
                    columns
                )
                with cur.copy(statement) as copy:
                    copy.write(encoded.data)
            return False
        except errors.UniqueViolation:
            pass
        with conn.cursor() as cur:
            statement = sql.SQL("COPY telemetry_stage ({}) FROM STDIN (FORMAT BINARY)").format(
                columns
            )
            with cur.copy(statement) as copy:
                copy.write(encoded.data)
            cur.execute(
                sql.SQL(
                    "INSERT INTO telemetry ({cols}) SELECT {cols} FROM telemetry_stage "
                    "ON CONFLICT DO NOTHING"
                ).format(cols=columns)
            )
        return True

    def _upsert_latest(self, conn: psycopg.Connection[Any], latest: pa.Table) -> None:
        encoded = encode(latest, LATEST_COPY)
        columns = _names(LATEST_COPY)
        updates = sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c.name))
            for c in LATEST_COPY
            if c.name != "vehicle_id"
        )
        with conn.cursor() as cur:
            with cur.copy(
                sql.SQL("COPY latest_stage ({}) FROM STDIN (FORMAT BINARY)").format(columns)
            ) as copy:
                copy.write(encoded.data)
            cur.execute(
                sql.SQL(
                    "INSERT INTO vehicle_latest ({cols}) "
                    "SELECT DISTINCT ON (vehicle_id) {cols} FROM latest_stage "
                    "ORDER BY vehicle_id, seq DESC "
                    "ON CONFLICT (vehicle_id) DO UPDATE SET {updates}, updated_at = now() "
                    "WHERE EXCLUDED.seq > vehicle_latest.seq"
                ).format(cols=columns, updates=updates)
            )
