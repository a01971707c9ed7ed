"""A PostgreSQL role per service: each does its job with what it was granted, and the server
refuses it the rest (dropping a table first of all).

The schema is migrated by its owner (the cluster's owner here), then
``fleetpipe.core.dbroles.grant`` gives each service role its share; the roles log in with
SCRAM passwords over loopback, as services do.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from fleetpipe.core.db import MigrationError, connect
from fleetpipe.storage_writer import columns
from fleetpipe.storage_writer.database import HotStore, WriteBatch
from fleetpipe.storage_writer.partitions import hot_window, partition_name
from fleetpipe_loadtest import records
from support.security import RoleSchema
from support.servers import PostgresHandle, Schema

pytestmark = pytest.mark.integration

LEDGER_ROW = """
INSERT INTO notification_ledger (alert_id, phase, channel, status, vehicle_id, driver_key, rule,
    severity, to_address, reference, alert_time, created_at)
VALUES ('a-1', 'open', 'sms', 'SENT', 'v-1', 'd-1', 'speeding', 'warning', '+15550100', 'r',
    now(), now())
"""


@pytest.fixture
def schema(postgres: PostgresHandle, pg_schema: Schema) -> Iterator[RoleSchema]:
    migrated = RoleSchema(postgres.dsn, pg_schema.name, postgres.logins)
    migrated.migrate()
    yield migrated


def test_the_storage_writer_keeps_its_partitions_through_the_owners_functions(
    schema: RoleSchema,
) -> None:
    today = datetime.now(UTC)
    old = (today - timedelta(days=10)).date()
    with connect(schema.owner(), application_name="test", autocommit=True) as conn:
        conn.execute("SELECT telemetry_partition_create(%s)", (old,))
    store = HotStore(schema.login(schema.roles.storage_writer), application_name="test")
    try:
        store.migrate(timeout_s=10)  # current already: nothing for the writer to change
        window = hot_window(today, retention_days=3, ahead_days=2)
        created, dropped = store.maintain(window, events_retention_days=90)
    finally:
        store.close()
    assert dropped == [old]
    assert created == window.days()
    owned = schema.run(
        schema.roles.reader,
        "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'telemetry'::regclass",
    )
    assert sorted(str(name) for name, _ in owned) == [partition_name(d) for d in window.days()]
    # The partitions are the owner's, not the writer's: it could not drop them itself.
    assert {str(owner) for _, owner in owned} == {"fleetpipe"}


def test_the_storage_writer_stores_telemetry_claiming_its_key_groups(schema: RoleSchema) -> None:
    today = datetime.now(UTC)
    events = [records.enriched(v, 1, event_time_us=records.now_us()) for v in range(3)]
    decoded = columns.TelemetryDecoder().decode([e.SerializeToString() for e in events])
    store = HotStore(schema.login(schema.roles.storage_writer), application_name="test")
    try:
        store.maintain(hot_window(today, retention_days=3, ahead_days=2), events_retention_days=90)
        batch = WriteBatch(telemetry=columns.telemetry_rows(decoded).table)
        result = store.write(batch)
    finally:
        store.close()
    assert result.telemetry_rows == 3
    claims = schema.run(schema.roles.reader, "SELECT count(*) FROM telemetry_key_group_writers")
    assert claims == [(result.taken_over_groups,)] and result.taken_over_groups > 0


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        pytest.param("DROP TABLE alerts", "must be owner of table alerts", id="drop-a-table"),
        pytest.param("TRUNCATE telemetry", "permission denied", id="truncate-telemetry"),
        pytest.param("CREATE TABLE mine (x int)", "permission denied for schema", id="create"),
        pytest.param(
            "ALTER TABLE trips ADD COLUMN x int", "must be owner of table trips", id="alter"
        ),
        pytest.param(
            "SELECT to_address FROM notification_ledger",
            "permission denied for table notification_ledger",
            id="read-phone-numbers",
        ),
        pytest.param(
            "DELETE FROM telemetry_key_group_writers",
            "permission denied for table telemetry_key_group_writers",
            id="drop-claims",
        ),
    ],
)
def test_the_storage_writer_is_refused_what_is_not_its_job(
    schema: RoleSchema, statement: str, refusal: str
) -> None:
    answer = schema.refused(schema.roles.storage_writer, statement)
    assert refusal in answer
    assert "\n" not in answer


def test_the_partition_function_drops_only_past_days(schema: RoleSchema) -> None:
    writer = schema.roles.storage_writer
    schema.run(writer, "SELECT telemetry_partition_create(current_date)")
    with pytest.raises(psycopg.errors.RaiseException, match="is not in the past"):
        schema.run(writer, "SELECT telemetry_partition_drop(current_date)")


def test_notification_writes_its_ledger_and_nothing_else(schema: RoleSchema) -> None:
    role = schema.roles.notification
    schema.run(role, LEDGER_ROW)
    assert schema.run(role, "SELECT alert_id FROM notification_ledger") == [("a-1",)]
    for statement, refusal in (
        ("INSERT INTO telemetry (vehicle_id) VALUES ('v-1')", "permission denied for table"),
        ("SELECT * FROM alerts", "permission denied for table alerts"),
        ("DELETE FROM notification_ledger", "permission denied for table notification_ledger"),
        ("DROP TABLE notification_ledger", "must be owner"),
    ):
        assert refusal in schema.refused(role, statement), statement


def test_the_console_role_reads_and_cannot_write(schema: RoleSchema) -> None:
    role = schema.roles.reader
    assert schema.run(role, "SELECT count(*) FROM alerts") == [(0,)]
    assert schema.run(role, "SELECT count(*) FROM alerts_hourly") == [(0,)]
    for statement in (
        "INSERT INTO alerts (alert_id) VALUES ('x')",
        "DELETE FROM dead_letters",
        "UPDATE vehicle_latest SET seq = 0",
    ):
        assert "permission denied for table" in schema.refused(role, statement), statement


def test_a_wrong_password_is_refused_in_one_clear_line(schema: RoleSchema) -> None:
    role = schema.roles.storage_writer
    with pytest.raises(psycopg.OperationalError) as refused:
        connect(schema.login(role, password="not-the-password"), application_name="test")
    message = str(refused.value)
    assert f'password authentication failed for user "{role}"' in message
    assert "not-the-password" not in message


def test_a_service_role_cannot_migrate_and_says_so(
    postgres: PostgresHandle, pg_schema: Schema
) -> None:
    # A schema nobody migrated: the writer's role may not create what it lacks.
    empty = RoleSchema(postgres.dsn, pg_schema.name, postgres.logins)
    store = HotStore(empty.login(empty.roles.storage_writer), application_name="test")
    # It waits for the owner's migration (test_db_migrate.py) as long as it is let, then says.
    with pytest.raises(MigrationError, match="run them as the schema's owner first") as refused:
        store.migrate(timeout_s=1)
    assert "permission denied" in str(refused.value)
