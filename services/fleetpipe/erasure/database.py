"""Erasing a subject from the hot store, and the audit record, in one transaction."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from fleetpipe.erasure.audit import complete
from fleetpipe.erasure.subject import Subject, SubjectKind

# Every table that holds a vehicle's or a driver's rows, naming them by the subject's column
# (notification_ledger holds the drivers' phone numbers). alert_transitions names neither: its
# rows go with their alert, so they are deleted first.
TABLES = (
    "telemetry",
    "vehicle_latest",
    "alerts",
    "trips",
    "driver_scores",
    "notification_ledger",
)
# Tables that name a vehicle only: the registry-derived vehicles dimension (the storage
# writer's registry sync leaves an erased vehicle out of it afterwards).
VEHICLE_TABLES = ("vehicles",)


def _exists(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def erase_rows(
    conn: psycopg.Connection[Any],
    subject: Subject,
    *,
    erasure_id: int,
    lake_files: list[dict[str, Any]],
) -> dict[str, int]:
    """Delete the subject's rows from every table that has them and complete the audit record,
    in one transaction; returns the rows deleted per table."""
    column = subject.kind.column
    deleted: dict[str, int] = {}
    with conn.transaction():
        if _exists(conn, "alert_transitions") and _exists(conn, "alerts"):
            cur = conn.execute(
                sql.SQL(
                    "DELETE FROM alert_transitions WHERE alert_id IN "
                    "(SELECT alert_id FROM alerts WHERE {} = %s)"
                ).format(sql.Identifier(column)),
                (subject.id,),
            )
            deleted["alert_transitions"] = cur.rowcount
        tables = TABLES + (VEHICLE_TABLES if subject.kind is SubjectKind.VEHICLE else ())
        for table in tables:
            if _exists(conn, table):
                cur = conn.execute(
                    sql.SQL("DELETE FROM {} WHERE {} = %s").format(
                        sql.Identifier(table), sql.Identifier(column)
                    ),
                    (subject.id,),
                )
                deleted[table] = cur.rowcount
        if subject.kind is SubjectKind.VEHICLE and _exists(conn, "dead_letters"):
            # A dead letter is keyed by its record's key: the vehicle, for telemetry.
            cur = conn.execute("DELETE FROM dead_letters WHERE record_key = %s", (subject.id,))
            deleted["dead_letters"] = cur.rowcount
        complete(conn, erasure_id, rows_deleted=deleted, lake_files=lake_files)
    return deleted
