from __future__ import annotations

import pytest
from pydantic import ValidationError

from fleetpipe.core.kafka import consumer_config, producer_config
from fleetpipe.core.settings import KafkaSettings, ServiceSettings, Topics

pytestmark = pytest.mark.unit


def test_nested_settings_come_from_fleet_prefixed_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLEET_KAFKA__BOOTSTRAP_SERVERS", "10.0.0.1:9092")
    monkeypatch.setenv("FLEET_TOPICS__RAW", "custom.raw")
    monkeypatch.setenv("FLEET_INSTANCE_ID", "pod-7")
    settings = ServiceSettings()
    assert settings.kafka.bootstrap_servers == "10.0.0.1:9092"
    assert settings.topics.raw == "custom.raw"
    assert settings.topics.enriched == "fleet.telemetry.enriched.v1"
    assert settings.instance_id == "pod-7"


def test_settings_are_frozen() -> None:
    settings = ServiceSettings()
    with pytest.raises(ValidationError):
        settings.instance_id = "other"


def test_secret_never_appears_in_repr_or_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_KAFKA__SASL_PASSWORD", "hunter2-very-secret")
    monkeypatch.setenv("FLEET_KAFKA__SASL_USERNAME", "svc")
    settings = ServiceSettings()
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())
    assert settings.kafka.client_config()["sasl.password"] == "hunter2-very-secret"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("FLEET_KAFKA__MAX_BATCH", "0", id="batch-below-one"),
        pytest.param("FLEET_KAFKA__COMPRESSION_TYPE", "brotli", id="unknown-codec"),
        pytest.param("FLEET_OBSERVABILITY__HTTP_PORT", "70000", id="port-out-of-range"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as info:
        ServiceSettings()
    field = variable.removeprefix("FLEET_").split("__")[-1].lower()
    assert field in str(info.value)


def test_topics_with_suffix_renames_every_topic() -> None:
    topics = Topics.with_suffix("t1")
    assert all(name.endswith(".t1") for name in topics.model_dump().values())
    assert topics.raw == "fleet.telemetry.raw.v1.t1"


def test_kafka_client_config_has_no_sasl_keys_by_default() -> None:
    conf = KafkaSettings().client_config()
    assert conf == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "PLAINTEXT",
        "reconnect.backoff.max.ms": 1000,
    }


def test_transactional_producers_back_off_briefly_and_consumers_fetch_as_configured() -> None:
    kafka = KafkaSettings(
        transaction_retry_backoff_ms=15, fetch_min_bytes=65536, fetch_wait_max_ms=20
    )
    txn = producer_config(kafka, client_id="x", transactional_id="t")
    assert txn["retry.backoff.ms"] == 15
    assert txn["transactional.id"] == "t"
    plain = producer_config(kafka, client_id="x")
    assert "retry.backoff.ms" not in plain, "plain producers keep librdkafka's default"
    conf = consumer_config(kafka, group_id="g", client_id="c", read_committed=True)
    assert (conf["fetch.min.bytes"], conf["fetch.wait.max.ms"]) == (65536, 20)
    assert KafkaSettings().transaction_retry_backoff_ms == 10
    with pytest.raises(ValidationError):
        KafkaSettings(fetch_min_bytes=0)
