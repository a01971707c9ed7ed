from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from fleetpipe.core.settings import ServiceSettings, _Frozen
from fleetpipe.ingest.tenancy import UnknownVehicles


class AuthSettings(_Frozen):
    """Where bearer tokens come from; both sources may be used together.

    ``tokens_file`` is a YAML or JSON map ``{token: fleet_id}`` (optionally under a ``tokens``
    key): in Kubernetes, a Secret with one key ``tokens.yaml`` mounted as a file. It is re-read
    when it changes, so tokens rotate without a restart. ``tokens`` is the same map as JSON in
    an environment variable (``FLEET_AUTH__TOKENS``), for development and tests.
    """

    tokens_file: Path | None = None
    tokens: SecretStr | None = None
    reload_interval_s: float = Field(default=5.0, gt=0)


class TlsSettings(_Frozen):
    """Server TLS: off unless both files are set; a client CA makes clients prove themselves."""

    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls: set both cert_file and key_file, or neither")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError("tls: client_ca_file needs cert_file and key_file")
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


class IntakeSettings(ServiceSettings):
    """What every way into ingest shares: limits, Kafka's confirmation, the event-time window."""

    max_batch_events: int = Field(default=10_000, ge=1)
    # Events produced but not yet confirmed by Kafka, over all calls; beyond it new batches are
    # refused (RESOURCE_EXHAUSTED, HTTP 429). It bounds memory when Kafka slows down or stops.
    max_inflight_events: int = Field(default=200_000, ge=1)
    # A batch Kafka has not confirmed within this long is answered with UNAVAILABLE.
    ack_timeout_s: float = Field(default=10.0, gt=0)
    # How long librdkafka keeps trying to deliver a record before failing it.
    delivery_timeout_ms: int = Field(default=30_000, ge=1000)
    # The event-time window, relative to ingest's clock: an event further ahead (max lead) or
    # older (max lateness) is refused with a reason, as a clock that wrong says nothing about
    # when the reading was taken; between late_after_s and max_lateness_s it is flagged late.
    max_future_s: float = Field(default=300.0, ge=0)
    max_lateness_s: float = Field(default=7 * 86_400.0, gt=0)
    late_after_s: float = Field(default=300.0, ge=0)
    grace_s: float = Field(default=10.0, ge=0)  # on SIGTERM, time for calls in progress
    # How often the raw and dead-letter topics are looked for (not ready while one is missing).
    topic_check_interval_s: float = Field(default=10.0, gt=0)
    # The vehicle registry (the file enrichment reads): an event for a vehicle registered to
    # another fleet than the token's is refused; what happens to unregistered vehicles is
    # ``unknown_vehicles`` (see tenancy.py).
    registry_path: Path | None = None
    registry_check_interval_s: float = Field(default=5.0, gt=0)
    unknown_vehicles: UnknownVehicles = UnknownVehicles.ACCEPT

    @model_validator(mode="after")
    def _late_within_lateness(self) -> IntakeSettings:
        if self.late_after_s > self.max_lateness_s:
            raise ValueError("late_after_s must not exceed max_lateness_s")
        return self


class HttpSettings(_Frozen):
    """HTTP/JSON ingest (``POST /v1/fleets/{fleet}/telemetry``), served by the ingest process
    beside gRPC; off unless a port is set."""

    port: int | None = Field(default=None, ge=0, le=65535)
    host: str = "0.0.0.0"  # noqa: S104 - devices reach the pod from outside
    # A body larger than this is refused with 413 before it is parsed.
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # What a 429 asks the client to wait, in seconds (the Retry-After header).
    retry_after_s: int = Field(default=1, ge=1)


class IngestSettings(IntakeSettings):
    grpc_host: str = "0.0.0.0"  # noqa: S104 - devices reach the pod from outside
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    auth: AuthSettings = AuthSettings()
    tls: TlsSettings = TlsSettings()
    http: HttpSettings = HttpSettings()
    # A gRPC message larger than this is refused by the transport (RESOURCE_EXHAUSTED).
    max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # Batches of one stream being produced or awaiting Kafka before the server stops reading.
    stream_window: int = Field(default=16, ge=1)
