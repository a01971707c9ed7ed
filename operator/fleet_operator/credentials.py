"""Which login each workload uses: its own Kafka principal and database role, by Secret name.

Least privilege (``fleetpipe.core.access``, ``fleetpipe.core.dbroles``) gives every service a
principal on Kafka and a role in PostgreSQL of its own. The spec names the Secrets that hold them
(``kafka.serviceCredentials``, ``storage.serviceDatabaseSecrets``), never their values, and a
service not named there falls back to the pipeline's shared Secret. Pure: spec in, env
entries and volumes out (``secretKeyRef`` only).
"""

from __future__ import annotations

from typing import Any

from fleet_operator.spec import FleetPipelineSpec

Manifest = dict[str, Any]

CONSOLE = "console"
MQTT_BRIDGE = "mqtt-bridge"
# Where a CA Secret's ``ca.crt`` is mounted, for FLEET_KAFKA__SSL_CA_LOCATION.
KAFKA_CA_DIR = "/etc/fleetpipe/kafka-ca"
KAFKA_CA_KEY = "ca.crt"
KAFKA_CA_VOLUME = "kafka-ca"


def _field(workload: str) -> str:
    # The MQTT bridge is a way into ingest: it writes what ingest writes.
    return "ingest" if workload == MQTT_BRIDGE else workload.replace("-", "_")


def kafka_secret(spec: FleetPipelineSpec, workload: str) -> str | None:
    """The Secret (keys ``username``, ``password``) ``workload`` logs in to Kafka with."""
    own = spec.kafka.service_credentials
    named = getattr(own, _field(workload), None) if own is not None else None
    return str(named) if named else spec.kafka.credentials_secret


def database_secret(spec: FleetPipelineSpec, workload: str) -> str:
    """The Secret (key ``dsn``) ``workload`` connects to PostgreSQL with."""
    own = spec.storage.service_database_secrets
    named = getattr(own, _field(workload), None) if own is not None else None
    return str(named) if named else spec.storage.database_secret


def _secret_ref(name: str, secret: str, key: str) -> Manifest:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def kafka_login_env(spec: FleetPipelineSpec, workload: str) -> list[Manifest]:
    """The SASL login and the CA file's path of ``workload`` (nothing on a plaintext
    listener without a CA)."""
    env: list[Manifest] = []
    secret = kafka_secret(spec, workload)
    if secret:
        env.append(_secret_ref("FLEET_KAFKA__SASL_USERNAME", secret, "username"))
        env.append(_secret_ref("FLEET_KAFKA__SASL_PASSWORD", secret, "password"))
    if spec.kafka.ca_secret:
        env.append(
            {"name": "FLEET_KAFKA__SSL_CA_LOCATION", "value": f"{KAFKA_CA_DIR}/{KAFKA_CA_KEY}"}
        )
    return env


def kafka_ca_volume(spec: FleetPipelineSpec) -> tuple[list[Manifest], list[Manifest]]:
    """The CA Secret as a read-only volume and its mount (none without ``kafka.caSecret``)."""
    if not spec.kafka.ca_secret:
        return [], []
    volume = {
        "name": KAFKA_CA_VOLUME,
        "secret": {
            "secretName": spec.kafka.ca_secret,
            "items": [{"key": KAFKA_CA_KEY, "path": KAFKA_CA_KEY}],
        },
    }
    mount = {"name": KAFKA_CA_VOLUME, "mountPath": KAFKA_CA_DIR, "readOnly": True}
    return [volume], [mount]


def referenced(spec: FleetPipelineSpec) -> dict[str, str]:
    """The login Secrets the spec names → the field naming each (for a missing-Secret
    condition)."""
    found: dict[str, str] = {}
    if spec.kafka.ca_secret:
        found[spec.kafka.ca_secret] = "spec.kafka.caSecret"
    for path, own in (
        ("spec.kafka.serviceCredentials", spec.kafka.service_credentials),
        ("spec.storage.serviceDatabaseSecrets", spec.storage.service_database_secrets),
    ):
        if own is None:
            continue
        for key, secret in own.model_dump(by_alias=True).items():
            if secret:
                found.setdefault(str(secret), f"{path}.{key}")
    return found
