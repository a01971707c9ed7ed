"""The operator's own Kafka login: the shared credentials and the CA the FleetPipeline names,
read from their Secrets and handed to its admin client as the services get them."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_operator.kafka_login import KafkaLogin, kafka_settings
from fleet_operator.spec import parse_spec
from support.pipelinespecs import scram_spec, with_kafka

from .conftest import World

pytestmark = pytest.mark.unit

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
SPEC = scram_spec(
    kafka={"replicationFactor": 1, "credentialsSecret": "kafka-operator", "caSecret": "kafka-ca"}
)


def _spec(**kafka: Any) -> dict[str, Any]:
    return with_kafka(SPEC, **kafka)


def test_the_admin_client_verifies_the_broker_with_the_named_ca_and_logs_in() -> None:
    login = KafkaLogin({"username": "operator", "password": "s3cret"}, PEM)
    config = kafka_settings(parse_spec(_spec()), login).client_config()
    assert config == {
        "bootstrap.servers": "kafka-0:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "operator",
        "sasl.password": "s3cret",
        "ssl.ca.pem": PEM,
        "reconnect.backoff.max.ms": 1000,
    }


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_a_listener_without_tls_gets_no_ca(protocol: str) -> None:
    spec = parse_spec(_spec(securityProtocol=protocol))
    config = kafka_settings(spec, KafkaLogin({"username": "u", "password": "p"}, PEM))
    assert "ssl.ca.pem" not in config.client_config()
    assert "ssl.ca.location" not in config.client_config()


def test_the_reconciler_reads_the_ca_secret_for_every_kafka_call(world: World) -> None:
    world.kube.secrets |= {"kafka-operator", "kafka-ca"}
    ref = world.kube.add_pipeline("fleet", _spec())
    world.reconcile(ref)
    assert world.kafka.logins, "the reconcile never reached Kafka"
    for used in world.kafka.logins:
        config = used.client_config()
        # The fake Secret's value of key ca.crt in Secret kafka-ca (fakes.FakeKube).
        assert config["ssl.ca.pem"] == "kafka-ca-ca.crt"
        assert config["sasl.username"] == "kafka-operator-username"
        assert config["security.protocol"] == "SASL_SSL"


def test_a_missing_ca_secret_is_named_and_no_ca_is_made_up(world: World) -> None:
    world.kube.secrets |= {"kafka-operator"}
    ref = world.kube.add_pipeline("fleet", _spec())
    world.reconcile(ref)
    assert all("ssl.ca.pem" not in used.client_config() for used in world.kafka.logins)
    messages = " ".join(str(c.get("message", "")) for c in world.kube.status(ref)["conditions"])
    assert "spec.kafka.caSecret" in messages and "kafka-ca" in messages, messages
