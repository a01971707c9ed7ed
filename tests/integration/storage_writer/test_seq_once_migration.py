"""Storage migration 0011 on a hot store written by an earlier version: copies of one (vehicle,
seq) on two days are resolved to the first stored, other rows untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from psycopg import sql
from pydantic import SecretStr

from fleetpipe.core.db import PostgresSettings, apply_migrations, connect, load_migrations
from fleetpipe.storage_writer import columns
from fleetpipe.storage_writer.pgcopy import encode
from fleetpipe_loadtest import records
from support.servers import Schema

pytestmark = pytest.mark.integration

US = 1_000_000


def _rows(*events: tuple[int, int, int]) -> pa.Table:
    """Telemetry rows of (vehicle index, seq, event time in µs)."""
    decoded = columns.TelemetryDecoder().decode(
        [records.enriched(v, s, event_time_us=t).SerializeToString() for v, s, t in events]
    )
    return columns.telemetry_rows(decoded).table


def _copy(conn: Any, table: pa.Table) -> None:
    names = sql.SQL(", ").join(sql.Identifier(c.name) for c in columns.TELEMETRY_COPY)
    with conn.transaction(), conn.cursor() as cur:
        statement = sql.SQL("COPY telemetry ({}) FROM STDIN (FORMAT BINARY)").format(names)
        with cur.copy(statement) as copy:
            copy.write(encode(table, columns.TELEMETRY_COPY).data)


def test_copies_stored_before_on_other_days_are_resolved_to_the_first(pg_schema: Schema) -> None:
    settings = PostgresSettings(dsn=SecretStr(pg_schema.dsn), schema_name=pg_schema.name)
    shipped = load_migrations("fleetpipe.storage_writer")
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    at = int(midnight.timestamp()) * US
    with connect(settings, application_name="test", autocommit=True) as conn:
        earlier = [m for m in shipped if m.version < 11]
        apply_migrations(conn, schema=pg_schema.name, component="storage", migrations=earlier)
        for day in (midnight.date() - timedelta(days=1), midnight.date()):
            conn.execute("SELECT telemetry_partition_create(%s)", (day,))
        # Stored by an earlier version, in three transactions (three stored times).
        _copy(conn, _rows((1, 7, at - US // 10), (2, 7, at - US)))
        _copy(conn, _rows((1, 7, at + US // 10), (3, 1, at + US)))
        _copy(conn, _rows((1, 8, at + 2 * US)))
        assert conn.execute("SELECT count(*) FROM telemetry").fetchone() == (5,)

        applied = apply_migrations(
            conn, schema=pg_schema.name, component="storage", migrations=shipped
        )
        assert [m.version for m in applied] == [m.version for m in shipped if m.version >= 11]
        rows = conn.execute(
            "SELECT vehicle_id, seq, (extract(epoch FROM event_time) * 1e6)::bigint "
            "FROM telemetry ORDER BY vehicle_id, seq"
        ).fetchall()
    assert rows == [
        ("fleet-1-veh-000001", 7, at - US // 10),
        ("fleet-1-veh-000001", 8, at + 2 * US),
        ("fleet-1-veh-000002", 7, at - US),
        ("fleet-1-veh-000003", 1, at + US),
    ]
