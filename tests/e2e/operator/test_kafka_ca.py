"""The operator's own login on a broker with a private CA, on a real API server and the
session broker's SASL_SSL listener: without the CA the FleetPipeline names, the operator
cannot verify the broker and says so; with it, it creates the topics as its own principal."""

from __future__ import annotations

from typing import Any

import pytest

from fleetpipe.core.kafka import Admin
from fleetpipe_dev.testing import wait_for
from support.servers import BrokerHandle

pytestmark = pytest.mark.e2e


def test_the_operator_verifies_the_broker_with_the_ca_the_pipeline_names(
    kube: Any, operator: Any, namespace: str, make_pipeline: Any, kafka: BrokerHandle
) -> None:
    security = kafka.security
    password = security.passwords()["operator"]
    kube.run(
        "create", "secret", "generic", "kafka-operator-login", "-n", namespace,
        "--from-literal=username=operator", f"--from-literal=password={password}",
    )  # fmt: skip
    kube.run(
        "create", "secret", "generic", "kafka-private-ca", "-n", namespace,
        f"--from-file=ca.crt={security.ca_file}",
    )  # fmt: skip
    pipeline = make_pipeline(
        kafka={
            "bootstrapServers": security.bootstrap,
            "securityProtocol": "SASL_SSL",
            "saslMechanism": "SCRAM-SHA-512",
            "credentialsSecret": "kafka-operator-login",
        }
    )
    ns, name = pipeline.namespace, pipeline.name

    # No CA named: the broker's certificate, signed by a CA no system store holds, is refused.
    def unreachable() -> dict[str, Any] | None:
        ready = kube.condition(ns, name, "Ready")
        return ready if ready.get("reason") in ("KafkaUnreachable", "TopicsFailed") else None

    refused = wait_for(unreachable, timeout=90, what="the pipeline to say Kafka failed it")
    assert refused["status"] == "False", refused
    admin = Admin(kafka.settings)
    assert admin.partitions([pipeline.topics.raw]) == {}

    kube.run(
        "patch", "fleetpipeline", name, "-n", ns, "--type=merge",
        "-p", '{"spec": {"kafka": {"caSecret": "kafka-private-ca"}}}',
    )  # fmt: skip
    kube.wait_ready(ns, name, timeout=120)
    # Created over SASL_SSL as User:operator, the broker verified with the Secret's CA.
    topics = pipeline.topics
    created = admin.partitions([topics.raw, topics.enriched, topics.alerts])
    assert sorted(created) == sorted([topics.raw, topics.enriched, topics.alerts])
    assert min(created.values()) >= 1
    status = kube.pipeline(ns, name)["status"]
    assert password not in str(status)
