"""The fleet console of a pipeline → its Deployment, Service and optional Ingress (pure).

The console is not sized by the fleet's event rate (it serves people and the systems around a
fleet, not the stream), so it is rendered beside the sized services rather than as one of
them. Its bearer tokens and its database DSN come from Secrets, never from the spec.
"""

from __future__ import annotations

import json

from fleet_operator.credentials import CONSOLE, kafka_ca_volume, kafka_login_env
from fleet_operator.objects import (
    Manifest,
    Owner,
    child_metadata,
    child_name,
    container_security,
    env_secret,
    env_value,
    labels,
    pod_security,
)
from fleet_operator.render import (
    HTTP_PORT,
    topics_for,
)
from fleet_operator.spec import FleetPipelineSpec

COMPONENT = "console"
PORT = 8000


def _selector(owner: Owner) -> dict[str, str]:
    found = labels(owner, COMPONENT)
    return {k: found[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")} | {
        "app.kubernetes.io/component": COMPONENT
    }


def console_name(owner: Owner) -> str:
    return f"{owner.name}-{COMPONENT}"


def health_targets(owner: Owner, spec: FleetPipelineSpec) -> dict[str, str]:
    """Each service's health port through its Service, for the console's health page when no
    Prometheus is given (a Service answers from one of its pods at a time: with replicas,
    ``spec.console.prometheusUrl`` gives every pod's figures)."""
    return {c.value: f"http://{child_name(owner, c)}:{HTTP_PORT}" for c in spec.components()}


def console_env(owner: Owner, spec: FleetPipelineSpec) -> list[Manifest]:
    kafka, console = spec.kafka, spec.console
    env = [
        env_value("FLEET_KAFKA__BOOTSTRAP_SERVERS", kafka.bootstrap_servers),
        env_value("FLEET_KAFKA__SECURITY_PROTOCOL", kafka.security_protocol),
    ]
    if kafka.sasl_mechanism:
        env.append(env_value("FLEET_KAFKA__SASL_MECHANISM", kafka.sasl_mechanism))
    # The console's own Kafka principal (or the shared one), and the brokers' CA.
    env += kafka_login_env(spec, CONSOLE)
    topics = topics_for(spec)
    env += [
        env_value("FLEET_TOPICS__ALERTS", topics.alerts),
        env_value("FLEET_TOPICS__ENRICHED", topics.enriched),
        env_value("FLEET_LISTEN_PORT", PORT),
        env_value("FLEET_OBSERVABILITY__LOG_FORMAT", "json"),
        env_value("OTEL_SERVICE_NAME", "fleetpipe-console"),
        env_secret(
            "FLEET_POSTGRES__DSN", console.database_secret or spec.storage.database_secret, "dsn"
        ),
    ]
    if console.tokens_secret:
        env.append(env_secret("FLEET_CONSOLE_TOKENS", console.tokens_secret, "tokens"))
    if console.tile_url:
        env.append(env_value("FLEET_MAP__TILE_URL", console.tile_url))
        env.append(env_value("FLEET_MAP__TILE_ATTRIBUTION", console.tile_attribution))
    # The operations view: alerts' traces from Jaeger's query API, the pipeline's health from
    # Prometheus or, without one, from each service's /metrics.
    if console.traces_query_url:
        env.append(env_value("FLEET_TRACES__QUERY_URL", console.traces_query_url))
    if console.traces_ui_url:
        env.append(env_value("FLEET_TRACES__UI_URL", console.traces_ui_url))
    if console.prometheus_url:
        env.append(env_value("FLEET_HEALTH__PROMETHEUS_URL", console.prometheus_url))
    else:
        env.append(env_value("FLEET_HEALTH__TARGETS", json.dumps(health_targets(owner, spec))))
    if spec.tracing.otlp_endpoint:
        env += [
            env_value("OTEL_EXPORTER_OTLP_ENDPOINT", spec.tracing.otlp_endpoint),
            env_value("OTEL_TRACES_SAMPLER", "traceidratio"),
            env_value("OTEL_TRACES_SAMPLER_ARG", 1.0),
        ]
    return env


def console_manifests(owner: Owner, spec: FleetPipelineSpec) -> list[Manifest]:
    """The console's children, or none when ``spec.console.enabled`` is false."""
    console = spec.console
    if not console.enabled:
        return []
    name = console_name(owner)
    ca_volumes, ca_mounts = kafka_ca_volume(spec)
    container: Manifest = {
        "name": COMPONENT,
        "image": spec.image.reference,
        "imagePullPolicy": spec.image.pull_policy,
        "command": ["fleetpipe-console"],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": console_env(owner, spec),
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        # /tmp, and the brokers' CA when the spec names one.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *ca_mounts],  # noqa: S108
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
        "securityContext": container_security(),
    }
    manifests: list[Manifest] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": child_metadata(owner, name, COMPONENT),
            "spec": {
                "replicas": console.replicas,
                "revisionHistoryLimit": 3,
                "selector": {"matchLabels": _selector(owner)},
                "template": {
                    "metadata": {"labels": labels(owner, COMPONENT)},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "enableServiceLinks": False,
                        "securityContext": pod_security(fs_group=False),
                        "containers": [container],
                        "volumes": [{"name": "tmp", "emptyDir": {}}, *ca_volumes],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": child_metadata(owner, name, COMPONENT),
            "spec": {
                "type": console.service_type,
                "selector": _selector(owner),
                "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
            },
        },
    ]
    if console.ingress is not None:
        ingress = console.ingress
        rule = {
            "host": ingress.host,
            "http": {
                "paths": [
                    {
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": name, "port": {"name": "http"}}},
                    }
                ]
            },
        }
        body: Manifest = {"rules": [rule]}
        if ingress.class_name:
            body["ingressClassName"] = ingress.class_name
        if ingress.tls_secret:
            body["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret}]
        manifests.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": child_metadata(owner, name, COMPONENT),
                "spec": body,
            }
        )
    return manifests
