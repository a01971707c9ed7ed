"""``fleetpipe dev up | down | status``: the local stack, and what it started.

The stack records every process it starts (pid and a marker from its command line) in
``state.json`` under its home; ``down`` stops exactly those and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleetpipe.core.db import PostgresSettings
from fleetpipe.core.kafka import build_admin
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.core.topics import topic_specs
from fleetpipe_dev.stack.jaeger import BUILD_HINT, JaegerServer, jaeger_binary
from fleetpipe_dev.stack.kafka import KafkaBroker, default_cache, kafka_libs
from fleetpipe_dev.stack.logins import prepare_schema, service_logins
from fleetpipe_dev.stack.mosquitto import MosquittoServer, mosquitto_binary
from fleetpipe_dev.stack.postgres import PostgresServer
from fleetpipe_dev.stack.procs import StartError, is_ours, stop_pid

# Each server's graceful stop (PostgreSQL's fast shutdown is SIGINT); the others SIGTERM.
_STOP_SIGNAL = {"postgres": PostgresServer.stop_signal, "kafka": KafkaBroker.stop_signal}


def _default_pg_home(home: Path) -> Path:
    # As root the server runs as 'postgres', which cannot enter a 0700 home folder.
    if os.geteuid() == 0:
        tag = hashlib.sha256(str(home).encode()).hexdigest()[:10]
        return Path(tempfile.gettempdir()) / f"fleetpipe-{tag}" / "postgres"
    return home / "postgres"


class DevStackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEET_DEV_", frozen=True, extra="ignore")

    home: Path = Field(default_factory=lambda: default_cache() / "dev")
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    # The broker's SASL_SSL listener: a login per service (kafka_security.py).
    kafka_sasl_port: int = 19094
    postgres_port: int = 15432
    postgres_home: Path | None = None
    kafka_heap: str = "1g"
    # Jaeger v2, started when its binary is in the cache (scripts/build-go-tools.sh jaeger).
    jaeger: bool = True
    jaeger_otlp_grpc_port: int = 14317
    jaeger_otlp_http_port: int = 14318
    jaeger_query_port: int = 16686
    jaeger_query_grpc_port: int = 16685
    jaeger_health_port: int = 13133
    # Mosquitto (Debian's package), for devices over MQTT (`fleetpipe demo --protocol mqtt`).
    mosquitto: bool = True
    mosquitto_port: int = 11883


@dataclass
class StackState:
    path: Path
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> StackState:
        if path.exists():
            return cls(path, json.loads(path.read_text()).get("processes", {}))
        return cls(path)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"processes": self.processes}, indent=2))
        tmp.replace(self.path)

    def running(self, name: str) -> bool:
        p = self.processes.get(name)
        return p is not None and is_ours(int(p["pid"]), str(p["marker"]))


class DevStack:
    def __init__(self, settings: DevStackSettings) -> None:
        self.settings = settings
        home = settings.home
        self.state = StackState.load(home / "state.json")
        self._broker: KafkaBroker | None = None
        self.postgres = PostgresServer(
            settings.postgres_home or _default_pg_home(home), settings.postgres_port
        )
        self.jaeger = JaegerServer(
            home / "jaeger",
            otlp_grpc_port=settings.jaeger_otlp_grpc_port,
            otlp_http_port=settings.jaeger_otlp_http_port,
            query_port=settings.jaeger_query_port,
            query_grpc_port=settings.jaeger_query_grpc_port,
            health_port=settings.jaeger_health_port,
        )

    @property
    def mosquitto(self) -> MosquittoServer:
        """The MQTT broker; its bridge password is made once and kept (0600) in its folder."""
        home = self.settings.home / "mosquitto"
        secret = home / "bridge.secret"
        if not secret.exists():
            home.mkdir(parents=True, exist_ok=True)
            secret.touch(mode=0o600)
            secret.write_text(secrets.token_urlsafe(24))
        return MosquittoServer(home, self.settings.mosquitto_port, secret.read_text().strip())

    def mosquitto_pid(self) -> int | None:
        """The running broker's pid (to make it re-read its accounts), None when it is down."""
        if not self.state.running("mosquitto"):
            return None
        return int(self.state.processes["mosquitto"]["pid"])

    def up_mosquitto(self, say: Any = print) -> None:
        if not self.settings.mosquitto:
            return
        if not self.state.running("mosquitto"):
            try:
                mosquitto_binary()
            except StartError as exc:
                say(f"mosquitto  not installed, skipped (MQTT devices need it): {exc}")
                return
        broker = self.mosquitto
        self._up_one(
            "mosquitto",
            broker,
            address=f"mqtt://{broker.address}",
            running=f" on {broker.address}",
            starting=f" on {broker.address} (MQTT 5, per-device accounts)",
            say=say,
        )

    @property
    def broker(self) -> KafkaBroker:
        # Resolving the jars may download them, so it happens on first use, not in __init__.
        if self._broker is None:
            self._broker = KafkaBroker(
                home=self.settings.home / "kafka",
                port=self.settings.kafka_port,
                controller_port=self.settings.kafka_controller_port,
                libs=kafka_libs(),
                heap=self.settings.kafka_heap,
                sasl_port=self.settings.kafka_sasl_port,
            )
        return self._broker

    def service_logins(self, schema: str) -> dict[str, dict[str, str]]:
        """Each local process's own logins on the stack's Kafka and PostgreSQL, once ``schema``
        is migrated by its owner and the service roles are granted their share."""
        security = self.broker.security
        assert security is not None  # the stack's broker always has its SASL_SSL listener
        logins = self.postgres.logins
        owner = PostgresSettings(dsn=SecretStr(self.postgres.dsn), schema_name=schema)
        prepare_schema(owner, logins.roles)
        return service_logins(security, logins)

    @property
    def kafka_settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=f"127.0.0.1:{self.settings.kafka_port}")

    @property
    def postgres_dsn(self) -> str:
        return self.postgres.dsn

    def up(self, *, topics: Topics, partitions: int, say: Any = print) -> None:
        self._up_one(
            "kafka",
            self.broker,
            address=self.broker.bootstrap,
            running=f" on {self.broker.bootstrap}",
            starting=f" on {self.broker.bootstrap}, SASL_SSL with a login per service on "
            f"127.0.0.1:{self.settings.kafka_sasl_port} (jars: {self.broker.libs})",
            say=say,
        )
        where = f" on 127.0.0.1:{self.postgres.port}"
        self._up_one(
            "postgres",
            self.postgres,
            address=self.postgres.dsn,
            running=where,
            starting=where,
            say=say,
        )
        self._up_jaeger(say)
        self.up_mosquitto(say)
        actions = build_admin(self.kafka_settings).ensure_topics(topic_specs(topics, partitions))
        for name, action in sorted(actions.items()):
            say(f"topic      {name}: {action}")

    def _up_one(
        self,
        name: str,
        server: KafkaBroker | PostgresServer | JaegerServer | MosquittoServer,
        *,
        address: str,
        running: str,
        starting: str,
        say: Any,
        **extra: str,
    ) -> None:
        """Start one server unless the state says it runs, and record what ``down`` stops.

        ``running`` and ``starting`` follow the verb in the line said (" on ...", ", UI ...").
        """
        if self.state.running(name):
            say(f"{name:<10} already running{running}")
            return
        say(f"{name:<10} starting{starting}")
        pid = server.start()
        self.state.processes[name] = {
            "pid": pid,
            "marker": server.marker,
            "address": address,
            **extra,
        }
        self.state.save()

    def _up_jaeger(self, say: Any) -> None:
        if not self.settings.jaeger:
            return
        jaeger = self.jaeger
        if not self.state.running("jaeger"):
            try:
                jaeger.binary = jaeger_binary()
            except StartError:
                say(f"jaeger     not built, skipped (tracing needs it: `{BUILD_HINT}`)")
                return
        self._up_one(
            "jaeger",
            jaeger,
            address=jaeger.query_url,
            # Built from its Go module, Jaeger has its query API but no UI: the console shows
            # the traces.
            running=f", query API on {jaeger.query_url}",
            starting=f", OTLP on {jaeger.otlp_endpoint}, query API on {jaeger.query_url}",
            say=say,
            otlp=jaeger.otlp_endpoint,
        )

    @property
    def otlp_endpoint(self) -> str | None:
        """Where services send spans, when the stack runs Jaeger."""
        return self.jaeger.otlp_endpoint if self.state.running("jaeger") else None

    def down(self, *, purge: bool = False, say: Any = print) -> None:
        for name in list(self.state.processes):
            proc = self.state.processes[name]
            stopped = stop_pid(
                int(proc["pid"]), str(proc["marker"]), sig=_STOP_SIGNAL.get(name, signal.SIGTERM)
            )
            say(f"{name:<10} {'stopped' if stopped else 'was not running'}")
            del self.state.processes[name]
            self.state.save()
        if purge:
            shutil.rmtree(self.settings.home / "kafka", ignore_errors=True)
            shutil.rmtree(self.postgres.home, ignore_errors=True)
            shutil.rmtree(self.jaeger.home, ignore_errors=True)
            shutil.rmtree(self.settings.home / "mosquitto", ignore_errors=True)
            say("data       removed")

    def status(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, proc in self.state.processes.items():
            out[name] = {**proc, "running": self.state.running(name)}
        return out
