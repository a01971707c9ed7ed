"""The erasure audit log: an erasure is started (recorded before any data is touched), then
completed with what it took; the erasures started since a time are what the storage writer
keeps out of the lake's spools and out of PostgreSQL.

An erasure starts under an exclusive advisory lock that every write to the hot store holds
shared (:func:`hold_off_starts`): a write either commits before the erasure is recorded (and the
erasure's delete, later, takes its rows) or reads the audit after it (and leaves the subject's
rows out). No interleaving lets a row of the subject in behind the erasure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from fleetpipe.erasure.subject import Subject, SubjectKind

COMPONENT = "erasure"

# One lock per schema: the audit, and the hot store it guards, are a schema's.
_LOCK_KEY = "hashtext('fleetpipe-erasure:' || current_schema())"


@dataclass(frozen=True)
class Erasure:
    erasure_id: int
    subject: Subject
    erased_at: datetime


def start(
    conn: psycopg.Connection[Any], subject: Subject, *, reason: str, requested_by: str
) -> Erasure:
    """Record the erasure as started, committed at once: from then on a storage writer rolling
    a spool leaves the subject's rows out, so none reaches the lake behind the erasure."""
    with conn.transaction():
        # Waits for the hot-store writes under way: they commit before the erasure starts.
        conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
        row = conn.execute(
            "INSERT INTO erasure_audit (subject_kind, subject_id, reason, requested_by,"
            " rows_deleted, lake_files) VALUES (%s, %s, %s, %s, '{}', '[]')"
            " RETURNING erasure_id, erased_at",
            (subject.kind.value, subject.id, reason, requested_by),
        ).fetchone()
    assert row is not None
    return Erasure(int(row[0]), subject, row[1])


def complete(
    conn: psycopg.Connection[Any],
    erasure_id: int,
    *,
    rows_deleted: dict[str, int],
    lake_files: list[dict[str, Any]],
) -> None:
    """Within the caller's transaction: what the erasure took, and that it is done."""
    conn.execute(
        "UPDATE erasure_audit SET rows_deleted = %s, lake_files = %s, completed_at = now()"
        " WHERE erasure_id = %s",
        (json.dumps(rows_deleted), json.dumps(lake_files), erasure_id),
    )


def record(conn: psycopg.Connection[Any], erasure_id: int) -> dict[str, Any]:
    """The audit row, as JSON-ready values."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT erasure_id, subject_kind, subject_id, reason, requested_by, erased_at,"
            " completed_at, rows_deleted, lake_files FROM erasure_audit WHERE erasure_id = %s",
            (erasure_id,),
        ).fetchone()
    if row is None:
        raise LookupError(f"no erasure {erasure_id} in the audit log")
    for key in ("erased_at", "completed_at"):
        if row[key] is not None:
            row[key] = row[key].isoformat()
    return dict(row)


def started_since(conn: psycopg.Connection[Any], since: datetime) -> list[Erasure]:
    """Every erasure started at or after ``since`` (none when no erasure ever ran here)."""
    exists = conn.execute("SELECT to_regclass('erasure_audit') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return []
    rows = conn.execute(
        "SELECT erasure_id, subject_kind, subject_id, erased_at FROM erasure_audit"
        " WHERE erased_at >= %s ORDER BY erasure_id",
        (since,),
    ).fetchall()
    return [
        Erasure(int(i), Subject(SubjectKind(str(kind)), str(sid)), at) for i, kind, sid, at in rows
    ]


def hold_off_starts(conn: psycopg.Connection[Any]) -> None:
    """Within the caller's transaction: no erasure starts until it ends (shared with every
    other writer; an erasure starting now is waited for)."""
    conn.execute(f"SELECT pg_advisory_xact_lock_shared({_LOCK_KEY})")


def recorded_after(conn: psycopg.Connection[Any], erasure_id: int) -> list[Erasure]:
    """Every erasure recorded after ``erasure_id`` (0: all), oldest first; none when no
    erasure ever ran here."""
    exists = conn.execute("SELECT to_regclass('erasure_audit') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return []
    rows = conn.execute(
        "SELECT erasure_id, subject_kind, subject_id, erased_at FROM erasure_audit"
        " WHERE erasure_id > %s ORDER BY erasure_id",
        (erasure_id,),
    ).fetchall()
    return [
        Erasure(int(i), Subject(SubjectKind(str(kind)), str(sid)), at) for i, kind, sid, at in rows
    ]
