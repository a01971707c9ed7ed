"""Configuration: frozen pydantic-settings classes, built once in ``main()`` and passed down.

Environment variables use the ``FLEET_`` prefix and ``__`` for nesting, for example
``FLEET_KAFKA__BOOTSTRAP_SERVERS`` or ``FLEET_TOPICS__RAW``. Secrets are ``SecretStr`` and never
appear in logs or reprs.
"""

from __future__ import annotations

import os
import socket
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleetpipe.core.topics import (
    ALERTS,
    DEADLETTER,
    DETECTION_STATE,
    ENRICHED,
    KPI_STATE,
    KPIS,
    NOTIFICATIONS,
    RAW,
    SCORES,
    TRIPS,
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Frozen):
    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    # The CA certificates themselves, PEM, for a client that holds them rather than a file
    # (the operator reads them from the pipeline's caSecret). Used instead of ssl_ca_location.
    ssl_ca_pem: str | None = None
    # How long the producer waits to fill a request. A busy stage sends one produce request
    # per linger per broker, whatever the rate, and each costs the broker and the stage the
    # same; at 20 ms (5 until now) a 28,000 events/s pipeline kept its alert p99 near 500 ms
    # where 5 ms gave 0.8-1.6 s (benchmarks/reports/pipeline-gc-linger.md). A transactional
    # stage's commit flushes what waits, so the wait adds to ingest's acknowledgement only.
    linger_ms: int = Field(default=20, ge=0, le=10_000)
    batch_size: int = 1_000_000
    compression_type: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    # Upper bound of one consume() call; the handler receives at most this many records at once.
    max_batch: int = Field(default=2000, ge=1, le=100_000)
    # How long one consume() waits for the first record; bounds added latency at low rates.
    poll_timeout_s: float = Field(default=0.05, gt=0, le=10)
    # How long the consume loop keeps a commit window (one transaction, exactly once) open
    # while records keep coming: a commit per interval, not per poll, and state written once
    # per commit. A poll that finds nothing commits at once, so a quiet input waits for no
    # interval. 0: a commit after every poll. Well under transaction_timeout_ms.
    commit_interval_ms: int = Field(default=100, ge=0, le=10_000)
    # A fetch waits on the broker until this many bytes are there or fetch_wait_max_ms has
    # passed. With 1 byte a consumer of a busy topic sends fetch after fetch, each carrying a
    # few records, and the broker's cost is per request, not per record. 256 KiB and 25 ms: a
    # busy topic is fetched at most ~40 times a second per consumer, whatever its rate, and a
    # quiet one waits at most 25 ms more a hop (benchmarks/reports/pipeline-fetch.md: at
    # 30,000 events/s the broker's CPU from 0.61 to 0.46 of a core and the stages' lag a
    # fifth of what it was; at 10,000 the same CPU, alert p99 within the runs' noise).
    fetch_min_bytes: int = Field(default=256 * 1024, ge=1, le=64 * 1024 * 1024)
    fetch_wait_max_ms: int = Field(default=25, ge=0, le=10_000)
    transaction_timeout_ms: int = 30_000
    # Back-to-back transactions: the coordinator answers CONCURRENT_TRANSACTIONS while the
    # previous one's markers are still being written, and the client retries after this long.
    # librdkafka's general 100 ms held one transaction in ten for 100 ms more on the dev
    # broker; the Java client uses 20 ms for this case.
    transaction_retry_backoff_ms: int = Field(default=10, ge=1, le=1000)
    session_timeout_ms: int = 10_000
    # How long the loop lets one blocking client call (a transaction step, a flush, an offset
    # lookup) take before it looks again: retries it, or gives up on the client. Short, so a
    # broker restart is noticed and ridden through while the liveness probe still sees
    # heartbeats; a retriable transaction step is retried for up to transaction_timeout_ms.
    call_timeout_ms: int = Field(default=5_000, ge=100, le=300_000)
    # The longest pause between a client's attempts to reach a broker it lost. librdkafka's
    # default doubles the pause up to 10 s, so a client that kept trying through a broker
    # restart may wait that long more once the broker serves again — per connection, and a
    # transactional stage needs several (coordinator, leaders) before it moves. The Java
    # client's default is 1 s.
    reconnect_backoff_max_ms: int = Field(default=1_000, ge=100, le=60_000)
    # How soon clients notice a topic's new partitions (librdkafka's default is 5 minutes). Keys
    # move when partitions grow; the sooner producers and consumers agree, the shorter the
    # window in which a key's records sit on its old partition.
    metadata_max_age_ms: int = Field(default=30_000, ge=1000)
    # Key groups of the pipeline (fleetpipe.core.keygroups): vehicle -> group -> partition.
    # Fixed for the life of the pipeline's topics; at least their partition count.
    key_groups: int = Field(default=4096, ge=1, le=1 << 20)
    # Packs on the high-volume topics (fleetpipe.core.packs): a producer closes a pack at this
    # many events, before this many bytes, or this long after its first event. The broker's
    # and every client's cost follow records and requests, not bytes (DESIGN §3a): a few
    # hundred events a record take most of it away, and more buys little. 256 KiB stays well
    # under the broker's 1 MB record limit with the largest events; 5 ms is the producer's own
    # linger, so a small fleet's events wait at most that long more. 1 event: no packs, one
    # record per event keyed by vehicle id (the per-event baseline); consumers read both.
    pack_events: int = Field(default=500, ge=1, le=100_000)
    pack_bytes: int = Field(default=256 * 1024, ge=1024, le=8 * 1024 * 1024)
    pack_linger_ms: float = Field(default=5.0, ge=0, le=10_000)
    # librdkafka's own debug contexts (for example "cgrp,fetch,eos") written to the service's
    # stderr: what a rebalance or a transaction did, record by record, when diagnosing one.
    debug: str | None = Field(default=None, pattern=r"^[a-z]+(,[a-z]+)*$")

    def client_config(self) -> dict[str, str | int | float | bool]:
        """Connection settings shared by producers, consumers and the admin client."""
        conf: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "reconnect.backoff.max.ms": self.reconnect_backoff_max_ms,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_pem:
            conf["ssl.ca.pem"] = self.ssl_ca_pem
        elif self.ssl_ca_location:
            conf["ssl.ca.location"] = self.ssl_ca_location
        if self.debug:
            conf["debug"] = self.debug
        return conf


class Topics(_Frozen):
    """Topic names (defaults: core.topics). Tests and side-by-side installs give each its own."""

    raw: str = RAW.name
    enriched: str = ENRICHED.name
    alerts: str = ALERTS.name
    trips: str = TRIPS.name
    scores: str = SCORES.name
    notifications: str = NOTIFICATIONS.name
    deadletter: str = DEADLETTER.name
    detection_state: str = DETECTION_STATE.name
    kpis: str = KPIS.name
    kpi_state: str = KPI_STATE.name

    @classmethod
    def with_suffix(cls, suffix: str) -> Topics:
        base = cls()
        return cls(**{name: f"{value}.{suffix}" for name, value in base.model_dump().items()})


class DeliveryMode(StrEnum):
    AT_LEAST_ONCE = "at-least-once"
    EXACTLY_ONCE = "exactly-once"


class ObservabilitySettings(_Frozen):
    # 0 picks a free port (tests); services in a pod use the fixed default.
    http_host: str = "0.0.0.0"  # noqa: S104 - probes and Prometheus reach the pod from outside
    http_port: int = Field(default=8080, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    # A loop that has not completed an iteration for this long reports itself not alive.
    liveness_timeout_s: float = 60.0


class RuntimeSettings(_Frozen):
    """How the Python process itself runs."""

    # Python's cyclic garbage collector runs its youngest generation after this many more
    # allocations than frees (Python's own default is 700). A stage allocates a few objects per
    # event and keeps few of them, so at 700 it collects many times a batch, and each batch's
    # survivors are promoted and scanned again with the whole heap (core.runtime; measured in
    # benchmarks/reports/pipeline-gc-linger.md). 0 keeps Python's defaults and does not freeze the
    # start-up heap.
    gc_threshold: int = Field(default=50_000, ge=0, le=10_000_000)


def default_instance_id() -> str:
    # The pod name in Kubernetes; stable across restarts of the same process on a host, which
    # matters for transactional ids: a restart with the same id fences and aborts its predecessor.
    return os.environ.get("HOSTNAME") or socket.gethostname()


class ServiceSettings(BaseSettings):
    """Settings every service shares. Each service subclasses this with its own fields."""

    model_config = SettingsConfigDict(
        env_prefix="FLEET_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: Topics = Topics()
    observability: ObservabilitySettings = ObservabilitySettings()
    runtime: RuntimeSettings = RuntimeSettings()
    instance_id: str = Field(default_factory=default_instance_id)
