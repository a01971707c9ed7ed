"""The MQTT bridge's children, when the FleetPipeline has ``spec.mqtt``. Pure, as render.py.

A StatefulSet rather than a Deployment: each replica's MQTT client id is its pod's name, stable
across restarts, so a replica that crashed resumes its broker session and the broker sends it
again what it had not acknowledged (see ``fleetpipe.ingest.mqtt.bridge``). Pods start in
parallel: the replicas share the messages through the broker, not through an order of start.
"""

from __future__ import annotations

from fleet_operator.credentials import kafka_ca_volume
from fleet_operator.objects import (
    Manifest,
    Owner,
    child_metadata,
    child_name,
    container_security,
    env_secret,
    env_value,
    pod_security,
)
from fleet_operator.render import (
    HTTP_PORT,
    REGISTRY_DIR,
    env_for,
    registry_source,
)
from fleet_operator.spec import Component, FleetPipelineSpec, MqttSpec

BRIDGE = "mqtt-bridge"
DEFAULT_RESOURCES: Manifest = {
    "requests": {"cpu": "500m", "memory": "256Mi"},
    "limits": {"memory": "1Gi"},
}
# What ingest's environment has that the bridge does not read.
_INGEST_ONLY = {"FLEET_GRPC_PORT", "FLEET_AUTH__TOKENS_FILE", "FLEET_HTTP__PORT"}


def bridge_labels(owner: Owner) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "fleetpipe",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": BRIDGE,
    }


def bridge_env(owner: Owner, spec: FleetPipelineSpec, mqtt: MqttSpec) -> list[Manifest]:
    # Kafka, topics, observability and tracing as ingest has them: the bridge produces the
    # same records to the same topics.
    env = [
        e
        for e in env_for(owner, spec, Component.INGEST)
        if e["name"] not in _INGEST_ONLY and e["name"] != "OTEL_SERVICE_NAME"
    ]
    env += [
        env_value("OTEL_SERVICE_NAME", f"fleetpipe-{BRIDGE}"),
        env_value("FLEET_MQTT__HOST", mqtt.host),
        env_value("FLEET_MQTT__PORT", mqtt.port),
        env_value("FLEET_MQTT__USERNAME", mqtt.username),
        env_secret("FLEET_MQTT__PASSWORD", mqtt.credentials_secret, "password"),
        env_value("FLEET_MQTT__SHARE_GROUP", mqtt.share_group),
        env_value("FLEET_MQTT__RECEIVE_MAXIMUM", mqtt.receive_maximum),
    ]
    return env


def mqtt_bridge(owner: Owner, spec: FleetPipelineSpec) -> list[Manifest]:
    """The bridge's headless Service and StatefulSet; nothing without ``spec.mqtt``."""
    mqtt = spec.mqtt
    if mqtt is None:
        return []
    name = child_name(owner, BRIDGE)
    registry_cm, _key = registry_source(owner, spec)
    selector = bridge_labels(owner)
    metadata = child_metadata(owner, name, BRIDGE)
    service: Manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "clusterIP": "None",
            "selector": selector,
            "ports": [{"name": "http", "port": HTTP_PORT, "targetPort": "http"}],
        },
    }
    container: Manifest = {
        "name": BRIDGE,
        "image": spec.image.reference,
        "imagePullPolicy": spec.image.pull_policy,
        "command": ["fleetpipe-mqtt-bridge"],
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "env": bridge_env(owner, spec, mqtt),
        "resources": mqtt.resources or DEFAULT_RESOURCES,
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - in the pod
            # The registry, as ingest has it: whose each vehicle is (a gateway account may
            # name any vehicle id under its own fleet's topics).
            {"name": "registry", "mountPath": REGISTRY_DIR, "readOnly": True},
            *kafka_ca_volume(spec)[1],
        ],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
        "securityContext": container_security(),
    }
    statefulset: Manifest = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata,
        "spec": {
            "serviceName": name,
            "replicas": mqtt.replicas,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**metadata["labels"], **selector}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    # SIGTERM finishes the messages in hand; the rest stay in the session.
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": pod_security(),
                    "containers": [container],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {}},
                        {"name": "registry", "configMap": {"name": registry_cm}},
                        *kafka_ca_volume(spec)[0],
                    ],
                },
            },
        },
    }
    return [service, statefulset]
