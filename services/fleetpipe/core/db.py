"""PostgreSQL for the services that keep state there: connection settings and migrations.

Every service owns a *component* of the schema (``storage``, ``notification``) and ships its
versioned SQL files as package data (``<package>/migrations/NNNN_name.sql``). At start the service
applies what is missing, under an advisory lock so that replicas starting together do not race,
and records each file in ``schema_migrations`` with a checksum: a released migration that was
edited afterwards is refused rather than silently diverging from the databases it already ran on.

The schema name is a setting (tests give each test its own); connections set ``search_path`` to
it, so the SQL files use unqualified names.

A service starts by :func:`migrate_when_ready`: PostgreSQL may still be starting beside it (a
fresh cluster, a pod restarted with the database), so it waits rather than crash-loops. A
service logged in as a role that may not migrate waits the same way for the schema's owner
(``fleetpipe db migrate``, the operator's migration Job) to bring the schema up to date.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import tuple_row
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from fleetpipe.core.errors import ConfigError, FleetPipeError

log = logging.getLogger(__name__)

SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MIGRATION_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class PostgresSettings(BaseModel):
    """``FLEET_POSTGRES__DSN`` (a secret: it may carry a password) and the schema to use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dsn: SecretStr = SecretStr("postgresql://fleetpipe@127.0.0.1:5432/fleetpipe")
    schema_name: str = "fleetpipe"
    connect_timeout_s: int = Field(default=5, ge=1, le=300)

    @field_validator("schema_name")
    @classmethod
    def _plain_identifier(cls, value: str) -> str:
        if not SCHEMA_RE.match(value):
            raise ValueError(
                f"schema_name {value!r} must be a lower-case SQL identifier ([a-z_][a-z0-9_]*)"
            )
        return value


class MigrationError(FleetPipeError):
    """The database's recorded migrations disagree with the ones this release ships."""


class SchemaNotMigrated(MigrationError):
    """The schema lacks migrations and this role may not apply them: the owner must."""


class DatabaseUnavailable(FleetPipeError):
    """PostgreSQL cannot be reached or lost the connection."""


# What psycopg raises when the server is not there (yet) or the connection broke.
UNREACHABLE = (psycopg.OperationalError, psycopg.InterfaceError)


class DatabaseClient:
    """A service's one connection to its database, opened on demand by the subclass and closed
    (to be opened again) after a failure."""

    def __init__(self, settings: PostgresSettings, *, application_name: str) -> None:
        self._settings = settings
        self._application_name = application_name
        self._conn: psycopg.Connection[Any] | None = None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def dsn_user(dsn: str) -> str | None:
    """The role a libpq connection string (URI or ``key=value``) logs in as; None when it
    names none (libpq would then take the system user's name)."""
    try:
        user = conninfo_to_dict(dsn).get("user")
    except psycopg.ProgrammingError as exc:
        # Not psycopg's text: it may quote the string, password and all.
        raise ConfigError("the connection string cannot be parsed (key dsn)") from exc
    return str(user) if user else None


def connect(
    settings: PostgresSettings, *, application_name: str, autocommit: bool = False
) -> psycopg.Connection[tuple[object, ...]]:
    """A connection whose ``search_path`` is the configured schema (then ``public``)."""
    return psycopg.connect(
        settings.dsn.get_secret_value(),
        autocommit=autocommit,
        connect_timeout=settings.connect_timeout_s,
        application_name=application_name,
        options=f"-c search_path={settings.schema_name},public",
    )


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(package: str) -> list[Migration]:
    """The ``migrations/NNNN_name.sql`` files shipped in ``package``, in version order."""
    folder = resources.files(package) / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = MIGRATION_RE.match(entry.name)
        if match is None:
            raise ConfigError(f"{package}: migration file {entry.name!r} is not NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ConfigError(f"{package}: two migrations share a version number: {versions}")
    return found


def apply_migrations(
    conn: psycopg.Connection[Any],
    *,
    schema: str,
    component: str,
    migrations: list[Migration],
) -> list[Migration]:
    """Create the schema if needed and apply the missing migrations; returns those applied."""
    if not SCHEMA_RE.match(schema):
        raise ConfigError(f"schema {schema!r} is not a plain lower-case identifier")
    if _current(conn, schema=schema, component=component, migrations=migrations):
        return []
    try:
        return _apply(conn, schema=schema, component=component, migrations=migrations)
    except psycopg.errors.InsufficientPrivilege as exc:
        pending = ", ".join(f"{m.version:04d}_{m.name}" for m in migrations)
        raise SchemaNotMigrated(
            f"schema {schema} lacks {component} migrations ({pending} or some of them) and "
            f"this role may not apply them ({str(exc).strip()}): run them as the schema's "
            "owner first"
        ) from exc


def _current(
    conn: psycopg.Connection[Any], *, schema: str, component: str, migrations: list[Migration]
) -> bool:
    """Whether every migration of ``component`` ran on ``schema`` as shipped: then nothing is
    to change, and a service's role, which may not create or alter anything (see
    ``fleetpipe.core.dbroles``), starts as well as the owner's."""
    try:
        with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
            table = f"{schema}.schema_migrations"
            found = cur.execute("SELECT to_regclass(%s)", (table,)).fetchone()
            if found is None or found[0] is None:
                return False
            rows = cur.execute(
                sql.SQL(
                    "SELECT version, checksum FROM {}.schema_migrations WHERE component = %s"
                ).format(sql.Identifier(schema)),
                (component,),
            ).fetchall()
    except psycopg.errors.InsufficientPrivilege:
        return False  # the full path says what is missing, and whose rights it needs
    done = {int(str(v)): str(c) for v, c in rows}
    return all(done.get(m.version) == m.checksum for m in migrations)


def _apply(
    conn: psycopg.Connection[Any], *, schema: str, component: str, migrations: list[Migration]
) -> list[Migration]:
    applied: list[Migration] = []
    with conn.transaction():
        # One lock per schema: replicas of every component starting at once apply in turn.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"fleetpipe-schema:{schema}",))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(sql.Identifier(schema)))
        conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                component  text        NOT NULL,
                version    integer     NOT NULL,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (component, version)
            )
            """
        )
        # A plain tuple cursor, whatever row factory the caller's connection uses.
        with conn.cursor(row_factory=tuple_row) as cur:
            rows = cur.execute(
                "SELECT version, name, checksum FROM schema_migrations WHERE component = %s",
                (component,),
            ).fetchall()
        done = {int(str(v)): (str(n), str(c)) for v, n, c in rows}
        for migration in migrations:
            if migration.version in done:
                name, checksum = done[migration.version]
                if checksum != migration.checksum:
                    raise MigrationError(
                        f"{component} migration {migration.version:04d}_{name} was changed after "
                        f"it ran on schema {schema}: write a new migration instead"
                    )
                continue
            log.info(
                "applying %s migration %04d_%s to schema %s",
                component,
                migration.version,
                migration.name,
                schema,
            )
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (component, version, name, checksum) "
                "VALUES (%s, %s, %s, %s)",
                (component, migration.version, migration.name, migration.checksum),
            )
            applied.append(migration)
        unknown = sorted(set(done) - {m.version for m in migrations})
        if unknown:
            # A newer release ran here: its schema is a superset (migrations are additive), so
            # this older code can still run, but say so.
            log.warning(
                "schema %s has %s migrations %s this release does not know",
                schema,
                component,
                unknown,
            )
    return applied


def migrate_when_ready(
    settings: PostgresSettings,
    *,
    application_name: str,
    component: str,
    migrations: list[Migration],
    timeout_s: float = 300.0,
    await_owner: bool = True,
) -> list[Migration]:
    """Wait for the database, then apply ``component``'s missing migrations; returns those.

    Every attempt opens a connection of its own, closed afterwards. An unreachable server is
    retried (with growing, jittered pauses, for up to ``timeout_s``), and so is a schema this
    role may not migrate (:class:`SchemaNotMigrated`): the owner's migration, run beside the
    service (a Job started with it), mends that, and a service that waited starts at once
    instead of after a crash loop's growing pauses. Any other :class:`MigrationError` (a
    released migration edited) is not something waiting mends, and goes through at once; so
    does a :class:`SchemaNotMigrated` without ``await_owner`` (the caller meant to be the
    owner).
    """

    def attempt() -> list[Migration]:
        try:
            with connect(settings, application_name=application_name, autocommit=True) as conn:
                return apply_migrations(
                    conn, schema=settings.schema_name, component=component, migrations=migrations
                )
        except UNREACHABLE as exc:
            raise DatabaseUnavailable(f"PostgreSQL unavailable: {exc}") from exc

    retrying = Retrying(
        retry=retry_if_exception_type(
            (DatabaseUnavailable, SchemaNotMigrated) if await_owner else DatabaseUnavailable
        ),
        wait=wait_exponential_jitter(multiplier=0.5, max=10),
        stop=stop_after_delay(timeout_s),
        reraise=True,
        before_sleep=before_sleep_log(log, logging.WARNING),
    )
    return retrying(attempt)
