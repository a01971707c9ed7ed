"""Versioned migrations applied at start, once, and refused when edited after release."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from fleetpipe.core.db import (
    Migration,
    MigrationError,
    PostgresSettings,
    apply_migrations,
    connect,
    migrate_when_ready,
)

pytestmark = pytest.mark.integration

V1 = Migration(1, "create", "CREATE TABLE probe (id int PRIMARY KEY)")
V2 = Migration(2, "add", "ALTER TABLE probe ADD COLUMN note text")


def _settings(pg_schema: Any) -> PostgresSettings:
    return PostgresSettings(dsn=pg_schema.dsn, schema_name=pg_schema.name)


def test_migrations_apply_once_in_order(pg_schema: Any) -> None:
    settings = _settings(pg_schema)
    with connect(settings, application_name="test") as conn:
        first = apply_migrations(conn, schema=pg_schema.name, component="c", migrations=[V1])
        second = apply_migrations(conn, schema=pg_schema.name, component="c", migrations=[V1, V2])
        again = apply_migrations(conn, schema=pg_schema.name, component="c", migrations=[V1, V2])
        assert ([m.version for m in first], [m.version for m in second], again) == ([1], [2], [])
        conn.execute("INSERT INTO probe (id, note) VALUES (1, 'x')")
        rows = conn.execute(
            "SELECT component, version, name FROM schema_migrations ORDER BY version"
        ).fetchall()
        assert rows == [("c", 1, "create"), ("c", 2, "add")]


def test_components_are_versioned_apart(pg_schema: Any) -> None:
    other = Migration(1, "other", "CREATE TABLE other_probe (id int)")
    with connect(_settings(pg_schema), application_name="test") as conn:
        apply_migrations(conn, schema=pg_schema.name, component="a", migrations=[V1])
        assert apply_migrations(conn, schema=pg_schema.name, component="b", migrations=[other])


def test_an_edited_migration_is_refused(pg_schema: Any) -> None:
    with connect(_settings(pg_schema), application_name="test") as conn:
        apply_migrations(conn, schema=pg_schema.name, component="c", migrations=[V1])
        edited = Migration(1, "create", "CREATE TABLE probe (id bigint PRIMARY KEY)")
        with pytest.raises(MigrationError, match="was changed after it ran"):
            apply_migrations(conn, schema=pg_schema.name, component="c", migrations=[edited])


def test_a_failing_migration_leaves_nothing_half_done(pg_schema: Any) -> None:
    broken = Migration(2, "broken", "ALTER TABLE probe ADD COLUMN x int; SELECT 1/0")
    with connect(_settings(pg_schema), application_name="test") as conn:
        apply_migrations(conn, schema=pg_schema.name, component="c", migrations=[V1])
        with pytest.raises(psycopg.errors.DivisionByZero):
            apply_migrations(conn, schema=pg_schema.name, component="c", migrations=[V1, broken])
        cols = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'probe'",
            (pg_schema.name,),
        ).fetchall()
        assert cols == [("id",)]


def test_the_schema_is_created_when_missing(postgres: Any) -> None:
    name = "t_created_by_migrations"
    settings = PostgresSettings(dsn=postgres.dsn, schema_name=name)
    try:
        with connect(settings, application_name="test") as conn:
            apply_migrations(conn, schema=name, component="c", migrations=[V1])
            assert conn.execute("SELECT count(*) FROM probe").fetchone() == (0,)
    finally:
        with psycopg.connect(postgres.dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def test_a_reachable_database_is_migrated_at_the_first_attempt(pg_schema: Any) -> None:
    settings = _settings(pg_schema)
    first = migrate_when_ready(settings, application_name="test", component="c", migrations=[V1])
    again = migrate_when_ready(
        settings, application_name="test", component="c", migrations=[V1, V2]
    )
    assert ([m.version for m in first], [m.version for m in again]) == ([1], [2])


def test_an_edited_migration_is_refused_without_waiting(pg_schema: Any) -> None:
    settings = _settings(pg_schema)
    migrate_when_ready(settings, application_name="test", component="c", migrations=[V1])
    edited = Migration(1, "create", "CREATE TABLE probe (id bigint PRIMARY KEY)")
    with pytest.raises(MigrationError, match="was changed after it ran"):
        migrate_when_ready(
            settings, application_name="test", component="c", migrations=[edited], timeout_s=600
        )
