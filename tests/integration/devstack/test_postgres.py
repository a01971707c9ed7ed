"""The session's PostgreSQL: isolated schemas per test, and data that survives a restart."""

from __future__ import annotations

import psycopg
import pytest

from support.servers import PostgresHandle, Schema

pytestmark = pytest.mark.integration


def test_each_test_gets_its_own_schema(pg_schema: Schema) -> None:
    with psycopg.connect(pg_schema.dsn, options=f"-c search_path={pg_schema.name}") as conn:
        conn.execute("CREATE TABLE probe (id int primary key)")
        conn.execute("INSERT INTO probe VALUES (1), (2)")
        conn.commit()
        assert conn.execute("SELECT count(*) FROM probe").fetchone() == (2,)
        (schema,) = conn.execute("SELECT current_schema()").fetchone() or ("",)
        assert schema == pg_schema.name


def test_committed_rows_survive_a_database_restart(
    postgres: PostgresHandle, pg_schema: Schema
) -> None:
    if postgres.server is None:
        pytest.fail("this test restarts the database: run it against the session's own server")
    options = f"-c search_path={pg_schema.name}"
    with psycopg.connect(pg_schema.dsn, options=options) as conn:
        conn.execute("CREATE TABLE kept (id int primary key)")
        conn.execute("INSERT INTO kept SELECT generate_series(1, 1000)")
        conn.commit()
    postgres.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_schema.dsn, connect_timeout=2)
    postgres.start()
    with psycopg.connect(pg_schema.dsn, options=options) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (1000,)
