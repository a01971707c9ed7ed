"""The five services as child processes on one machine, the way the demo runs them.

Each service is started as Kubernetes would start it — ``python -m fleetpipe.<service>`` with
``FLEET_*`` variables — with its log in ``<workdir>/logs``. Ingest authenticates with a tokens
file, ingest, enrichment and notification read the vehicle registry file, the storage writer writes
PostgreSQL and a Parquet folder, and notification sends through Twilio (its cloud, when real
credentials are in the environment, else the local Twilio-contract server).
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import ServiceProcess, service_env, wait_for

SERVICES = ("ingest", "enrichment", "detection", "storage-writer", "notification")
# Twilio's magic sender number for test credentials; the contract server honours it too.
DEFAULT_SMS_FROM = "+15005550006"


@dataclass(frozen=True)
class PipelineConfig:
    kafka: KafkaSettings
    topics: Topics
    postgres_dsn: str
    schema: str
    workdir: Path
    registry: Path
    tokens: Mapping[str, str]  # token → fleet id
    twilio_env: Mapping[str, str]  # FLEET_TWILIO__* for notification
    group_suffix: str = ""  # side-by-side pipelines on one broker need groups of their own
    ingest_port: int = 0  # 0: a free one
    # An OTLP/gRPC collector (the dev stack's Jaeger): every service exports its traces there.
    otlp_endpoint: str = ""
    # FLEET_* settings for every service, over the defaults here (for example a longer
    # FLEET_KAFKA__POLL_TIMEOUT_S: fewer, larger batches and transactions).
    overrides: Mapping[str, str] = field(default_factory=dict)
    # Detection's rules file and enrichment's speed-limit table; the defaults without.
    rules: Path | None = None
    speed_limits: Path | None = None
    # Devices over MQTT: FLEET_MQTT__* for an MQTT bridge process (none when empty).
    mqtt_env: Mapping[str, str] = field(default_factory=dict)
    # Devices over HTTP: ingest's HTTP/JSON listener on this port (0: a free one; None: off).
    http_port: int | None = None
    # Per process, FLEET_* settings over all the others: each service's own logins on Kafka
    # and PostgreSQL (fleetpipe_dev.stack.logins).
    logins: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    # The windowed fleet KPIs stage (fleetpipe.kpis) beside the five services, and its
    # settings (FLEET_WINDOW_S, FLEET_HOP_S, ...) over its defaults.
    kpis: bool = False
    kpi_env: Mapping[str, str] = field(default_factory=dict)
    # Notification's recipients beyond the drivers (FLEET_RECIPIENTS) and the webhooks'
    # signing keys (FLEET_WEBHOOK_SECRETS__*), over its defaults.
    notification_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def services(self) -> tuple[str, ...]:
        extra = ("mqtt-bridge",) if self.mqtt_env else ()
        return (*SERVICES, *extra, *(("kpis",) if self.kpis else ()))

    def group(self, service: str) -> str:
        base = f"fleetpipe-{service}"
        return f"{base}-{self.group_suffix}" if self.group_suffix else base

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    @property
    def lake(self) -> Path:
        return self.workdir / "lake"


@dataclass
class LocalPipeline:
    config: PipelineConfig
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    ingest_address: str = ""
    http_address: str = ""

    def start(self, *, timeout: float = 180.0) -> None:
        """Start every service and wait until each reports ready (partitions assigned)."""
        c = self.config
        c.logs.mkdir(parents=True, exist_ok=True)
        tokens_file = c.workdir / "tokens.json"
        tokens_file.write_text(json.dumps(dict(c.tokens)))
        tokens_file.chmod(0o600)
        port = c.ingest_port or free_port()
        self.ingest_address = f"127.0.0.1:{port}"
        instance = f"local-{c.group_suffix}" if c.group_suffix else "local"
        common = {"FLEET_KAFKA__POLL_TIMEOUT_S": "0.02"}
        if c.otlp_endpoint:
            common["OTEL_EXPORTER_OTLP_ENDPOINT"] = c.otlp_endpoint
        common.update(c.overrides)
        db = {"FLEET_POSTGRES__DSN": c.postgres_dsn, "FLEET_POSTGRES__SCHEMA_NAME": c.schema}
        env: dict[str, dict[str, str]] = {
            "ingest": {
                "FLEET_GRPC_HOST": "127.0.0.1",
                "FLEET_GRPC_PORT": str(port),
                "FLEET_AUTH__TOKENS_FILE": str(tokens_file),
                "FLEET_REGISTRY_PATH": str(c.registry),
            },
            "enrichment": {"FLEET_REGISTRY_PATH": str(c.registry)},
            "detection": {},
            "storage-writer": {
                **db,
                "FLEET_LAKE__PATH": str(c.lake),
                "FLEET_REGISTRY_PATH": str(c.registry),
            },
            "kpis": dict(c.kpi_env),
            "notification": {
                **db,
                "FLEET_REGISTRY_PATH": str(c.registry),
                **c.twilio_env,
                **c.notification_env,
            },
            "mqtt-bridge": {
                **c.mqtt_env,
                "FLEET_MQTT__CLIENT_ID": f"fleetpipe-bridge-{instance}",
                "FLEET_REGISTRY_PATH": str(c.registry),
            },
        }
        if c.rules is not None:
            env["detection"]["FLEET_RULES_PATH"] = str(c.rules)
        if c.speed_limits is not None:
            env["enrichment"]["FLEET_SPEED_LIMITS_PATH"] = str(c.speed_limits)
        if c.http_port is not None:
            http_port = c.http_port or free_port()
            self.http_address = f"127.0.0.1:{http_port}"
            env["ingest"].update(
                {"FLEET_HTTP__HOST": "127.0.0.1", "FLEET_HTTP__PORT": str(http_port)}
            )
        modules = {"mqtt-bridge": "fleetpipe.ingest.mqtt"}
        for service in c.services:
            extra = {
                **common,
                **env[service],
                "FLEET_INSTANCE_ID": f"{instance}-{service}",
                "OTEL_SERVICE_NAME": f"fleetpipe-{service}",
                **c.logins.get(service, {}),
            }
            if service not in ("ingest", "mqtt-bridge"):
                extra["FLEET_GROUP_ID"] = c.group(service)
            module = modules.get(service, "fleetpipe." + service.replace("-", "_"))
            proc = ServiceProcess(
                module, service_env(c.kafka, c.topics, extra), c.logs / f"{service}.log"
            )
            self.processes[service] = proc.start()

        def ready() -> bool:
            for p in self.processes.values():
                p.check_alive()
            return all(p.ready() for p in self.processes.values())

        wait_for(ready, timeout=timeout, interval=0.5, what="every service to be ready")

    def check_alive(self) -> None:
        for p in self.processes.values():
            p.check_alive()

    def metrics_targets(self) -> dict[str, str]:
        """Each running service's health port (``/metrics``, ``/readyz``), by service name."""
        found = {}
        for name, proc in self.processes.items():
            port = proc.http_port()
            if port is not None:
                found[name] = f"http://127.0.0.1:{port}"
        return found

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes.items() if p.proc is not None}

    def stop(self) -> dict[str, int]:
        """SIGTERM each service (the ways in first, so nothing new arrives) and wait; exit
        codes."""
        codes = {}
        entries = ("mqtt-bridge", "ingest")
        for name in entries:
            entry = self.processes.get(name)
            if entry is not None and entry.proc is not None:
                codes[name] = entry.stop(timeout=30)
        rest = {n: p.proc for n, p in self.processes.items() if n not in entries and p.proc}
        # All drain at once. One SIGTERM each: a second one could land after the service has
        # put its handlers away and cut its shutdown short.
        for proc in rest.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in rest.items():
            try:
                codes[name] = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait(10)
        return codes
