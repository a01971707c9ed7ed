"""Handles on the session's servers, as the fixtures in ``tests/conftest.py`` hand them out.

They live here rather than in the conftest so that a test can name a fixture's type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr

from fleetpipe.core.db import PostgresSettings
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe_dev.stack.kafka import KafkaBroker
from fleetpipe_dev.stack.kafka_security import BrokerSecurity
from fleetpipe_dev.stack.pg_roles import ServiceLogins
from fleetpipe_dev.stack.postgres import PostgresServer


@dataclass
class BrokerHandle:
    """The session's broker, which a fault test may stop and start again on the same port."""

    broker: KafkaBroker | None
    bootstrap: str
    pid: int | None = None

    @property
    def settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.bootstrap)

    @property
    def security(self) -> BrokerSecurity:
        """The SASL_SSL listener's side: logins per service (the session's broker has it)."""
        security = None if self.broker is None else self.broker.security
        assert security is not None, "the broker has no SASL_SSL listener (an external one?)"
        return security

    def stop(self, *, kill: bool = False) -> None:
        assert self.broker is not None and self.pid is not None, "external broker: cannot stop"
        self.broker.stop(self.pid, kill=kill)
        self.pid = None

    def start(self) -> None:
        assert self.broker is not None, "external broker: cannot start"
        if self.pid is None:
            self.pid = self.broker.start()


@dataclass
class PostgresHandle:
    """The session's database server, which a fault test may stop and start again."""

    server: PostgresServer | None
    dsn: str
    pid: int | None = None

    def stop(self, *, kill: bool = False) -> None:
        assert self.server is not None and self.pid is not None, "external database: cannot stop"
        self.server.stop(self.pid, kill=kill)
        self.pid = None

    def start(self) -> None:
        assert self.server is not None, "external database: cannot start"
        if self.pid is None:
            self.pid = self.server.start()

    @property
    def logins(self) -> ServiceLogins:
        """The services' roles and passwords (the session's own server makes them)."""
        assert self.server is not None, "external database: no service roles of the tests'"
        return self.server.logins


@dataclass(frozen=True)
class Schema:
    """One test's own schema in the session's database."""

    dsn: str
    name: str

    @property
    def settings(self) -> PostgresSettings:
        return PostgresSettings(dsn=SecretStr(self.dsn), schema_name=self.name)


class MakeTopics(Protocol):
    """The ``make_topics`` fixture: a fresh set of every pipeline topic, named for one test."""

    def __call__(self, partitions: int = 3) -> Topics: ...
