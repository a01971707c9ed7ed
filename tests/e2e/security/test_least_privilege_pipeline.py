"""The five services, each logged in as its own Kafka principal over SASL_SSL and as its own
PostgreSQL role, carry a crash from ingest to the driver and the database; and no secret they
were given shows in their logs, their /metrics or their readiness answers.

Ingest, enrichment, detection, notification and the storage writer run as processes on the
session's broker (its SASL_SSL listener, ACLs per service) and database (a schema migrated by
its owner, roles granted their share), with the Twilio-contract server standing in for Twilio.
A service given a wrong password says so in its log and stays not ready.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import psycopg
import pytest

from fleetpipe.core.access import Principal
from fleetpipe.core.kafka import Admin
from fleetpipe.core.settings import Topics
from fleetpipe.core.topics import topic_specs
from fleetpipe.pb.v1 import ingest_pb2, ingest_pb2_grpc, notification_pb2, telemetry_pb2
from fleetpipe.registry import Vehicle, write_csv
from fleetpipe_dev.stack.logins import PRINCIPALS, service_logins
from fleetpipe_dev.stack.pipeline import LocalPipeline, PipelineConfig
from fleetpipe_dev.testing import ServiceProcess, read_all, service_env, wait_for
from fleetpipe_dev.twilio import TwilioContractServer
from fleetpipe_loadtest import synthetic
from support.security import RoleSchema
from support.servers import BrokerHandle, PostgresHandle

pytestmark = pytest.mark.e2e

TOKEN = "token-least-privilege-7f3a9c1e5b"
FLEET = "fleet-lp"
PHONE = "+31612345678"
SENDER = "+15005550006"
VEHICLES = [f"{FLEET}-veh-{i:06d}" for i in range(3)]


@dataclass
class Pipeline:
    local: LocalPipeline
    schema: RoleSchema
    twilio: TwilioContractServer
    kafka: BrokerHandle
    secrets: dict[str, str]  # what each secret is, by its value

    @property
    def topics(self) -> Topics:
        return self.local.config.topics

    @property
    def workdir(self) -> Path:
        return self.local.config.workdir

    @property
    def services(self) -> dict[str, ServiceProcess]:
        return self.local.processes

    def env(
        self, service: str, extra: dict[str, str], *, password: str | None = None
    ) -> dict[str, str]:
        """A service's settings with its own Kafka login (with ``password`` if one is given)."""
        login = self.kafka.security.client_settings(PRINCIPALS[service].value, password=password)
        group = {"FLEET_GROUP_ID": self.local.config.group(service)}
        return service_env(login, self.topics, {**group, **extra})

    def check_alive(self) -> None:
        self.local.check_alive()

    def publish(self, events: list[telemetry_pb2.Telemetry]) -> None:
        with grpc.insecure_channel(self.local.ingest_address) as channel:
            ack = ingest_pb2_grpc.TelemetryIngestStub(channel).Publish(
                ingest_pb2.TelemetryBatch(batch_id=int(time.time()), events=events),
                metadata=(("authorization", f"Bearer {TOKEN}"),),
                timeout=30,
            )
        assert (ack.accepted, len(ack.rejected)) == (len(events), 0), ack


def _events(vehicle: int, n: int, *, crash_last: bool) -> list[telemetry_pb2.Telemetry]:
    out = []
    for seq in range(1, n + 1):
        t = synthetic.telemetry(vehicle, seq, fleet=FLEET)
        t.vehicle_id = VEHICLES[vehicle]
        out.append(t)
    if crash_last:
        out[-1].alarms.crash = True
        out[-1].motion.speed_kmh = 0.0
    return out


@pytest.fixture(scope="module")
def pipeline(
    kafka: BrokerHandle, postgres: PostgresHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    """The dev stack's way of running the services (fleetpipe_dev.stack.pipeline), each with
    its own logins (fleetpipe_dev.stack.logins), on the session's servers."""
    workdir = tmp_path_factory.mktemp("least-privilege")
    suffix = uuid.uuid4().hex[:10]
    topics = Topics.with_suffix(suffix)
    Admin(kafka.settings).ensure_topics(topic_specs(topics, 3))
    schema = RoleSchema(postgres.dsn, f"t_{suffix}", postgres.logins)
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema.name}"')
    schema.migrate()
    registry = workdir / "vehicles.csv"
    write_csv(
        [
            Vehicle(v, FLEET, "van", driver_id=f"d-{i}", driver_phone=PHONE)
            for i, v in enumerate(VEHICLES)
        ],
        registry,
    )
    with TwilioContractServer() as twilio:
        known = {
            **{pw: f"Kafka password of {u}" for u, pw in kafka.security.passwords().items()},
            **{pw: f"PostgreSQL password of {r}" for r, pw in postgres.logins.passwords().items()},
            twilio.auth_token: "Twilio auth token",
            TOKEN: "ingest bearer token",
        }
        config = PipelineConfig(
            kafka=kafka.settings,
            topics=topics,
            postgres_dsn=postgres.dsn,
            schema=schema.name,
            workdir=workdir,
            registry=registry,
            tokens={TOKEN: FLEET},
            twilio_env={
                "FLEET_TWILIO__ACCOUNT_SID": twilio.account_sid,
                "FLEET_TWILIO__AUTH_TOKEN": twilio.auth_token,
                "FLEET_TWILIO__API_BASE_URL": twilio.url,
                "FLEET_TWILIO__SMS_FROM": SENDER,
            },
            group_suffix=suffix,
            overrides={"FLEET_LATEST_INTERVAL_S": "0"},
            logins=service_logins(kafka.security, postgres.logins),
        )
        local = LocalPipeline(config)
        run = Pipeline(local, schema, twilio, kafka, known)
        try:
            local.start(timeout=180)
            yield run
        finally:
            local.stop()
            with psycopg.connect(postgres.dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema.name}" CASCADE')


def test_each_service_does_its_job_as_its_own_principal_and_role(pipeline: Pipeline) -> None:
    pipeline.publish(_events(0, 5, crash_last=True) + _events(1, 4, crash_last=False))
    reader = pipeline.schema.roles.reader

    def stored() -> bool:
        pipeline.check_alive()
        rows = pipeline.schema.run(reader, "SELECT count(*) FROM telemetry")
        alerts = pipeline.schema.run(reader, "SELECT rule FROM alerts")
        sent = pipeline.schema.run(reader, "SELECT count(*) FROM notification_ledger")
        return rows == [(9,)] and ("crash",) in alerts and sent != [(0,)]

    wait_for(stored, timeout=120, interval=0.5, what="telemetry, the crash and its delivery")
    wait_for(pipeline.twilio.contract.calls, timeout=60, what="the driver to be called")
    assert {c["to"] for c in pipeline.twilio.contract.calls()} == {PHONE}
    # Notification's outcomes, read as the console reads them: with the console's login.
    outcomes = read_all(
        pipeline.kafka.security.client_settings(Principal.CONSOLE.value),
        pipeline.topics.notifications,
        idle_s=0.5,
    )
    decoded = [notification_pb2.NotificationOutcome.FromString(m.value() or b"") for m in outcomes]
    assert VEHICLES[0] in {o.vehicle_id for o in decoded}


def test_no_secret_shows_in_logs_metrics_or_readiness(pipeline: Pipeline) -> None:
    # After the run above: every service has logged its start, its work and its Kafka clients.
    texts: dict[str, str] = {}
    for name, proc in pipeline.services.items():
        texts[f"{name} log"] = proc.log()
        for path in ("/metrics", "/readyz", "/healthz"):
            status, body = proc.get(path)
            assert status == 200, (name, path, body)
            texts[f"{name} {path}"] = body
    assert all(texts[f"{n} log"] for n in pipeline.services), "a service logged nothing"
    leaks = [
        f"{what} in {where}"
        for where, text in texts.items()
        for secret, what in pipeline.secrets.items()
        if secret in text
    ]
    assert leaks == []


def test_a_wrong_kafka_password_is_said_and_the_service_stays_not_ready(
    pipeline: Pipeline,
) -> None:
    env = pipeline.env(
        "enrichment",
        {
            "FLEET_INSTANCE_ID": "wrong-password",
            "FLEET_REGISTRY_PATH": str(pipeline.workdir / "vehicles.csv"),
        },
        password="not-the-password",
    )
    proc = ServiceProcess("fleetpipe.enrichment", env, pipeline.workdir / "wrong-kafka.log").start()
    try:
        said = wait_for(
            lambda: proc.alive() and "Authentication failed" in proc.log() and proc.http_port(),
            timeout=60,
            what="the refused login in the log",
        )
        assert said
        status, body = proc.get("/readyz")
        assert status == 503, body
        assert "not-the-password" not in proc.log()
    finally:
        proc.stop()


def test_a_wrong_database_password_is_said_and_the_writer_stays_not_ready(
    pipeline: Pipeline,
) -> None:
    role = pipeline.schema.roles.storage_writer
    env = pipeline.env(
        "storage-writer",
        {
            "FLEET_INSTANCE_ID": "wrong-password",
            "FLEET_POSTGRES__DSN": pipeline.schema.logins.dsn(role, password="not-the-password"),
            "FLEET_POSTGRES__SCHEMA_NAME": pipeline.schema.name,
            "FLEET_LAKE__PATH": str(pipeline.workdir / "lake-wrong"),
        },
    )
    proc = ServiceProcess(
        "fleetpipe.storage_writer", env, pipeline.workdir / "wrong-db.log"
    ).start()
    try:
        line = f'password authentication failed for user "{role}"'
        wait_for(lambda: proc.alive() and line in proc.log(), timeout=60, what="the refusal")
        assert not proc.ready()
        assert "not-the-password" not in proc.log()
    finally:
        proc.stop()
