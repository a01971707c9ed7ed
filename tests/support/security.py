"""Least-privilege helpers: a schema migrated by its owner with the services' grants, logins
per service on the broker's SASL_SSL listener, and what a refused client reports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import psycopg
from pydantic import SecretStr

from fleetpipe.core import dbroles
from fleetpipe.core.db import PostgresSettings, connect
from fleetpipe.core.errors import KafkaError
from fleetpipe.core.kafka import build_producer
from fleetpipe.core.readers import OFFSET_BEGINNING, build_reader
from fleetpipe.core.settings import KafkaSettings
from fleetpipe_dev.stack.kafka_security import MECHANISM
from fleetpipe_dev.stack.logins import prepare_schema
from fleetpipe_dev.stack.pg_roles import ServiceLogins


@dataclass(frozen=True)
class RoleSchema:
    """A test's schema, migrated by the owner, with the service roles granted their share."""

    owner_dsn: str
    name: str
    logins: ServiceLogins

    @property
    def roles(self) -> dbroles.DatabaseRoles:
        return self.logins.roles

    def owner(self) -> PostgresSettings:
        return PostgresSettings(dsn=SecretStr(self.owner_dsn), schema_name=self.name)

    def login(self, role: str, *, password: str | None = None) -> PostgresSettings:
        return PostgresSettings(
            dsn=SecretStr(self.logins.dsn(role, password=password)), schema_name=self.name
        )

    def migrate(self) -> None:
        """Apply every component's migrations as the owner, then the grants."""
        prepare_schema(self.owner(), self.roles)

    def refused(self, role: str, statement: str) -> str:
        """Run ``statement`` as ``role``; the server's refusal (the test fails without one)."""
        with connect(self.login(role), application_name="test", autocommit=True) as conn:
            try:
                conn.execute(statement.encode())
            except psycopg.errors.InsufficientPrivilege as exc:
                # The server's own one-line message, without the statement echoed under it.
                return exc.diag.message_primary or str(exc)
        raise AssertionError(f"{role} was allowed: {statement}")

    def run(self, role: str, statement: str) -> list[tuple[object, ...]]:
        with connect(self.login(role), application_name="test", autocommit=True) as conn:
            cur = conn.execute(statement.encode())
            return list(cur.fetchall()) if cur.description else []


def produce_refusal(kafka: KafkaSettings, topic: str) -> str:
    """Produce one record to ``topic``; the broker's refusal as the producer reports it."""
    producer = build_producer(kafka, client_id="least-privilege-test")
    try:
        producer.produce(topic, b"payload", key=b"v-1")
        producer.flush(30)
    except Exception as exc:
        return str(exc)
    finally:
        producer.discard()
    raise AssertionError(f"{kafka.sasl_username} was allowed to write {topic}")


def produce_one(kafka: KafkaSettings, topic: str) -> None:
    producer = build_producer(kafka, client_id="least-privilege-test")
    producer.produce(topic, b"payload", key=b"v-1")
    producer.flush(30)


def read_refusal(kafka: KafkaSettings, topic: str, *, timeout: float = 30) -> str:
    """Try to read ``topic``: the broker's refusal, in one line, as the reader learns it from the
    topic's metadata; fetching partition 0 anyway must return no record either."""
    reader = build_reader(kafka, client_id="least-privilege-test", read_committed=False)
    try:
        try:
            reader.partitions(topic, timeout_s=timeout)
        except KafkaError as exc:
            said = str(exc)
        else:
            raise AssertionError(f"{kafka.sasl_username} may see {topic}")
        reader.assign(topic, {0: OFFSET_BEGINNING})
        got = [m for m in reader.consume(10, 2.0) if m.error() is None]
        assert got == [], f"{kafka.sasl_username} read {len(got)} record(s) of {topic}"
    finally:
        reader.close()
    return said


@dataclass
class SaslLogin:
    """The Secrets a pipeline names to reach the SASL_SSL listener: the operator's login and
    the broker's private CA, in the test's namespace."""

    kube: Any
    namespace: str
    bootstrap: str
    LOGIN_SECRET: ClassVar[str] = "kafka-operator-login"
    CA_SECRET: ClassVar[str] = "kafka-private-ca"

    def set_login(self, user: str, password: str, *, secret: str = LOGIN_SECRET) -> None:
        """Create or replace a login Secret (through stdin: no password on a command line)."""
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret, "namespace": self.namespace},
            "stringData": {"username": user, "password": password},
        }
        self.kube.run("apply", "-f", "-", stdin=json.dumps(body))

    def kafka_spec(self, *, ca: bool = True, **extra: Any) -> dict[str, Any]:
        """``spec.kafka`` for the listener, logged in with the login Secret."""
        spec: dict[str, Any] = {
            "bootstrapServers": self.bootstrap,
            "securityProtocol": "SASL_SSL",
            "saslMechanism": MECHANISM,
            "credentialsSecret": self.LOGIN_SECRET,
        }
        if ca:
            spec["caSecret"] = self.CA_SECRET
        return {**spec, **extra}
