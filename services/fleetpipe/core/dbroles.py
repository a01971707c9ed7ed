"""Least privilege in PostgreSQL: a role per service, allowed only what it writes or reads.

- the schema's owner (whoever migrates): everything; it runs the migrations and owns every
  object;
- ``fleetpipe_storage_writer``: write the hot store's tables, delete what is past retention
  (and settled deliveries of the ledger, reading only their time and status), claim key groups
  in ``telemetry_key_group_writers`` (insert and update, never delete), create and drop the
  telemetry day partitions through two functions the owner defines;
- ``fleetpipe_notification``: read and write its delivery ledger, nothing else;
- ``fleetpipe_reader``: read every table and view (the console, queries).

No service role owns a table or may create one, so none can drop or alter one: the storage
writer's partition upkeep goes through ``telemetry_partition_create`` / ``_drop``, functions
that run as the owner and touch only ``telemetry_pYYYYMMDD`` partitions (storage migration
0005). The roles themselves (logins and passwords) are the database administrator's, as the
cluster's roles are not a schema's: the dev stack makes them (``fleetpipe_dev.stack.pg_roles``).

:func:`grant` runs as the schema's owner after the migrations, every time: it is idempotent,
and a release that adds a table adds its grants here.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict

from fleetpipe.core.db import SCHEMA_RE
from fleetpipe.core.errors import ConfigError

# The storage writer's tables (storage migrations) and what it does to them.
_STORAGE_TABLES = (
    "telemetry",
    "vehicle_latest",
    "alerts",
    "alert_transitions",
    "trips",
    "driver_scores",
    "dead_letters",
    "vehicles",
    "kpi_window_parts",
)
# Claimed per batch by the storage writer (INSERT … ON CONFLICT DO UPDATE … RETURNING), never
# deleted from.
_STORAGE_CLAIMS = ("telemetry_key_group_writers",)
# Read by the storage writer, written by others: erasures it must honour in its spools.
_STORAGE_READS = ("erasure_audit",)
_STORAGE_FUNCTIONS = ("telemetry_partition_create(date)", "telemetry_partition_drop(date)")
_LEDGER = "notification_ledger"


class DatabaseRoles(BaseModel):
    """The names of the services' roles (the cluster's roles are shared by its schemas)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    storage_writer: str = "fleetpipe_storage_writer"
    notification: str = "fleetpipe_notification"
    reader: str = "fleetpipe_reader"

    def names(self) -> tuple[str, ...]:
        return (self.storage_writer, self.notification, self.reader)


def _exists(conn: psycopg.Connection[Any], kind: str, name: str) -> bool:
    row = conn.execute(f"SELECT to_{kind}(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def grant_statements(
    conn: psycopg.Connection[Any], schema: str, roles: DatabaseRoles
) -> list[sql.Composed]:
    """The GRANTs for the objects ``schema`` holds now (a component not migrated there, such
    as the ledger in a schema of the storage writer alone, gets none)."""
    if not SCHEMA_RE.match(schema):
        raise ConfigError(f"schema {schema!r} is not a plain lower-case identifier")
    s = sql.Identifier(schema)
    writer, notifier, reader = (sql.Identifier(n) for n in roles.names())
    out = [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}, {}, {}").format(s, writer, notifier, reader),
        # Every service reads which migrations ran, to know its schema is current.
        sql.SQL("GRANT SELECT ON {}.schema_migrations TO {}, {}, {}").format(
            s, writer, notifier, reader
        ),
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(s, reader),
        # Day partitions and tables of later releases, made by the owner, are readable too.
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO {}").format(
            s, reader
        ),
    ]
    for table in _STORAGE_TABLES:
        if _exists(conn, "regclass", f"{schema}.{table}"):
            out.append(
                sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {}.{} TO {}").format(
                    s, sql.Identifier(table), writer
                )
            )
    for table in _STORAGE_CLAIMS:
        if _exists(conn, "regclass", f"{schema}.{table}"):
            out.append(
                sql.SQL("GRANT SELECT, INSERT, UPDATE ON {}.{} TO {}").format(
                    s, sql.Identifier(table), writer
                )
            )
    for table in _STORAGE_READS:
        if _exists(conn, "regclass", f"{schema}.{table}"):
            out.append(
                sql.SQL("GRANT SELECT ON {}.{} TO {}").format(s, sql.Identifier(table), writer)
            )
    for function in _STORAGE_FUNCTIONS:
        if _exists(conn, "regprocedure", f"{schema}.{function}"):
            name, args = function.split("(")
            out.append(
                sql.SQL("GRANT EXECUTE ON FUNCTION {}.{}({} TO {}").format(
                    s, sql.Identifier(name), sql.SQL(args), writer
                )
            )
    if _exists(conn, "regclass", f"{schema}.{_LEDGER}"):
        ledger = sql.Identifier(_LEDGER)
        out += [
            sql.SQL("GRANT SELECT, INSERT, UPDATE ON {}.{} TO {}").format(s, ledger, notifier),
            # The storage writer expires settled deliveries: it sees their time and status,
            # never the phone numbers or texts beside them.
            sql.SQL("GRANT DELETE, SELECT (created_at, status) ON {}.{} TO {}").format(
                s, ledger, writer
            ),
        ]
    return out


def grant(conn: psycopg.Connection[Any], schema: str, roles: DatabaseRoles) -> int:
    """Apply the grants of ``schema`` as its owner; returns how many statements ran."""
    statements = grant_statements(conn, schema, roles)
    with conn.transaction():
        for statement in statements:
            conn.execute(statement)
    return len(statements)
