"""Least privilege as data: every principal's rules, and every client carrying the login."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from fleetpipe.core.access import (
    AccessRule,
    Operation,
    Pattern,
    Principal,
    Resource,
    access_rules,
    pipeline_rules,
)
from fleetpipe.core.kafka import Admin, consumer_config, producer_config
from fleetpipe.core.readers import reader_config
from fleetpipe.core.settings import KafkaSettings, Topics

pytestmark = pytest.mark.unit

TOPICS = Topics()


def _topics(principal: Principal, operation: Operation) -> set[str]:
    return {
        r.name
        for r in access_rules(principal, TOPICS)
        if r.resource is Resource.TOPIC and r.operation is operation
    }


@pytest.mark.parametrize(
    ("principal", "reads", "writes"),
    [
        pytest.param(Principal.INGEST, set(), {"raw", "deadletter"}, id="ingest"),
        pytest.param(Principal.ENRICHMENT, {"raw"}, {"enriched", "deadletter"}, id="enrichment"),
        pytest.param(
            Principal.DETECTION,
            {"enriched", "detection_state"},
            {"alerts", "trips", "scores", "detection_state", "deadletter"},
            id="detection",
        ),
        pytest.param(
            Principal.NOTIFICATION, {"alerts"}, {"notifications", "deadletter"}, id="notification"
        ),
        pytest.param(
            Principal.STORAGE_WRITER,
            {"enriched", "alerts", "trips", "scores", "deadletter", "kpis"},
            {"deadletter"},
            id="storage-writer",
        ),
        pytest.param(
            Principal.KPIS,
            {"enriched", "alerts", "kpi_state"},
            {"kpis", "kpi_state", "deadletter"},
            id="kpis",
        ),
        pytest.param(
            Principal.CONSOLE, {"alerts", "enriched", "notifications"}, set(), id="console"
        ),
    ],
)
def test_each_service_reads_and_writes_only_its_own_topics(
    principal: Principal, reads: set[str], writes: set[str]
) -> None:
    names = TOPICS.model_dump()
    assert _topics(principal, Operation.READ) == {names[f] for f in reads}
    assert _topics(principal, Operation.WRITE) == {names[f] for f in writes}


def test_no_service_of_the_data_path_may_create_or_alter_a_topic() -> None:
    for principal in Principal:
        if principal is Principal.OPERATOR:
            continue
        ops = {r.operation for r in access_rules(principal, TOPICS)}
        assert not ops & {Operation.CREATE, Operation.ALTER, Operation.ALTER_CONFIGS}, principal


def test_only_transactional_stages_get_transactional_ids_under_their_group() -> None:
    found = {
        r.principal: r.name
        for r in pipeline_rules(TOPICS)
        if r.resource is Resource.TRANSACTIONAL_ID
    }
    assert found == {
        "enrichment": "fleetpipe-enrichment",
        "detection": "fleetpipe-detection",
        "kpis": "fleetpipe-kpis",
    }


def test_prefixed_rules_cover_suffixed_topics_and_name_the_user() -> None:
    rules = access_rules(Principal.INGEST, TOPICS, pattern=Pattern.PREFIXED, user="svc-ingest")
    assert (
        AccessRule("svc-ingest", Resource.TOPIC, TOPICS.raw, Pattern.PREFIXED, Operation.WRITE)
        in rules
    )
    assert rules[0].describe().startswith("User:svc-ingest write topic fleet.")


SECURE = KafkaSettings(
    bootstrap_servers="broker:9093",
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-512",
    sasl_username="ingest",
    sasl_password=SecretStr("s3cret"),
    ssl_ca_location="/etc/ca.crt",
)
LOGIN = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": "ingest",
    "sasl.password": "s3cret",
    "ssl.ca.location": "/etc/ca.crt",
}


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(producer_config(SECURE, client_id="p"), id="producer"),
        pytest.param(
            producer_config(SECURE, client_id="p", transactional_id="t"), id="transactional"
        ),
        pytest.param(
            consumer_config(SECURE, group_id="g", client_id="c", read_committed=True),
            id="consumer",
        ),
        pytest.param(reader_config(SECURE, client_id="r", read_committed=True), id="reader"),
        pytest.param(Admin(SECURE).config, id="admin"),
    ],
)
def test_every_client_carries_the_login(config: dict[str, object]) -> None:
    assert LOGIN.items() <= config.items()


def test_the_password_never_shows_in_the_settings_repr() -> None:
    assert "s3cret" not in repr(SECURE)
    assert "s3cret" not in str(SECURE.model_dump())
