"""The delivery ledger in PostgreSQL: one row per (alert, phase, recipient, channel).

The recipient is the driver, an operations recipient (``ops:<name>``) or a webhook sink
(``webhook:<name>``); every row has a ``delivery_id`` (a UUID the database assigns once), which a
webhook delivery sends as its idempotency key.

A row is written PENDING (and committed) before the provider is called and settled SENT or
FAILED afterwards. A row found PENDING later means a process died in between: the handler looks
the delivery up at the provider before deciding to send. Decisions not to send (rate limited,
skipped) are rows too, so a replay repeats every decision instead of taking it again.

While one process works on a delivery it holds a session advisory lock on it: a replica that
took over the partition after a stall sees the lock and waits, and a dead process's lock goes
with its connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import psycopg
from prometheus_client import Histogram
from psycopg.rows import dict_row

from fleetpipe.core.db import (
    DatabaseClient,
    DatabaseUnavailable,
    PostgresSettings,
    connect,
    load_migrations,
    migrate_when_ready,
)
from fleetpipe.notification.routing import DRIVER, Channel, Phase

Slot = tuple[str, Channel]  # (recipient, channel)


class Status(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    RATE_LIMITED = "RATE_LIMITED"
    SKIPPED = "SKIPPED"


class LedgerUnavailable(DatabaseUnavailable):
    """The database cannot be reached; the batch waits in Kafka and is retried."""


@dataclass(frozen=True, slots=True)
class Entry:
    alert_id: str
    phase: Phase
    channel: Channel
    status: Status
    vehicle_id: str
    driver_id: str
    driver_key: str
    rule: str
    severity: str
    to_address: str
    from_address: str
    reference: str
    alert_time_us: int
    provider_sid: str | None = None
    error_code: str = ""
    error_message: str = ""
    attempts: int = 0
    created_at: datetime | None = None
    decided_at: datetime | None = None
    recipient: str = DRIVER
    delivery_id: str = ""  # assigned by the database when the row is written

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.alert_id, self.phase.value, self.recipient, self.channel.value)

    @property
    def slot(self) -> Slot:
        """The delivery among its alert phase's."""
        return (self.recipient, self.channel)

    @property
    def lock_name(self) -> str:
        # A driver's deliveries keep the name they had before recipients existed, so a process
        # of the previous version and one of this version exclude each other during an upgrade.
        if self.recipient == DRIVER:
            return "|".join((self.alert_id, self.phase.value, self.channel.value))
        return "|".join(self.key)

    def settled(self, status: Status, **changes: Any) -> Entry:
        return replace(self, status=status, decided_at=datetime.now(UTC), **changes)


_INSERT_COLUMNS = (
    "alert_id",
    "phase",
    "channel",
    "status",
    "vehicle_id",
    "driver_id",
    "driver_key",
    "rule",
    "severity",
    "to_address",
    "from_address",
    "reference",
    "provider_sid",
    "error_code",
    "error_message",
    "attempts",
    "alert_time",
    "decided_at",
    "recipient",
)


def _from_row(row: dict[str, Any]) -> Entry:
    alert_time: datetime = row["alert_time"]
    return Entry(
        alert_id=row["alert_id"],
        phase=Phase(row["phase"]),
        channel=Channel(row["channel"]),
        status=Status(row["status"]),
        vehicle_id=row["vehicle_id"],
        driver_id=row["driver_id"],
        driver_key=row["driver_key"],
        rule=row["rule"],
        severity=row["severity"],
        to_address=row["to_address"],
        from_address=row["from_address"],
        reference=row["reference"],
        alert_time_us=int(alert_time.timestamp() * 1_000_000),
        provider_sid=row["provider_sid"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        decided_at=row["decided_at"],
        recipient=row["recipient"],
        delivery_id=str(row["delivery_id"]),
    )


class Ledger(DatabaseClient):
    def __init__(
        self,
        settings: PostgresSettings,
        *,
        application_name: str,
        seconds: Histogram | None = None,
    ) -> None:
        super().__init__(settings, application_name=application_name)
        # Observes every call's time at the database (connecting included), when given.
        self._seconds = seconds

    def _connect(self) -> psycopg.Connection[Any]:
        conn = connect(self._settings, application_name=self._application_name, autocommit=True)
        conn.row_factory = dict_row  # type: ignore[assignment]
        return conn

    @contextmanager
    def _db(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        started = time.monotonic()
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            yield self._conn
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise LedgerUnavailable(f"notification ledger unavailable: {exc}") from exc
        finally:
            if self._seconds is not None:
                self._seconds.observe(time.monotonic() - started)

    def migrate(self, *, timeout_s: float = 300.0) -> None:
        """Wait for the database (up to ``timeout_s``), then create or update the ledger."""
        migrate_when_ready(
            self._settings,
            application_name=self._application_name,
            component="notification",
            migrations=load_migrations("fleetpipe.notification"),
            timeout_s=timeout_s,
        )

    def entries(self, alert_id: str, phase: Phase) -> dict[Slot, Entry]:
        with self._db() as conn:
            rows = conn.execute(
                "SELECT * FROM notification_ledger WHERE alert_id = %s AND phase = %s",
                (alert_id, phase.value),
            ).fetchall()
        return {e.slot: e for e in map(_from_row, rows)}

    def record(self, entries: Sequence[Entry]) -> dict[Slot, Entry]:
        """Write the decisions for one alert phase; a row already there wins (a replica or an
        earlier run decided first). Returns what the ledger holds afterwards."""
        if not entries:
            return {}
        placeholders = ", ".join(["%s"] * len(_INSERT_COLUMNS))
        query = (
            f"INSERT INTO notification_ledger ({', '.join(_INSERT_COLUMNS)}) "  # noqa: S608
            f"VALUES ({placeholders}) ON CONFLICT DO NOTHING"
        )
        with self._db() as conn, conn.transaction():
            for e in entries:
                conn.execute(
                    query.encode(),
                    (
                        e.alert_id,
                        e.phase.value,
                        e.channel.value,
                        e.status.value,
                        e.vehicle_id,
                        e.driver_id,
                        e.driver_key,
                        e.rule,
                        e.severity,
                        e.to_address,
                        e.from_address,
                        e.reference,
                        e.provider_sid,
                        e.error_code,
                        e.error_message,
                        e.attempts,
                        datetime.fromtimestamp(e.alert_time_us / 1e6, UTC),
                        e.decided_at,
                        e.recipient,
                    ),
                )
        return self.entries(entries[0].alert_id, entries[0].phase)

    def try_lock(self, entry: Entry) -> bool:
        with self._db() as conn:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s, 0)) AS locked",
                (entry.lock_name,),
            ).fetchone()
        return bool(row and row["locked"])

    def unlock(self, entry: Entry) -> None:
        with self._db() as conn:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (entry.lock_name,))

    def count_attempt(self, entry: Entry) -> Entry:
        with self._db() as conn:
            conn.execute(
                "UPDATE notification_ledger SET attempts = attempts + 1 "
                "WHERE alert_id = %s AND phase = %s AND recipient = %s AND channel = %s",
                entry.key,
            )
        return replace(entry, attempts=entry.attempts + 1)

    def settle(self, entry: Entry) -> Entry:
        """Record the final state of a PENDING delivery."""
        with self._db() as conn:
            conn.execute(
                "UPDATE notification_ledger SET status = %s, provider_sid = %s, error_code = %s, "
                "error_message = %s, attempts = %s, decided_at = now() "
                "WHERE alert_id = %s AND phase = %s AND recipient = %s AND channel = %s "
                "AND status = 'PENDING'",
                (
                    entry.status.value,
                    entry.provider_sid,
                    entry.error_code,
                    entry.error_message[:1000],
                    entry.attempts,
                    *entry.key,
                ),
            )
        return entry

    def recent_deliveries(self, since: datetime) -> list[tuple[str, str, int]]:
        """(driver_key, rule, alert time µs) of every alert phase notified to its driver since
        ``since`` (the rate limit is the driver's alone)."""
        with self._db() as conn:
            rows = conn.execute(
                "SELECT DISTINCT alert_id, phase, driver_key, rule, alert_time "
                "FROM notification_ledger "
                "WHERE status IN ('PENDING', 'SENT') AND alert_time >= %s AND recipient = 'driver'",
                (since,),
            ).fetchall()
        return [
            (r["driver_key"], r["rule"], int(r["alert_time"].timestamp() * 1_000_000)) for r in rows
        ]

    def claimed_sids(self, to_address: str) -> set[str]:
        """Provider resources already recorded for a destination."""
        with self._db() as conn:
            rows = conn.execute(
                "SELECT provider_sid FROM notification_ledger "
                "WHERE to_address = %s AND provider_sid IS NOT NULL",
                (to_address,),
            ).fetchall()
        return {r["provider_sid"] for r in rows}
