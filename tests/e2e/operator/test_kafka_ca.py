"""The operator's own login on a broker with a private CA, on a real API server and the
session broker's SASL_SSL listener: without the CA the FleetPipeline names, the operator
cannot verify the broker and says so; with it, it creates the topics as its own principal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleetpipe.core.kafka import Admin
from fleetpipe_dev.testing import wait_for
from support.security import SaslLogin
from support.servers import BrokerHandle

pytestmark = pytest.mark.e2e


def test_the_operator_verifies_the_broker_with_the_ca_the_pipeline_names(
    kube: Any, operator: Any, make_pipeline: Any, kafka: BrokerHandle, sasl_login: SaslLogin
) -> None:
    password = kafka.security.passwords()["operator"]
    pipeline = make_pipeline(kafka=sasl_login.kafka_spec(ca=False))
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
        "-p", json.dumps({"spec": {"kafka": {"caSecret": SaslLogin.CA_SECRET}}}),
    )  # fmt: skip
    kube.wait_ready(ns, name, timeout=120)
    # Created over SASL_SSL as User:operator, the broker verified with the Secret's CA.
    topics = pipeline.topics
    created = admin.partitions([topics.raw, topics.enriched, topics.alerts])
    assert sorted(created) == sorted([topics.raw, topics.enriched, topics.alerts])
    assert min(created.values()) >= 1
    status = kube.pipeline(ns, name)["status"]
    assert password not in str(status)
