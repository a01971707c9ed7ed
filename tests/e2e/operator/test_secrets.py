"""Logins per service on a real API server: the FleetPipeline names a Secret per Kafka
principal and database role, the operator wires each into its own Deployment by reference, and
no secret value reaches the Deployments, the pipeline's Events or its status."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

KAFKA_LOGINS = {
    "ingest": "kafka-ingest",
    "enrichment": "kafka-enrichment",
    "detection": "kafka-detection",
    "notification": "kafka-notification",
    "storageWriter": "kafka-storage-writer",
    "kpis": "kafka-kpis",
}
DATABASE_LOGINS = {"storageWriter": "db-writer", "notification": "db-notifier"}


def _secret(kube: Any, namespace: str, name: str, **data: str) -> None:
    literals = [f"--from-literal={key}={value}" for key, value in data.items()]
    kube.run("create", "secret", "generic", name, "-n", namespace, *literals)


def test_each_service_gets_its_own_login_by_reference_and_no_secret_leaks(
    kube: Any, operator: Any, namespace: str, make_pipeline: Any
) -> None:
    known: dict[str, str] = {}  # secret value -> what it is
    for field, name in KAFKA_LOGINS.items():
        password = secrets.token_hex(16)
        known[password] = f"Kafka password of {field}"
        _secret(kube, namespace, name, username=field, password=password)
    for field, name in DATABASE_LOGINS.items():
        password = secrets.token_hex(16)
        known[password] = f"database password of {field}"
        _secret(kube, namespace, name, dsn=f"postgresql://{field}:{password}@db:5432/fleet")
    token = secrets.token_hex(16)
    known[token] = "Twilio auth token"
    _secret(
        kube, namespace, "twilio-lp", account_sid="AC42", auth_token=token, sms_from="+15550100"
    )
    _secret(kube, namespace, "kafka-ca", **{"ca.crt": "-----BEGIN CERTIFICATE-----"})

    pipeline = make_pipeline(
        fleet={"vehicles": 5000},
        kafka={"serviceCredentials": KAFKA_LOGINS, "caSecret": "kafka-ca"},
        storage={"serviceDatabaseSecrets": DATABASE_LOGINS},
        notification={"twilioSecret": "twilio-lp"},
    )
    ns, name = pipeline.namespace, pipeline.name
    obj = kube.wait_ready(ns, name)

    deployments = {
        d["metadata"]["name"].removeprefix(f"{name}-"): d
        for d in kube.json("get", "deployments", "-n", ns, "-l", f"fleetpipe.io/pipeline={name}")[
            "items"
        ]
    }
    for service, login in (
        ("ingest", "kafka-ingest"),
        ("enrichment", "kafka-enrichment"),
        ("detection", "kafka-detection"),
        ("notification", "kafka-notification"),
        ("storage-writer", "kafka-storage-writer"),
        ("kpis", "kafka-kpis"),
    ):
        (container,) = deployments[service]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        ref = env["FLEET_KAFKA__SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == (login, "password"), service
    (writer,) = deployments["storage-writer"]["spec"]["template"]["spec"]["containers"]
    dsn = {e["name"]: e for e in writer["env"]}["FLEET_POSTGRES__DSN"]
    assert dsn["valueFrom"]["secretKeyRef"]["name"] == "db-writer"

    seen = {
        "the pipeline's status": json.dumps(obj.get("status") or {}),
        "the pipeline's spec": json.dumps(obj.get("spec") or {}),
        "the namespace's Events": json.dumps(kube.json("get", "events", "-n", ns)),
        "the Deployments": json.dumps(list(deployments.values())),
        "the operator's log": operator.process.log(),
    }
    leaks = [
        f"{what} in {where}"
        for where, text in seen.items()
        for s, what in known.items()
        if s in text
    ]
    assert leaks == []
