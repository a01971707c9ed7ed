"""A notification service against the real broker, the real PostgreSQL and the Twilio-contract
server, with a small vehicle registry of drivers to reach."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import alert_pb2, notification_pb2
from fleetpipe.registry import Vehicle, write_csv
from fleetpipe_dev.testing import ServiceProcess, produce_all, read_all, service_env, wait_for
from fleetpipe_dev.twilio import TwilioContractServer
from support.messages import decoded
from support.servers import Schema

SENDER = "+15005550006"
PHONE = "+31612345678"
INVALID = "+15005550001"  # Twilio's magic "invalid number"

VEHICLES = [
    Vehicle("v-1", "fleet-1", "van", driver_id="d-1", driver_name="Ann", driver_phone=PHONE),
    Vehicle(
        "v-2",
        "fleet-1",
        "van",
        driver_id="d-2",
        driver_phone="+31611111111",
        driver_whatsapp="+31622222222",
    ),
    Vehicle("v-bad", "fleet-1", "van", driver_id="d-3", driver_phone=INVALID),
    # No number to reach its driver: only operations recipients and webhooks hear of it.
    Vehicle("v-nophone", "fleet-1", "van", driver_id="d-4"),
]


@dataclass
class NotificationRig:
    kafka: KafkaSettings
    topics: Topics
    dsn: str
    schema: str
    twilio: TwilioContractServer
    workdir: Path
    processes: list[ServiceProcess] = field(default_factory=list)

    @property
    def registry_path(self) -> Path:
        return self.workdir / "vehicles.csv"

    def start(self, name: str, *, group: str = "notification", **extra: str) -> ServiceProcess:
        env = service_env(
            self.kafka,
            self.topics,
            {
                "FLEET_GROUP_ID": f"{group}-{self.topics.alerts}",
                "FLEET_INSTANCE_ID": name,
                "FLEET_REGISTRY_PATH": str(self.registry_path),
                "FLEET_POSTGRES__DSN": self.dsn,
                "FLEET_POSTGRES__SCHEMA_NAME": self.schema,
                "FLEET_TWILIO__ACCOUNT_SID": self.twilio.account_sid,
                "FLEET_TWILIO__AUTH_TOKEN": self.twilio.auth_token,
                "FLEET_TWILIO__API_BASE_URL": self.twilio.url,
                "FLEET_TWILIO__SMS_FROM": SENDER,
                "FLEET_TWILIO__TIMEOUT_S": "1",
                "FLEET_RETRY__INITIAL_BACKOFF_S": "0.2",
                "FLEET_RETRY__MAX_BACKOFF_S": "1",
                **extra,
            },
        )
        proc = ServiceProcess("fleetpipe.notification", env, self.workdir / f"{name}.log").start()
        self.processes.append(proc)
        return proc

    def produce(self, *alerts: alert_pb2.Alert) -> None:
        produce_all(
            self.kafka,
            self.topics.alerts,
            ((a.vehicle_id, a.SerializeToString()) for a in alerts),
        )

    def outcomes(self) -> list[notification_pb2.NotificationOutcome]:
        msgs = read_all(self.kafka, self.topics.notifications, read_committed=False, idle_s=0.5)
        return [decoded(m, notification_pb2.NotificationOutcome) for m in msgs]

    def wait_outcomes(
        self, n: int, proc: ServiceProcess, *, timeout: float = 90
    ) -> list[notification_pb2.NotificationOutcome]:
        def enough() -> list[notification_pb2.NotificationOutcome]:
            proc.check_alive()
            found = self.outcomes()
            return found if len(found) >= n else []

        return wait_for(enough, timeout=timeout, interval=0.5, what=f"{n} outcome(s)")

    def ledger(self) -> list[dict[str, Any]]:
        with psycopg.connect(
            self.dsn, options=f"-c search_path={self.schema}", row_factory=dict_row
        ) as conn:
            return conn.execute(
                "SELECT * FROM notification_ledger ORDER BY created_at, channel"
            ).fetchall()


@pytest.fixture
def rig(
    kafka_settings: KafkaSettings, topics: Topics, pg_schema: Schema, tmp_path: Path
) -> Iterator[NotificationRig]:
    with TwilioContractServer() as twilio:
        rig = NotificationRig(
            kafka_settings, topics, pg_schema.dsn, pg_schema.name, twilio, tmp_path
        )
        write_csv(VEHICLES, rig.registry_path)
        try:
            yield rig
        finally:
            for proc in rig.processes:
                proc.kill()
