"""The MQTT bridge's children and ingest's HTTP port, rendered from a spec."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_operator.objects import Owner
from fleet_operator.render import referenced_secrets, render
from fleet_operator.render_mqtt import mqtt_bridge
from fleet_operator.sizing import plan
from fleet_operator.spec import FleetPipelineSpec, SpecError, parse_spec

pytestmark = pytest.mark.unit

OWNER = Owner(name="fleet", namespace="prod", uid="1234-abcd")
BASE: dict[str, Any] = {
    "fleet": {"vehicles": 50_000},
    "kafka": {"bootstrapServers": "kafka-0:9092"},
    "storage": {"databaseSecret": "db"},
    "notification": {"twilioSecret": "twilio"},
}
MQTT = {"host": "mosquitto", "credentialsSecret": "mqtt-bridge", "replicas": 3}


def rendered(pipeline: FleetPipelineSpec) -> dict[tuple[str, str], dict[str, Any]]:
    """What the reconcile applies: the sized services' children and the bridge's."""
    children = render(OWNER, pipeline, plan(pipeline)) + mqtt_bridge(OWNER, pipeline)
    return {(m["kind"], m["metadata"]["name"]): m for m in children}


def test_no_mqtt_spec_renders_no_bridge() -> None:
    kinds = {kind for kind, _ in rendered(parse_spec(BASE))}
    assert "StatefulSet" not in kinds


def test_the_bridge_is_a_statefulset_with_the_broker_from_the_spec_and_its_password_by_ref() -> (
    None
):
    children = rendered(parse_spec({**BASE, "mqtt": MQTT}))
    bridge = children[("StatefulSet", "fleet-mqtt-bridge")]
    assert children[("Service", "fleet-mqtt-bridge")]["spec"]["clusterIP"] == "None"
    assert bridge["metadata"]["ownerReferences"][0]["uid"] == "1234-abcd"
    assert bridge["spec"]["replicas"] == 3
    assert bridge["spec"]["serviceName"] == "fleet-mqtt-bridge"
    container = bridge["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["fleetpipe-mqtt-bridge"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["FLEET_MQTT__HOST"] == "mosquitto"
    assert env["FLEET_MQTT__PORT"] == "1883"
    assert env["FLEET_MQTT__PASSWORD"] == {
        "secretKeyRef": {"name": "mqtt-bridge", "key": "password"}
    }
    assert env["FLEET_KAFKA__BOOTSTRAP_SERVERS"] == "kafka-0:9092"
    assert env["FLEET_TOPICS__RAW"] == "fleet.telemetry.raw.v1"
    assert "FLEET_GRPC_PORT" not in env and "FLEET_CLIENT_ID" not in env
    selector = bridge["spec"]["selector"]["matchLabels"]
    assert selector.items() <= bridge["spec"]["template"]["metadata"]["labels"].items()
    assert referenced_secrets(parse_spec({**BASE, "mqtt": MQTT}))["mqtt-bridge"] == (
        "spec.mqtt.credentialsSecret"
    )


def test_ingest_s_http_port_is_opened_on_its_pods_and_service() -> None:
    children = rendered(parse_spec({**BASE, "ingest": {"httpPort": 8443}}))
    deployment = children[("Deployment", "fleet-ingest")]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "http-ingest", "containerPort": 8443, "protocol": "TCP"} in container["ports"]
    assert {"name": "FLEET_HTTP__PORT", "value": "8443"} in container["env"]
    ports = children[("Service", "fleet-ingest")]["spec"]["ports"]
    assert any(p["name"] == "http-ingest" and p["port"] == 8443 for p in ports)


def test_an_mqtt_spec_without_its_credentials_secret_is_refused() -> None:
    with pytest.raises(SpecError):
        parse_spec({**BASE, "mqtt": {"host": "mosquitto"}})
