"""FleetPipeline spec → Kubernetes manifests and Kafka topic specs. Pure: values in, values out.

Every child carries a controller owner reference to its FleetPipeline (deleting the pipeline lets
the garbage collector remove them) and the recommended ``app.kubernetes.io/*`` labels. Services
read their configuration from ``FLEET_*`` environment variables (``__`` nests), the way their
pydantic settings expect; secrets only ever appear as ``secretKeyRef``, never as values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from fleet_operator.credentials import (
    database_secret,
    kafka_ca_volume,
    kafka_login_env,
)
from fleet_operator.credentials import referenced as login_secrets
from fleet_operator.objects import (
    COMPONENT_LABEL,
    Manifest,
    Owner,
    child_metadata,
    child_name,
    container_security,
    env_secret,
    env_value,
    labels,
    pod_security,
    selector_labels,
)
from fleet_operator.render_recipients import recipient_secrets, recipients_env
from fleet_operator.rules import limits_document, rules_document
from fleet_operator.sizing import CONSUMERS, INPUT_TOPICS, SizingPlan
from fleet_operator.spec import Component, FleetPipelineSpec
from fleetpipe.core.settings import Topics
from fleetpipe.core.topics import TopicSpec, topic_specs
from fleetpipe.registry import FIELDS as REGISTRY_FIELDS

HTTP_PORT = 8080  # health, readiness and Prometheus metrics (fleetpipe.core.health)
GRPC_PORT = 50051  # ingest's TelemetryIngest
INGEST_HTTP_PORT_NAME = "http-ingest"  # ingest's HTTP/JSON listener, when spec.ingest.httpPort
CONFIG_ROOT = "/etc/fleetpipe"
RULES_DIR = f"{CONFIG_ROOT}/rules"
RULES_FILE = "rules.yaml"
LIMITS_DIR = f"{CONFIG_ROOT}/limits"
LIMITS_FILE = "limits.yaml"
REGISTRY_DIR = f"{CONFIG_ROOT}/registry"
INGEST_AUTH_DIR = f"{CONFIG_ROOT}/ingest"
INGEST_TOKENS_FILE = "tokens.yaml"

# The environment each service reads, beyond the shared FLEET_KAFKA__* / FLEET_TOPICS__* /
# FLEET_OBSERVABILITY__* of fleetpipe.core.settings.ServiceSettings. Kept here, in one table,
# so that aligning a name with a service's settings is a one-line change.
ENV = {
    "group_id": "FLEET_GROUP_ID",
    "registry_path": "FLEET_REGISTRY_PATH",
    "unknown_vehicles": "FLEET_UNKNOWN_VEHICLES",
    "rules_path": "FLEET_RULES_PATH",
    "speed_limits_path": "FLEET_SPEED_LIMITS_PATH",
    "grpc_port": "FLEET_GRPC_PORT",
    "tokens_path": "FLEET_AUTH__TOKENS_FILE",
    "postgres_dsn": "FLEET_POSTGRES__DSN",
    "min_severity": "FLEET_ROUTING__MIN_SEVERITY",
    "channels": "FLEET_ROUTING__CHANNELS",
    "hot_retention_days": "FLEET_HOT_RETENTION_DAYS",
    "cold_path": "FLEET_LAKE__PATH",
    "cold_url": "FLEET_LAKE__URL",
    "latest_retention_days": "FLEET_LATEST_RETENTION_DAYS",
    "dead_letters_retention_days": "FLEET_DEAD_LETTERS_RETENTION_DAYS",
    "ledger_retention_days": "FLEET_LEDGER_RETENTION_DAYS",
    # The KPI stage's windows (fleetpipe.kpis.settings), from spec.kpis.
    "window_seconds": "FLEET_WINDOW_S",
    "hop_seconds": "FLEET_HOP_S",
    "allowed_lateness_seconds": "FLEET_ALLOWED_LATENESS_S",
    "idle_seconds": "FLEET_IDLE_S",
}
# The lake bucket's credentials: the names the S3 client reads, from cold_credentials_secret.
S3_CREDENTIAL_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
# Twilio Secret keys → notification's FLEET_TWILIO__* settings; the first three are required.
TWILIO_KEYS = (
    ("account_sid", True),
    ("auth_token", True),
    ("sms_from", True),
    ("whatsapp_from", False),
    ("voice_from", False),
    ("messaging_service_sid", False),
    ("api_base_url", False),
)

# Requests sized for one replica at its planned capacity; spec.services.<svc>.resources replaces.
DEFAULT_RESOURCES: dict[Component, Manifest] = {
    Component.INGEST: {"requests": {"cpu": "1", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    Component.ENRICHMENT: {
        "requests": {"cpu": "1", "memory": "384Mi"},
        "limits": {"memory": "1Gi"},
    },
    Component.DETECTION: {
        "requests": {"cpu": "1", "memory": "512Mi"},
        "limits": {"memory": "2Gi"},
    },
    Component.NOTIFICATION: {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"memory": "512Mi"},
    },
    Component.STORAGE_WRITER: {
        "requests": {"cpu": "1", "memory": "512Mi"},
        "limits": {"memory": "2Gi"},
    },
    # Its state is the open windows' panes of the vehicles of its partitions.
    Component.KPIS: {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"memory": "2Gi"},
    },
}


# ---- Kafka -------------------------------------------------------------------------------
def topics_for(spec: FleetPipelineSpec) -> Topics:
    suffix = spec.kafka.topic_suffix
    return Topics.with_suffix(suffix) if suffix else Topics()


def group_id(spec: FleetPipelineSpec, component: Component) -> str:
    base = f"fleetpipe-{component.value}"
    suffix = spec.kafka.topic_suffix
    return f"{base}.{suffix}" if suffix else base


def input_topics(spec: FleetPipelineSpec, component: Component) -> list[str]:
    names = topics_for(spec).model_dump()
    return [names[field] for field in INPUT_TOPICS[component]]


def pipeline_topics(spec: FleetPipelineSpec, partitions: int) -> list[TopicSpec]:
    """Every topic of the pipeline, co-partitioned, with the spec's replication and retention."""
    return topic_specs(
        topics_for(spec),
        partitions,
        replication_factor=spec.kafka.replication_factor,
        retention_ms=spec.kafka.retention_hours * 3600 * 1000,
    )


# ---- ConfigMaps --------------------------------------------------------------------------
def rules_yaml(spec: FleetPipelineSpec) -> str:
    return yaml.safe_dump(rules_document(spec), sort_keys=True, default_flow_style=False)


def limits_config_map(owner: Owner, spec: FleetPipelineSpec) -> Manifest:
    """Enrichment's speed-limit table, with spec.zones' speed zones (followed, no restart)."""
    text = yaml.safe_dump(limits_document(spec), sort_keys=True, default_flow_style=False)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": child_metadata(owner, child_name(owner, "limits"), "limits"),
        "data": {LIMITS_FILE: text},
    }


def rules_config_map(owner: Owner, spec: FleetPipelineSpec) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": child_metadata(owner, child_name(owner, "rules"), "rules"),
        "data": {RULES_FILE: rules_yaml(spec)},
    }


def registry_config_map(owner: Owner) -> Manifest:
    """An empty registry (the CSV header only) for a pipeline that names none: every vehicle
    passes as unknown, and the services start instead of failing on a missing file."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": child_metadata(owner, child_name(owner, "registry"), "registry"),
        "data": {"vehicles.csv": ",".join(REGISTRY_FIELDS) + "\n"},
    }


def registry_source(owner: Owner, spec: FleetPipelineSpec) -> tuple[str, str]:
    """The ConfigMap holding the vehicle registry and the key of the file in it."""
    if spec.registry is not None:
        return spec.registry.config_map_name, spec.registry.key
    return child_name(owner, "registry"), "vehicles.csv"


# ---- environment -------------------------------------------------------------------------
def env_for(owner: Owner, spec: FleetPipelineSpec, component: Component) -> list[Manifest]:
    kafka = spec.kafka
    env = [
        env_value("FLEET_KAFKA__BOOTSTRAP_SERVERS", kafka.bootstrap_servers),
        env_value("FLEET_KAFKA__SECURITY_PROTOCOL", kafka.security_protocol),
        env_value("FLEET_KAFKA__COMPRESSION_TYPE", kafka.compression),
    ]
    if kafka.sasl_mechanism:
        env.append(env_value("FLEET_KAFKA__SASL_MECHANISM", kafka.sasl_mechanism))
    # The service's own Kafka principal (or the shared one), and the brokers' CA.
    env += kafka_login_env(spec, component.value)
    for field, topic in topics_for(spec).model_dump().items():
        env.append(env_value(f"FLEET_TOPICS__{field.upper()}", topic))
    env += [
        env_value("FLEET_OBSERVABILITY__HTTP_PORT", HTTP_PORT),
        env_value("FLEET_OBSERVABILITY__LOG_FORMAT", "json"),
        # The standard OpenTelemetry variable, read by the SDK itself.
        env_value("OTEL_SERVICE_NAME", f"fleetpipe-{component.value}"),
    ]
    if spec.tracing.otlp_endpoint:
        # Read by the OpenTelemetry SDK and fleetpipe.core.tracing; only ingest starts traces
        # by ratio, the other services follow the context in the records' headers.
        env += [
            env_value("OTEL_EXPORTER_OTLP_ENDPOINT", spec.tracing.otlp_endpoint),
            env_value("OTEL_TRACES_SAMPLER", "traceidratio"),
            env_value("OTEL_TRACES_SAMPLER_ARG", spec.tracing.sampling_ratio),
        ]
    if component in CONSUMERS:
        env.append(env_value(ENV["group_id"], group_id(spec, component)))
    _registry_cm, registry_key = registry_source(owner, spec)
    if component is Component.INGEST:
        env.append(env_value(ENV["grpc_port"], GRPC_PORT))
        # The registry decides which fleet a vehicle belongs to, whatever a token claims.
        env.append(env_value(ENV["registry_path"], f"{REGISTRY_DIR}/{registry_key}"))
        env.append(env_value(ENV["unknown_vehicles"], spec.ingest.unknown_vehicles))
        if spec.ingest.tokens_secret:
            env.append(env_value(ENV["tokens_path"], f"{INGEST_AUTH_DIR}/{INGEST_TOKENS_FILE}"))
        if spec.ingest.http_port is not None:
            env.append(env_value("FLEET_HTTP__PORT", spec.ingest.http_port))
    elif component is Component.ENRICHMENT:
        env.append(env_value(ENV["registry_path"], f"{REGISTRY_DIR}/{registry_key}"))
        env.append(env_value(ENV["speed_limits_path"], f"{LIMITS_DIR}/{LIMITS_FILE}"))
    elif component is Component.DETECTION:
        env.append(env_value(ENV["rules_path"], f"{RULES_DIR}/{RULES_FILE}"))
    elif component is Component.NOTIFICATION:
        note = spec.notification
        env.append(env_value(ENV["registry_path"], f"{REGISTRY_DIR}/{registry_key}"))
        env.append(env_secret(ENV["postgres_dsn"], database_secret(spec, component.value), "dsn"))
        for key, required in TWILIO_KEYS:
            env.append(
                env_secret(
                    f"FLEET_TWILIO__{key.upper()}",
                    note.twilio_secret,
                    key,
                    optional=not required,
                )
            )
        env.append(env_value(ENV["min_severity"], note.min_severity.value))
        channels = note.channels.model_dump()
        env.append(env_value(ENV["channels"], json.dumps(channels, sort_keys=True)))
        env += recipients_env(spec.recipients)
    elif component is Component.STORAGE_WRITER:
        env.append(env_secret(ENV["postgres_dsn"], database_secret(spec, component.value), "dsn"))
        # The vehicles table follows the registry.
        env.append(env_value(ENV["registry_path"], f"{REGISTRY_DIR}/{registry_key}"))
        env.append(env_value(ENV["hot_retention_days"], spec.storage.hot_retention_days))
        env.append(env_value(ENV["cold_path"], spec.storage.cold_path))
        for name in (
            "latest_retention_days",
            "dead_letters_retention_days",
            "ledger_retention_days",
        ):
            env.append(env_value(ENV[name], getattr(spec.storage, name)))
        if spec.storage.cold_url:
            env.append(env_value(ENV["cold_url"], spec.storage.cold_url))
        if spec.storage.cold_credentials_secret:
            for key in S3_CREDENTIAL_KEYS:
                env.append(env_secret(key, spec.storage.cold_credentials_secret, key))
    elif component is Component.KPIS:
        for name in (
            "window_seconds",
            "hop_seconds",
            "allowed_lateness_seconds",
            "idle_seconds",
        ):
            env.append(env_value(ENV[name], getattr(spec.kpis, name)))
    return env


# ---- volumes -----------------------------------------------------------------------------
def _volumes(
    owner: Owner, spec: FleetPipelineSpec, component: Component
) -> tuple[list[Manifest], list[Manifest]]:
    # A writable /tmp: the root filesystem is read-only.
    volumes: list[Manifest] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[Manifest] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108 - in the pod
    if component in (
        Component.INGEST,
        Component.ENRICHMENT,
        Component.NOTIFICATION,
        Component.STORAGE_WRITER,
    ):
        # The whole folder, not a subPath: kubelet updates a mounted ConfigMap folder in place,
        # which is how the registry reloads without a restart.
        registry_cm, _key = registry_source(owner, spec)
        volumes.append({"name": "registry", "configMap": {"name": registry_cm}})
        mounts.append({"name": "registry", "mountPath": REGISTRY_DIR, "readOnly": True})
    if component is Component.ENRICHMENT:
        volumes.append({"name": "limits", "configMap": {"name": child_name(owner, "limits")}})
        mounts.append({"name": "limits", "mountPath": LIMITS_DIR, "readOnly": True})
    if component is Component.DETECTION:
        volumes.append({"name": "rules", "configMap": {"name": child_name(owner, "rules")}})
        mounts.append({"name": "rules", "mountPath": RULES_DIR, "readOnly": True})
    ca_volumes, ca_mounts = kafka_ca_volume(spec)
    volumes += ca_volumes
    mounts += ca_mounts
    if component is Component.INGEST and spec.ingest.tokens_secret:
        volumes.append({"name": "auth", "secret": {"secretName": spec.ingest.tokens_secret}})
        mounts.append({"name": "auth", "mountPath": INGEST_AUTH_DIR, "readOnly": True})
    if component is Component.STORAGE_WRITER:
        claim = spec.storage.cold_volume_claim
        source: Manifest = (
            {"persistentVolumeClaim": {"claimName": claim}} if claim else {"emptyDir": {}}
        )
        volumes.append({"name": "cold", **source})
        mounts.append({"name": "cold", "mountPath": spec.storage.cold_path})
    return volumes, mounts


# ---- workloads ---------------------------------------------------------------------------
def deployment(
    owner: Owner, spec: FleetPipelineSpec, component: Component, replicas: int
) -> Manifest:
    volumes, mounts = _volumes(owner, spec, component)
    ports = [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}]
    if component is Component.INGEST:
        ports.insert(0, {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"})
        if spec.ingest.http_port is not None:
            port = {"name": INGEST_HTTP_PORT_NAME, "containerPort": spec.ingest.http_port}
            ports.insert(1, {**port, "protocol": "TCP"})
    # No rules digest on detection's pods: detection follows its mounted rules file, so a
    # rules change applies without a restart (and without re-reading the state changelog).
    template_annotations: dict[str, str] = {}
    resources = spec.services.of(component).resources or DEFAULT_RESOURCES[component]
    container: Manifest = {
        "name": component.value,
        "image": spec.image.reference,
        "imagePullPolicy": spec.image.pull_policy,
        "command": [f"fleetpipe-{component.value}"],
        "ports": ports,
        "env": env_for(owner, spec, component),
        "resources": resources,
        "volumeMounts": mounts,
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
        },
        "securityContext": container_security(),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(owner, child_name(owner, component), component),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector_labels(owner, component)},
            "template": {
                "metadata": {
                    "labels": labels(owner, component),
                    **({"annotations": template_annotations} if template_annotations else {}),
                },
                "spec": {
                    # The services never talk to the Kubernetes API.
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    # SIGTERM drains the loop: finish the batch, commit, leave the group.
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": pod_security(),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def service(owner: Owner, spec: FleetPipelineSpec, component: Component) -> Manifest:
    ports = [{"name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP"}]
    service_type = "ClusterIP"
    if component is Component.INGEST:
        ports.insert(
            0, {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"}
        )
        if spec.ingest.http_port is not None:
            port = {"name": INGEST_HTTP_PORT_NAME, "port": spec.ingest.http_port}
            ports.insert(1, {**port, "targetPort": INGEST_HTTP_PORT_NAME, "protocol": "TCP"})
        service_type = spec.ingest.service_type
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(owner, child_name(owner, component), component),
        "spec": {
            "type": service_type,
            "selector": selector_labels(owner, component),
            "ports": ports,
        },
    }


def render(owner: Owner, spec: FleetPipelineSpec, plan: SizingPlan) -> list[Manifest]:
    """Every child of the pipeline, ConfigMaps first (the Deployments mount them)."""
    manifests = [rules_config_map(owner, spec), limits_config_map(owner, spec)]
    if spec.registry is None:
        manifests.append(registry_config_map(owner))
    for component in spec.components():
        manifests.append(deployment(owner, spec, component, plan.desired(component)))
        manifests.append(service(owner, spec, component))
    return manifests


def deployment_names(owner: Owner) -> dict[Component, str]:
    return {c: child_name(owner, c) for c in Component}


def retired(owner: Owner, spec: FleetPipelineSpec) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of the children of services the spec turned off: a disabled
    stage's Deployment and Service go, not merely scale to zero."""
    return [
        (api_version, kind, child_name(owner, c))
        for c in Component
        if c not in spec.components()
        for api_version, kind in (("apps/v1", "Deployment"), ("v1", "Service"))
    ]


def referenced_secrets(spec: FleetPipelineSpec) -> dict[str, str]:
    """Secret name → the spec field that names it (for a condition naming what is missing)."""
    found = {
        spec.storage.database_secret: "spec.storage.databaseSecret",
        spec.notification.twilio_secret: "spec.notification.twilioSecret",
    }
    if spec.kafka.credentials_secret:
        found[spec.kafka.credentials_secret] = "spec.kafka.credentialsSecret"
    if spec.ingest.tokens_secret:
        found[spec.ingest.tokens_secret] = "spec.ingest.tokensSecret"
    if spec.console.enabled:
        if spec.console.tokens_secret:
            found[spec.console.tokens_secret] = "spec.console.tokensSecret"
        if spec.console.database_secret:
            found[spec.console.database_secret] = "spec.console.databaseSecret"
    if spec.mqtt is not None:
        found[spec.mqtt.credentials_secret] = "spec.mqtt.credentialsSecret"
    found.update({k: v for k, v in recipient_secrets(spec.recipients).items() if k not in found})
    for secret, field in login_secrets(spec).items():
        found.setdefault(secret, field)
    return found


def component_of(manifest: Mapping[str, Any]) -> str | None:
    value = manifest.get("metadata", {}).get("labels", {}).get(COMPONENT_LABEL)
    return str(value) if value is not None else None


def by_kind(manifests: Sequence[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]
