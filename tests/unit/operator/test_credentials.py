"""A login per service: each workload's Kafka principal and database role come from its own
Secret, named in the spec and referenced in the manifests, never a value."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_operator.console import console_manifests
from fleet_operator.credentials import KAFKA_CA_DIR
from fleet_operator.objects import Owner
from fleet_operator.render import env_for, referenced_secrets, render
from fleet_operator.render_mqtt import mqtt_bridge
from fleet_operator.sizing import plan
from fleet_operator.spec import Component, FleetPipelineSpec, SpecError, parse_spec
from support.pipelinespecs import scram_spec, with_kafka

pytestmark = pytest.mark.unit

OWNER = Owner(name="fleet", namespace="prod", uid="1234-abcd")
LOGINS = {
    "ingest": "kafka-ingest",
    "enrichment": "kafka-enrichment",
    "detection": "kafka-detection",
    "notification": "kafka-notification",
    "storageWriter": "kafka-storage-writer",
    "console": "kafka-console",
    "kpis": "kafka-kpis",
}
SPEC = scram_spec(
    kafka={"serviceCredentials": LOGINS, "caSecret": "kafka-ca"},
    storage={
        "databaseSecret": "db-owner",
        "serviceDatabaseSecrets": {"storageWriter": "db-writer", "notification": "db-notifier"},
    },
    console={"enabled": True},
    mqtt={"host": "mosquitto", "credentialsSecret": "mqtt-bridge"},
)


def pipeline(**kafka: Any) -> FleetPipelineSpec:
    return parse_spec(with_kafka(SPEC, **kafka))


def _refs(env: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in env}


def _secret(env: dict[str, Any], name: str) -> tuple[str, str]:
    ref = env[name]["secretKeyRef"]
    return ref["name"], ref["key"]


@pytest.mark.parametrize(
    ("component", "login"),
    [
        pytest.param(Component.INGEST, "kafka-ingest", id="ingest"),
        pytest.param(Component.ENRICHMENT, "kafka-enrichment", id="enrichment"),
        pytest.param(Component.DETECTION, "kafka-detection", id="detection"),
        pytest.param(Component.NOTIFICATION, "kafka-notification", id="notification"),
        pytest.param(Component.STORAGE_WRITER, "kafka-storage-writer", id="storage-writer"),
    ],
)
def test_each_service_logs_in_to_kafka_with_its_own_secret(
    component: Component, login: str
) -> None:
    env = _refs(env_for(OWNER, pipeline(), component))
    assert _secret(env, "FLEET_KAFKA__SASL_USERNAME") == (login, "username")
    assert _secret(env, "FLEET_KAFKA__SASL_PASSWORD") == (login, "password")
    assert env["FLEET_KAFKA__SSL_CA_LOCATION"] == f"{KAFKA_CA_DIR}/ca.crt"


def test_the_database_roles_are_the_services_own() -> None:
    spec = pipeline()
    writer = _refs(env_for(OWNER, spec, Component.STORAGE_WRITER))
    notifier = _refs(env_for(OWNER, spec, Component.NOTIFICATION))
    assert _secret(writer, "FLEET_POSTGRES__DSN") == ("db-writer", "dsn")
    assert _secret(notifier, "FLEET_POSTGRES__DSN") == ("db-notifier", "dsn")


def test_the_console_and_the_bridge_log_in_as_themselves_and_mount_the_ca() -> None:
    spec = pipeline()
    for manifests, login in (
        (console_manifests(OWNER, spec), "kafka-console"),
        (mqtt_bridge(OWNER, spec), "kafka-ingest"),  # the bridge writes what ingest writes
    ):
        workload = next(m for m in manifests if m["kind"] in ("Deployment", "StatefulSet"))
        pod = workload["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = _refs(container["env"])
        assert _secret(env, "FLEET_KAFKA__SASL_PASSWORD") == (login, "password")
        assert {"name": "kafka-ca", "mountPath": KAFKA_CA_DIR, "readOnly": True} in container[
            "volumeMounts"
        ]
        assert any(v.get("secret", {}).get("secretName") == "kafka-ca" for v in pod["volumes"])


def test_every_deployment_mounts_the_brokers_ca() -> None:
    spec = pipeline()
    deployments = [m for m in render(OWNER, spec, plan(spec)) if m["kind"] == "Deployment"]
    assert deployments
    for deployment in deployments:
        volumes = deployment["spec"]["template"]["spec"]["volumes"]
        assert any(v.get("secret", {}).get("secretName") == "kafka-ca" for v in volumes)


def test_no_login_is_ever_a_value() -> None:
    spec = pipeline()
    for component in Component:
        for entry in env_for(OWNER, spec, component):
            if any(s in entry["name"] for s in ("PASSWORD", "USERNAME", "DSN")):
                assert "value" not in entry, entry["name"]


def test_a_service_not_named_falls_back_to_the_shared_secret() -> None:
    logins = {k: v for k, v in LOGINS.items() if k != "detection"}
    spec = pipeline(serviceCredentials=logins, credentialsSecret="kafka-shared")
    env = _refs(env_for(OWNER, spec, Component.DETECTION))
    assert _secret(env, "FLEET_KAFKA__SASL_USERNAME") == ("kafka-shared", "username")


def test_without_a_shared_secret_every_service_needs_its_own() -> None:
    logins = {k: v for k, v in LOGINS.items() if k != "detection"}
    with pytest.raises(SpecError, match="missing: detection"):
        pipeline(serviceCredentials=logins)


def test_the_login_secrets_are_checked_for_like_the_others() -> None:
    found = referenced_secrets(pipeline())
    assert found["kafka-ca"] == "spec.kafka.caSecret"
    assert found["kafka-storage-writer"] == "spec.kafka.serviceCredentials.storageWriter"
    assert found["db-writer"] == "spec.storage.serviceDatabaseSecrets.storageWriter"
