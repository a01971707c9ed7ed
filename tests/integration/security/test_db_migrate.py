"""``fleetpipe db migrate`` on the real PostgreSQL: the schema's owner migrates a fresh schema
and grants the service roles their share; each service then does its job with its own role,
and nothing more; a second run applies nothing. A service started first waits for it.

The command runs as a process, as the operator's Job runs it, with the owner's login and the
roles' names in ``FLEET_*`` variables; the roles log in with SCRAM passwords over loopback.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest

from fleetpipe.core.db import dsn_user, load_migrations
from fleetpipe.core.dbroles import DatabaseRoles
from fleetpipe.notification.ledger import Entry, Ledger, Status
from fleetpipe.notification.routing import Channel, Phase
from fleetpipe.schema.owner import COMPONENTS, migrate_schema
from fleetpipe.storage_writer import columns
from fleetpipe.storage_writer.database import HotStore, WriteBatch, WriteResult
from fleetpipe.storage_writer.partitions import hot_window
from fleetpipe_dev.testing import wait_for
from fleetpipe_loadtest import records
from support.security import RoleSchema
from support.servers import PostgresHandle, Schema

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh(postgres: PostgresHandle, pg_schema: Schema) -> RoleSchema:
    """A schema nobody migrated yet."""
    return RoleSchema(postgres.dsn, pg_schema.name, postgres.logins)


def db_migrate(
    schema: RoleSchema, *, dsn: str | None = None, roles: DatabaseRoles | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FLEET_POSTGRES__DSN": dsn or schema.owner_dsn,
        "FLEET_POSTGRES__SCHEMA_NAME": schema.name,
    }
    if roles is not None:
        env |= {
            "FLEET_DATABASE_ROLES__STORAGE_WRITER": roles.storage_writer,
            "FLEET_DATABASE_ROLES__NOTIFICATION": roles.notification,
            "FLEET_DATABASE_ROLES__READER": roles.reader,
        }
    return subprocess.run(
        [sys.executable, "-m", "fleetpipe.cli", "db", "migrate", "--timeout", "30"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _store_a_batch(schema: RoleSchema) -> WriteResult:
    """What the storage writer does with its role: its migrations found current, its day
    partitions made through the owner's function, a batch of telemetry stored."""
    store = HotStore(schema.login(schema.roles.storage_writer), application_name="test")
    try:
        store.migrate(timeout_s=10)
        store.maintain(
            hot_window(datetime.now(UTC), retention_days=3, ahead_days=2),
            events_retention_days=90,
        )
        events = list(records.enriched_stream(5, 50))
        decoded = columns.TelemetryDecoder().decode([e.SerializeToString() for e in events])
        return store.write(WriteBatch(telemetry=columns.telemetry_rows(decoded).table))
    finally:
        store.close()


def _record_a_delivery(schema: RoleSchema) -> None:
    ledger = Ledger(schema.login(schema.roles.notification), application_name="test")
    try:
        ledger.migrate(timeout_s=10)
        entry = Entry(
            alert_id="a-1",
            phase=Phase.OPEN,
            channel=Channel.SMS,
            status=Status.PENDING,
            vehicle_id="v-1",
            driver_id="d-1",
            driver_key="d-1",
            rule="speeding",
            severity="warning",
            to_address="+14155550100",
            from_address="+15550002222",
            reference="a-1/driver/sms",
            alert_time_us=records.now_us(),
        )
        recorded = ledger.record([entry])
        assert [e.alert_id for e in recorded.values()] == ["a-1"]
    finally:
        ledger.close()


def test_the_owner_migrates_a_fresh_schema_and_each_role_then_does_its_job(
    fresh: RoleSchema,
) -> None:
    first = db_migrate(fresh, roles=fresh.roles)
    assert first.returncode == 0, first.stderr
    for component, package in COMPONENTS:
        shipped = load_migrations(package)
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in shipped)
        assert f"{component}: applied {names}" in first.stdout
    assert f"statements for {', '.join(fresh.roles.names())}" in first.stdout

    assert _store_a_batch(fresh).telemetry_rows == 50
    _record_a_delivery(fresh)
    assert fresh.run(fresh.roles.reader, "SELECT count(*) FROM telemetry") == [(50,)]
    for role, table in (
        (fresh.roles.storage_writer, "telemetry"),
        (fresh.roles.notification, "notification_ledger"),
        (fresh.roles.reader, "alerts"),
    ):
        assert "must be owner" in fresh.refused(role, f"DROP TABLE {table}"), role

    again = db_migrate(fresh, roles=fresh.roles)
    assert again.returncode == 0, again.stderr
    assert "applied" not in again.stdout
    for component, package in COMPONENTS:
        assert f"{component}: current ({len(load_migrations(package))} migrations)" in again.stdout


def test_without_role_names_the_owner_migrates_and_grants_nothing(fresh: RoleSchema) -> None:
    done = db_migrate(fresh)
    assert done.returncode == 0, done.stderr
    assert "grants: none" in done.stdout
    refused = fresh.refused(fresh.roles.reader, f"SELECT count(*) FROM {fresh.name}.alerts")
    assert "permission denied" in refused


def test_a_login_that_is_not_the_owner_is_refused_in_one_line_at_once(fresh: RoleSchema) -> None:
    password = fresh.logins.passwords()[fresh.roles.storage_writer]
    writer = fresh.logins.dsn(fresh.roles.storage_writer)
    refused = db_migrate(fresh, dsn=writer, roles=fresh.roles)
    assert refused.returncode == 1
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("error: schema ")
    assert "run them as the schema's owner first" in line
    assert password not in refused.stdout + refused.stderr


def test_a_role_that_does_not_exist_is_named_in_one_line(fresh: RoleSchema) -> None:
    roles = fresh.roles.model_copy(update={"notification": "fleetpipe_nobody"})
    refused = db_migrate(fresh, roles=roles)
    assert refused.returncode == 1
    (line,) = refused.stderr.strip().splitlines()
    assert line == (
        f'error: granting on schema {fresh.name}: role "fleetpipe_nobody" does not exist'
    )


def test_a_service_started_before_the_migration_waits_and_then_starts(
    fresh: RoleSchema, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fleetpipe.core.db")
    failures: list[BaseException] = []
    store = HotStore(fresh.login(fresh.roles.storage_writer), application_name="test")

    def start() -> None:
        try:
            store.migrate(timeout_s=120)
        except BaseException as exc:  # whatever it is, the test's thread reports it
            failures.append(exc)

    service = threading.Thread(target=start, daemon=True)
    service.start()
    try:
        # It found the schema lacking, said so, and waits rather than exits.
        wait_for(
            lambda: any(
                "run them as the schema's owner first" in r.getMessage() for r in caplog.records
            ),
            timeout=60,
            what="the writer to find its schema not migrated",
        )
        assert service.is_alive() and not failures
        migrate_schema(fresh.owner(), fresh.roles, timeout_s=30)
        service.join(timeout=60)
        assert not service.is_alive(), "the writer still waits after the migration"
    finally:
        store.close()
    assert failures == []


def test_roles_that_log_in_as_the_owner_are_granted_without_complaint(fresh: RoleSchema) -> None:
    # What the operator's Job names for a service without a login of its own, and for a
    # console reading with the owner's: the owner itself, twice.
    owner = dsn_user(fresh.owner_dsn)
    assert owner is not None
    roles = fresh.roles.model_copy(update={"notification": owner, "reader": owner})
    done = db_migrate(fresh, roles=roles)
    assert done.returncode == 0, done.stderr
    assert _store_a_batch(fresh).telemetry_rows == 50
