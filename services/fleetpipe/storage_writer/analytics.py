"""The writer's analytics tables: the vehicles dimension and the KPI windows.

``vehicles`` follows the registry file (the one enrichment reads, reloaded without a restart):
it is synced when the writer starts and whenever the file changes, as part of the writer's
periodic work. A sync is one transaction that upserts every vehicle whose fields changed and
marks the ones the registry no longer names (``removed_at``), so history still joins to them;
run twice, the second changes nothing. A vehicle with an erasure on record is left out, however
the registry names it: its erasure deleted its row, and the sync does not bring it back (the
sync holds erasures off while it runs, so one cannot slip in between its look and its commit).

``kpi_window_parts`` takes the KPI stage's records (``FleetKpi``), one row each; a replayed
record hits the primary key and is ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from fleetpipe.core.db import DatabaseClient, DatabaseUnavailable, connect
from fleetpipe.erasure.audit import hold_off_starts
from fleetpipe.pb.v1 import kpi_pb2
from fleetpipe.registry import VehicleRegistry

log = logging.getLogger(__name__)

VEHICLE_COLUMNS = ("vehicle_id", "fleet_id", "vehicle_type", "model", "colour", "fuel", "electric")

# The registry's erased vehicles, taken out of the stage before the sync (when the erasure
# audit exists in the schema).
_VEHICLES_ERASED = """
DELETE FROM vehicles_stage s
WHERE EXISTS (SELECT 1 FROM erasure_audit a
              WHERE a.subject_kind = 'vehicle' AND a.subject_id = s.vehicle_id)
"""

_VEHICLES_SYNC = """
INSERT INTO vehicles (vehicle_id, fleet_id, vehicle_type, model, colour, fuel, electric)
SELECT vehicle_id, fleet_id, vehicle_type, model, colour, fuel, electric FROM vehicles_stage
ON CONFLICT (vehicle_id) DO UPDATE SET
    fleet_id = EXCLUDED.fleet_id, vehicle_type = EXCLUDED.vehicle_type,
    model = EXCLUDED.model, colour = EXCLUDED.colour, fuel = EXCLUDED.fuel,
    electric = EXCLUDED.electric, removed_at = NULL, updated_at = now()
WHERE (vehicles.fleet_id, vehicles.vehicle_type, vehicles.model, vehicles.colour,
       vehicles.fuel, vehicles.electric, vehicles.removed_at IS NULL)
    IS DISTINCT FROM
      (EXCLUDED.fleet_id, EXCLUDED.vehicle_type, EXCLUDED.model, EXCLUDED.colour,
       EXCLUDED.fuel, EXCLUDED.electric, true)
"""

_VEHICLES_REMOVED = """
UPDATE vehicles SET removed_at = now(), updated_at = now()
WHERE removed_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM vehicles_stage s WHERE s.vehicle_id = vehicles.vehicle_id)
"""

_KPI_INSERT = """
INSERT INTO kpi_window_parts (window_start, window_end, fleet_id, dimension, dimension_value,
    source_partition, active_vehicles, distance_km, max_speed_kmh, speed_sum_kmh,
    speed_samples, alerts_by_rule)
VALUES (%(window_start)s, %(window_end)s, %(fleet_id)s, %(dimension)s, %(dimension_value)s,
    %(source_partition)s, %(active_vehicles)s, %(distance_km)s, %(max_speed_kmh)s,
    %(speed_sum_kmh)s, %(speed_samples)s, %(alerts_by_rule)s)
ON CONFLICT DO NOTHING
"""


def vehicle_rows(registry: VehicleRegistry) -> list[tuple[str, str, str, str, str, str, bool]]:
    """The registry as rows of the vehicles table, in ``VEHICLE_COLUMNS`` order."""
    return [
        (v.vehicle_id, v.fleet_id, v.vehicle_type, v.model, v.colour, v.fuel_kind, v.electric)
        for v in registry
    ]


def kpi_row(kpi: kpi_pb2.FleetKpi) -> dict[str, Any]:
    return {
        "window_start": _time(kpi.window_start_us),
        "window_end": _time(kpi.window_end_us),
        "fleet_id": kpi.fleet_id,
        "dimension": kpi.dimension,
        "dimension_value": kpi.dimension_value,
        "source_partition": kpi.source_partition,
        "active_vehicles": kpi.active_vehicles,
        "distance_km": kpi.distance_km,
        "max_speed_kmh": kpi.max_speed_kmh,
        "speed_sum_kmh": kpi.speed_sum_kmh,
        "speed_samples": kpi.speed_samples,
        "alerts_by_rule": Jsonb(dict(kpi.alerts_by_rule)),
    }


def kpi_problem(kpi: kpi_pb2.FleetKpi) -> str:
    """Why a KPI record cannot be stored ("" when it can)."""
    if not kpi.fleet_id or not kpi.dimension:
        return "a KPI record without fleet_id or dimension"
    if kpi.window_end_us <= kpi.window_start_us:
        return f"window end {kpi.window_end_us} is not after its start {kpi.window_start_us}"
    return ""


def _time(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, UTC)


class AnalyticsStore(DatabaseClient):
    """The writer's connection for the vehicles and KPI tables (the schema is migrated with
    the hot store's)."""

    def _db(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = connect(
                    self._settings, application_name=self._application_name, autocommit=True
                )
            except psycopg.OperationalError as exc:
                raise DatabaseUnavailable(f"PostgreSQL unavailable: {exc}") from exc
        return self._conn

    def sync_vehicles(self, rows: Sequence[tuple[str, str, str, str, str, str, bool]]) -> int:
        """Make the vehicles table say what ``rows`` say; returns the rows it changed."""
        try:
            conn = self._db()
            with conn.transaction():
                # Writers of one database sync in turn: a replica on an older registry file
                # must not interleave its removals with a newer one's.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('fleetpipe-vehicles-sync'))")
                hold_off_starts(conn)
                conn.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS vehicles_stage "
                    "(LIKE vehicles INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                )
                with conn.cursor() as cur:
                    columns = sql.SQL(", ").join(map(sql.Identifier, VEHICLE_COLUMNS))
                    statement = sql.SQL("COPY vehicles_stage ({}) FROM STDIN").format(columns)
                    with cur.copy(statement) as copy:
                        for row in rows:
                            copy.write_row(row)
                    audit = cur.execute("SELECT to_regclass('erasure_audit') IS NOT NULL")
                    found = audit.fetchone()
                    erased = cur.execute(_VEHICLES_ERASED).rowcount if found and found[0] else 0
                    changed = cur.execute(_VEHICLES_SYNC).rowcount
                    removed = cur.execute(_VEHICLES_REMOVED).rowcount
        except psycopg.errors.InsufficientPrivilege as exc:
            # No sync that cannot check the erasures: tried again at the next tick.
            raise DatabaseUnavailable(f"vehicles not synced: {exc.diag.message_primary}") from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise DatabaseUnavailable(f"PostgreSQL unavailable: {exc}") from exc
        if changed or removed:
            log.info("vehicles table: %d added or changed, %d marked removed", changed, removed)
        if erased:
            log.info("vehicles table: %d erased vehicle(s) of the registry left out", erased)
        return max(changed, 0) + max(removed, 0)

    def expire_kpis(self, *, older_than_days: float) -> int:
        """Delete the KPI rows of windows that ended more than ``older_than_days`` ago."""
        try:
            conn = self._db()
            deleted = conn.execute(
                "DELETE FROM kpi_window_parts WHERE window_end < now() - %s * interval '1 day'",
                (older_than_days,),
            ).rowcount
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise DatabaseUnavailable(f"PostgreSQL unavailable: {exc}") from exc
        return max(deleted, 0)

    def write_kpis(self, rows: Sequence[dict[str, Any]]) -> None:
        try:
            conn = self._db()
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(_KPI_INSERT, rows)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise DatabaseUnavailable(f"PostgreSQL unavailable: {exc}") from exc
