"""The FleetPipeline spec as typed, frozen values: what the operator reads from a resource.

The CRD's OpenAPI schema (``helm/fleetpipe/crds/fleetpipelines.yaml``, copied to k8s/crds/) is
what the API server enforces and the one place users read; this model mirrors it field for field
(camelCase aliases), with the same defaults and bounds, so that a spec the API server accepted
always parses here and defaults are filled in even for objects stored before a default existed.
A unit test walks both and fails when they drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from fleetpipe.core.errors import ConfigError
from fleetpipe.core.keygroups import DEFAULT_KEY_GROUPS
from fleetpipe.notification.recipients import Recipients

GROUP = "fleetpipe.io"
VERSION = "v1alpha1"
PLURAL = "fleetpipelines"
KIND = "FleetPipeline"
API_VERSION = f"{GROUP}/{VERSION}"
# Upper bound of partitions per topic the schema allows (also a CEL rule in the CRD): the
# pipeline's key groups, as a partition without one would never receive a record
# (fleetpipe.core.keygroups).
MAX_PARTITIONS = DEFAULT_KEY_GROUPS


class Component(StrEnum):
    """The pipeline's services; the value is the Deployment's suffix and the console script's."""

    INGEST = "ingest"
    ENRICHMENT = "enrichment"
    DETECTION = "detection"
    NOTIFICATION = "notification"
    STORAGE_WRITER = "storage-writer"
    # Windowed fleet KPIs (spec.kpis); the one stage a pipeline may go without.
    KPIS = "kpis"

    @property
    def field(self) -> str:
        """The attribute of ``Services``."""
        return self.value.replace("-", "_")

    @property
    def key(self) -> str:
        """The field name under ``spec.services`` and ``status.replicas``."""
        return to_camel(self.field)


class AutoscalingMode(StrEnum):
    OFF = "Off"
    RECOMMEND = "Recommend"
    AUTO = "Auto"


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class KafkaAccess(StrEnum):
    """Who grants the services' Kafka rights: the cluster's administrator (Unmanaged), or the
    operator from the pipeline's spec and login Secrets (Managed, see fleet_operator.access)."""

    UNMANAGED = "Unmanaged"
    MANAGED = "Managed"


class _Spec(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class FleetSize(_Spec):
    vehicles: int = Field(ge=1, le=10_000_000)
    events_per_vehicle_per_second: float = Field(default=1.0, gt=0, le=100)
    vehicles_per_partition: int = Field(default=1000, ge=1, le=1_000_000)

    @property
    def events_per_second(self) -> float:
        return self.vehicles * self.events_per_vehicle_per_second

    @model_validator(mode="after")
    def _bounded_partitions(self) -> FleetSize:
        if math.ceil(self.vehicles / self.vehicles_per_partition) > MAX_PARTITIONS:
            raise ValueError(
                f"fleet.vehicles / fleet.vehiclesPerPartition gives more than {MAX_PARTITIONS} "
                "partitions per topic: raise vehiclesPerPartition"
            )
        return self


# ---- least privilege: a login per service, named by Secret (see fleet_operator.credentials) --
class ServiceKafkaSecrets(_Spec):
    """A Secret per service's Kafka principal (keys ``username`` and ``password``); a service
    not named here logs in with ``kafka.credentialsSecret``. The MQTT bridge is a way into
    ingest and uses ingest's."""

    ingest: str | None = Field(default=None, min_length=1, max_length=253)
    enrichment: str | None = Field(default=None, min_length=1, max_length=253)
    detection: str | None = Field(default=None, min_length=1, max_length=253)
    notification: str | None = Field(default=None, min_length=1, max_length=253)
    storage_writer: str | None = Field(default=None, min_length=1, max_length=253)
    console: str | None = Field(default=None, min_length=1, max_length=253)
    kpis: str | None = Field(default=None, min_length=1, max_length=253)


class ServiceDatabaseSecrets(_Spec):
    """A Secret per service's PostgreSQL role (key ``dsn``); a service not named here uses
    ``storage.databaseSecret``."""

    storage_writer: str | None = Field(default=None, min_length=1, max_length=253)
    notification: str | None = Field(default=None, min_length=1, max_length=253)


class KafkaSpec(_Spec):
    bootstrap_servers: str = Field(min_length=1, pattern=r"^[^,\s]+:[0-9]+(,[^,\s]+:[0-9]+)*$")
    replication_factor: int = Field(default=3, ge=1, le=7)
    retention_hours: int = Field(default=72, ge=1, le=8760)
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    # A Secret with the keys ``username`` and ``password``; never a value in the spec.
    credentials_secret: str | None = Field(default=None, min_length=1, max_length=253)
    topic_suffix: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$")
    # A login per service instead of (or over) credentialsSecret.
    service_credentials: ServiceKafkaSecrets | None = None
    # A Secret with the key ``ca.crt``: the CA that signed the brokers' certificates (TLS),
    # mounted by the services and read by the operator for its own admin login.
    ca_secret: str | None = Field(default=None, min_length=1, max_length=253)
    access: KafkaAccess = KafkaAccess.UNMANAGED

    @model_validator(mode="after")
    def _managed_access_needs_scram_logins(self) -> KafkaSpec:
        if self.access is not KafkaAccess.MANAGED:
            return self
        # The operator writes SCRAM credentials and ACLs per service principal: each service
        # must log in as its own SCRAM user, never as the operator's shared login.
        if not (self.sasl_mechanism or "").startswith("SCRAM"):
            raise ValueError("kafka.access Managed needs kafka.saslMechanism SCRAM-SHA-*")
        logins = self.service_credentials
        named = logins.model_dump(by_alias=True) if logins is not None else {}
        missing = [
            name
            for name in ("ingest", "enrichment", "detection", "notification", "storageWriter")
            if not named.get(name)
        ]
        if missing:
            raise ValueError(
                "kafka.access Managed needs a Secret per service in kafka.serviceCredentials; "
                f"missing: {', '.join(missing)}"
            )
        return self

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> KafkaSpec:
        if self.security_protocol.startswith("SASL") and not (
            self.sasl_mechanism and (self.credentials_secret or self.service_credentials)
        ):
            raise ValueError(
                "kafka.securityProtocol SASL_* needs kafka.saslMechanism and "
                "kafka.credentialsSecret (or kafka.serviceCredentials)"
            )
        logins = self.service_credentials
        if self.security_protocol.startswith("SASL") and not self.credentials_secret and logins:
            # Without a shared login, every service of the data path needs its own.
            missing = [
                name
                for name, secret in logins.model_dump(by_alias=True).items()
                # The KPI stage may be disabled: FleetPipelineSpec checks its login.
                if secret is None and name not in ("console", "kpis")
            ]
            if missing:
                raise ValueError(
                    "kafka.serviceCredentials without kafka.credentialsSecret must name a "
                    f"Secret for every service; missing: {', '.join(missing)}"
                )
        return self


class ServiceScaling(_Spec):
    """How many telemetry events per second one replica keeps up with, and its replica bounds.

    Capacities are all expressed in the pipeline's input rate (telemetry events/s), so the
    notification figure already accounts for the small share of events that become alerts.
    """

    capacity_per_replica: int = Field(ge=1, le=10_000_000)
    min_replicas: int = Field(ge=1, le=1000)
    max_replicas: int = Field(ge=1, le=1000)
    # A Kubernetes ResourceRequirements object, passed to the container as is.
    resources: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _min_below_max(self) -> ServiceScaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) must not exceed maxReplicas "
                f"({self.max_replicas})"
            )
        return self


# Defaults sized from DESIGN §7's CPU budgets with headroom for a 1-CPU replica.
DEFAULT_SCALING: dict[Component, ServiceScaling] = {
    Component.INGEST: ServiceScaling(capacity_per_replica=20000, min_replicas=2, max_replicas=50),
    Component.ENRICHMENT: ServiceScaling(
        capacity_per_replica=20000, min_replicas=1, max_replicas=100
    ),
    Component.DETECTION: ServiceScaling(
        capacity_per_replica=15000, min_replicas=1, max_replicas=100
    ),
    Component.NOTIFICATION: ServiceScaling(
        capacity_per_replica=100000, min_replicas=1, max_replicas=10
    ),
    Component.STORAGE_WRITER: ServiceScaling(
        capacity_per_replica=10000, min_replicas=1, max_replicas=100
    ),
    Component.KPIS: ServiceScaling(capacity_per_replica=20000, min_replicas=1, max_replicas=100),
}


class Services(_Spec):
    ingest: ServiceScaling = DEFAULT_SCALING[Component.INGEST]
    enrichment: ServiceScaling = DEFAULT_SCALING[Component.ENRICHMENT]
    detection: ServiceScaling = DEFAULT_SCALING[Component.DETECTION]
    notification: ServiceScaling = DEFAULT_SCALING[Component.NOTIFICATION]
    storage_writer: ServiceScaling = DEFAULT_SCALING[Component.STORAGE_WRITER]
    kpis: ServiceScaling = DEFAULT_SCALING[Component.KPIS]

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        # A partial service entry ({"maxReplicas": 20}) keeps that service's other defaults,
        # exactly as the API server's structural defaulting does.
        if not isinstance(data, Mapping):
            return data
        out = dict(data)
        for component in Component:
            for name in (component.key, component.field):
                if isinstance(out.get(name), Mapping):
                    base = DEFAULT_SCALING[component].model_dump(by_alias=True, exclude_none=True)
                    out[name] = {**base, **out[name]}
        return out

    def of(self, component: Component) -> ServiceScaling:
        value: ServiceScaling = getattr(self, component.field)
        return value


class Autoscaling(_Spec):
    mode: AutoscalingMode = AutoscalingMode.OFF
    # Records of consumer lag one replica is expected to absorb (KEDA's lagThreshold).
    lag_threshold: int = Field(default=10000, ge=1)
    # A lower replica count is applied only once every recommendation of this window agrees.
    stabilisation_seconds: int = Field(default=300, ge=0, le=3600)


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


Channel = Literal["sms", "whatsapp", "voice"]


class NotificationChannels(_Spec):
    info: tuple[Channel, ...] = ()
    warning: tuple[Channel, ...] = ("sms",)
    critical: tuple[Channel, ...] = ("sms", "voice")


class NotificationSpec(_Spec):
    # Keys: account_sid, auth_token, sms_from; optional whatsapp_from, voice_from,
    # messaging_service_sid, api_base_url.
    twilio_secret: str = Field(min_length=1, max_length=253)
    min_severity: Severity = Severity.WARNING
    channels: NotificationChannels = NotificationChannels()


class StorageSpec(_Spec):
    # Key ``dsn``: a libpq connection string (it may carry a password); the schema's owner,
    # which runs the migrations (with serviceDatabaseSecrets, in the migration Job).
    database_secret: str = Field(min_length=1, max_length=253)
    hot_retention_days: int = Field(default=3, ge=1, le=3650)
    # How long the small tables keep a row: a quiet vehicle's latest position, a dead letter, a
    # settled delivery in the ledger (a phone number).
    latest_retention_days: int = Field(default=30, ge=1, le=3650)
    dead_letters_retention_days: int = Field(default=90, ge=1, le=3650)
    ledger_retention_days: int = Field(default=90, ge=1, le=3650)
    cold_path: str = Field(default="/var/lib/fleetpipe/cold", pattern=r"^/")
    # A PersistentVolumeClaim mounted at coldPath; without one, an emptyDir (lost with the pod).
    cold_volume_claim: str | None = None
    # The lake's Parquet files in an S3-compatible bucket (s3://bucket/prefix?endpoint_override=
    # ...) instead of under coldPath, which then holds only the writer's spools and state.
    cold_url: str | None = Field(default=None, pattern=r"^s3://[^/?]+")
    # Keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: the bucket's credentials.
    cold_credentials_secret: str | None = Field(default=None, min_length=1, max_length=253)
    # A role per service instead of databaseSecret's (see fleetpipe.core.dbroles); the owner
    # (databaseSecret) then migrates and grants in a Job (render_migration.py).
    service_database_secrets: ServiceDatabaseSecrets | None = None


class RegistrySpec(_Spec):
    """The vehicle registry: a ConfigMap the user manages (it can be large)."""

    config_map_name: str = Field(min_length=1, max_length=253)
    key: str = Field(default="vehicles.csv", pattern=r"^[-._a-zA-Z0-9]+$")


class IngestSpec(_Spec):
    # Key ``tokens.yaml``: the bearer tokens of the fleets.
    tokens_secret: str | None = None
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    # Events of vehicles the registry does not know: accepted (enrichment marks them unknown)
    # or refused per event. A vehicle registered to another fleet is always refused.
    unknown_vehicles: Literal["accept", "reject"] = "accept"
    # HTTP/JSON ingest (POST /v1/fleets/{fleet}/telemetry) on this port beside gRPC; off if unset.
    http_port: int | None = Field(default=None, ge=1024, le=65535)


class MqttSpec(_Spec):
    """Devices over MQTT: the broker they publish to, and the bridge that takes their messages
    to Kafka (a StatefulSet: each replica keeps its broker session across restarts)."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=1883, ge=1, le=65535)
    # Secret with the key ``password``: the bridge's account on the broker.
    credentials_secret: str = Field(min_length=1, max_length=253)
    username: str = Field(default="fleetpipe-bridge", min_length=1)
    share_group: str = Field(default="fleetpipe-bridge", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    replicas: int = Field(default=2, ge=1, le=64)
    receive_maximum: int = Field(default=2000, ge=1, le=65535)
    resources: dict[str, Any] | None = None


class TracingSpec(_Spec):
    """OpenTelemetry export for every service; without an endpoint, tracing is off."""

    # An OTLP/gRPC collector, for example ``http://jaeger-collector:4317``.
    otlp_endpoint: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    # The share of events ingest starts a trace for (alerts are always traced).
    sampling_ratio: float = Field(default=0.001, ge=0.0, le=1.0)


class ConsoleIngress(_Spec):
    host: str = Field(min_length=1, max_length=253)
    class_name: str | None = None
    # A TLS Secret for the host; without one the Ingress serves plain HTTP.
    tls_secret: str | None = None


class ConsoleSpec(_Spec):
    """The fleet console (HTTP API and web page), off unless enabled."""

    enabled: bool = False
    # Key ``tokens``: JSON of bearer token -> fleets (``["*"]`` for every fleet).
    tokens_secret: str | None = Field(default=None, min_length=1, max_length=253)
    # Key ``dsn``: a read-only role's DSN (without it, storage.databaseSecret's, read-only
    # by the console's own sessions).
    database_secret: str | None = Field(default=None, min_length=1, max_length=253)
    replicas: int = Field(default=1, ge=1, le=20)
    tile_url: str = ""
    tile_attribution: str = ""
    ingress: ConsoleIngress | None = None
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    # The operations view: Jaeger's query API (alerts' traces) and UI (linked from them), and a
    # Prometheus HTTP API for the pipeline's health (without one: each service's /metrics).
    traces_query_url: str = Field(default="", pattern=r"^(https?://[^\s]+)?$")
    traces_ui_url: str = Field(default="", pattern=r"^(https?://[^\s]+)?$")
    prometheus_url: str = Field(default="", pattern=r"^(https?://[^\s]+)?$")


# ---- the lake's compaction and retention ------------------------------------------------
# A cron line of five fields, or one of the @ shorthands the CronJob controller knows.
CRON_SCHEDULE = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\S+( +\S+){4})$"


class LakeSpec(_Spec):
    """The lake's compaction job (a CronJob the operator owns) and how long each layer keeps
    its partitions; the job also enforces the retention. The job reads the lake where the
    storage writer files it: storage.coldUrl, or storage.coldVolumeClaim (ReadWriteMany)."""

    compaction_schedule: str = Field(default="17 * * * *", pattern=CRON_SCHEDULE)
    bronze_retention_days: int = Field(default=90, ge=1, le=36500)
    silver_retention_days: int = Field(default=730, ge=1, le=36500)
    gold_retention_days: int = Field(default=1825, ge=1, le=36500)
    suspend: bool = False
    resources: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _silver_outlives_bronze(self) -> LakeSpec:
        # Silver is rebuilt from bronze: a silver hour dropped while its bronze is kept would
        # be compacted again by the next run, and dropped again.
        if self.silver_retention_days < self.bronze_retention_days:
            raise ValueError(
                "lake.silverRetentionDays must not be below lake.bronzeRetentionDays: silver "
                "is rebuilt from the bronze still kept"
            )
        return self


# Windows an event falls in (windowSeconds / hopSeconds): the KPI stage's work per event.
MAX_KPI_HOPS = 360


class KpisSpec(_Spec):
    """The KPI stage's sliding windows of event time (fleetpipe.kpis.settings.KpiSettings)."""

    enabled: bool = True
    # A window window_seconds long every hop_seconds (a divisor of it).
    window_seconds: int = Field(default=900, ge=60, le=86_400)
    hop_seconds: int = Field(default=60, ge=10, le=3600)
    # A window is emitted once event time is this far past its end; later events are dropped.
    allowed_lateness_seconds: int = Field(default=120, ge=0, le=3600)
    # A partition quiet this long lets its event time follow the clock.
    idle_seconds: int = Field(default=30, ge=1, le=3600)

    @model_validator(mode="after")
    def _whole_hops(self) -> KpisSpec:
        if self.window_seconds % self.hop_seconds:
            raise ValueError(
                f"kpis.windowSeconds ({self.window_seconds}) must be a whole number of "
                f"kpis.hopSeconds ({self.hop_seconds})"
            )
        # Each event lands in window/hop windows: bounded, so one event costs bounded work.
        if self.window_seconds // self.hop_seconds > MAX_KPI_HOPS:
            raise ValueError(
                f"kpis.windowSeconds / kpis.hopSeconds must not exceed {MAX_KPI_HOPS} "
                "windows per event: raise kpis.hopSeconds"
            )
        return self


class ImageSpec(_Spec):
    repository: str = Field(default="fleetpipe", min_length=1)
    tag: str = Field(default="0.1.0", min_length=1)
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


class FleetPipelineSpec(_Spec):
    fleet: FleetSize
    kafka: KafkaSpec
    storage: StorageSpec
    notification: NotificationSpec
    services: Services = Services()
    target_utilisation: float = Field(default=0.7, ge=0.1, le=1.0)
    autoscaling: Autoscaling = Autoscaling()
    rules: dict[str, Any] = Field(default_factory=dict)
    # Speed zones and geofences (fleetpipe.core.zones), checked in fleet_operator.rules.
    zones: list[dict[str, Any]] = Field(default_factory=list)
    # Operations recipients and webhook sinks: notification's own model, whose schema the CRD's
    # spec.recipients is generated from (fleetpipe_dev.devtools.crdschema).
    recipients: Recipients = Recipients()
    registry: RegistrySpec | None = None
    ingest: IngestSpec = IngestSpec()
    mqtt: MqttSpec | None = None
    tracing: TracingSpec = TracingSpec()
    console: ConsoleSpec = ConsoleSpec()
    image: ImageSpec = ImageSpec()
    paused: bool = False
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    lake: LakeSpec | None = None
    kpis: KpisSpec = KpisSpec()

    def components(self) -> tuple[Component, ...]:
        """The services this pipeline runs: every one, less the KPI stage when disabled."""
        return tuple(c for c in Component if c is not Component.KPIS or self.kpis.enabled)

    @model_validator(mode="after")
    def _kpis_login(self) -> FleetPipelineSpec:
        kafka = self.kafka
        logins = kafka.service_credentials
        if (
            self.kpis.enabled
            and kafka.security_protocol.startswith("SASL")
            and not kafka.credentials_secret
            and logins is not None
            and logins.kpis is None
        ):
            raise ValueError(
                "kafka.serviceCredentials.kpis is needed without kafka.credentialsSecret while "
                "kpis.enabled (the KPI stage logs in to Kafka)"
            )
        return self

    @model_validator(mode="after")
    def _managed_access_covers_every_login(self) -> FleetPipelineSpec:
        # A stage on the shared login would be granted its rights as the operator's principal.
        if self.kafka.access is not KafkaAccess.MANAGED:
            return self
        logins = self.kafka.service_credentials
        missing = [
            name
            for name, running in (("kpis", self.kpis.enabled), ("console", self.console.enabled))
            if running and getattr(logins, name, None) is None
        ]
        if missing:
            raise ValueError(
                "kafka.access Managed needs kafka.serviceCredentials."
                f"{' and .'.join(missing)} while that stage is enabled"
            )
        return self

    @model_validator(mode="after")
    def _lake_is_shared(self) -> FleetPipelineSpec:
        # The compaction job runs in its own pod: an emptyDir is the writer's alone.
        if self.lake is not None and not (self.storage.cold_url or self.storage.cold_volume_claim):
            raise ValueError(
                "lake needs storage.coldUrl or storage.coldVolumeClaim: the compaction job "
                "reads the lake from its own pod"
            )
        return self


class SpecError(ConfigError):
    """A spec the schema let through but the operator cannot use; names the field."""


def parse_spec(raw: Mapping[str, Any]) -> FleetPipelineSpec:
    try:
        return FleetPipelineSpec.model_validate(dict(raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"spec.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise SpecError(problems) from exc
