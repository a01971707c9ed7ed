"""One Kafka principal per service on the broker's SASL_SSL listener: each may do its own
part of the data flow and is refused the rest, in the broker's words.

The session's broker runs KRaft's StandardAuthorizer with the ACLs of
``fleetpipe.core.access``; these tests log in as each service over TLS with SCRAM-SHA-512.
"""

from __future__ import annotations

import uuid

import pytest

from fleetpipe.core.access import Principal, default_group
from fleetpipe.core.acls import check_login
from fleetpipe.core.errors import KafkaError
from fleetpipe.core.kafka import KafkaException, build_admin, build_consumer
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.core.topics import TopicSpec
from fleetpipe_dev.testing import produce_all, read_all, wait_for
from support.security import produce_one, produce_refusal, read_refusal
from support.servers import BrokerHandle

pytestmark = pytest.mark.integration

TOPIC_REFUSED = "TOPIC_AUTHORIZATION_FAILED"


def login(kafka: BrokerHandle, principal: Principal) -> KafkaSettings:
    return kafka.security.client_settings(principal.value)


@pytest.mark.parametrize(
    ("principal", "field"),
    [
        pytest.param(Principal.INGEST, "raw", id="ingest-writes-raw"),
        pytest.param(Principal.ENRICHMENT, "enriched", id="enrichment-writes-enriched"),
        pytest.param(Principal.DETECTION, "alerts", id="detection-writes-alerts"),
        pytest.param(Principal.DETECTION, "detection_state", id="detection-writes-its-changelog"),
        pytest.param(Principal.NOTIFICATION, "notifications", id="notification-writes-outcomes"),
        pytest.param(Principal.STORAGE_WRITER, "deadletter", id="storage-writer-dead-letters"),
    ],
)
def test_a_service_writes_its_own_topic_over_sasl_ssl(
    kafka: BrokerHandle, topics: Topics, principal: Principal, field: str
) -> None:
    topic = getattr(topics, field)
    produce_one(login(kafka, principal), topic)
    assert len(read_all(kafka.settings, topic, read_committed=False, idle_s=0.2)) == 1


@pytest.mark.parametrize(
    ("principal", "field"),
    [
        pytest.param(Principal.ENRICHMENT, "raw", id="enrichment-reads-raw"),
        pytest.param(Principal.DETECTION, "enriched", id="detection-reads-enriched"),
        pytest.param(Principal.NOTIFICATION, "alerts", id="notification-reads-alerts"),
        pytest.param(Principal.STORAGE_WRITER, "trips", id="storage-writer-reads-trips"),
        pytest.param(Principal.CONSOLE, "notifications", id="console-reads-outcomes"),
    ],
)
def test_a_service_reads_its_own_input_over_sasl_ssl(
    kafka: BrokerHandle, topics: Topics, principal: Principal, field: str
) -> None:
    topic = getattr(topics, field)
    produce_all(kafka.settings, topic, [(b"v-1", b"one"), (b"v-2", b"two")])
    got = read_all(login(kafka, principal), topic, read_committed=False, idle_s=0.2)
    assert sorted(m.value() or b"" for m in got) == [b"one", b"two"]


@pytest.mark.parametrize(
    ("principal", "field"),
    [
        pytest.param(Principal.INGEST, "alerts", id="ingest-cannot-write-alerts"),
        pytest.param(Principal.INGEST, "enriched", id="ingest-cannot-write-enriched"),
        pytest.param(Principal.NOTIFICATION, "raw", id="notification-cannot-write-telemetry"),
        pytest.param(Principal.STORAGE_WRITER, "alerts", id="storage-writer-cannot-write-alerts"),
        pytest.param(Principal.ENRICHMENT, "alerts", id="enrichment-cannot-write-alerts"),
    ],
)
def test_a_service_is_refused_a_topic_it_must_not_write(
    kafka: BrokerHandle, topics: Topics, principal: Principal, field: str
) -> None:
    topic = getattr(topics, field)
    refusal = produce_refusal(login(kafka, principal), topic)
    assert "Topic authorization failed" in refusal, refusal
    assert topic in refusal and "\n" not in refusal
    assert read_all(kafka.settings, topic, read_committed=False, idle_s=0.2) == []


@pytest.mark.parametrize(
    ("principal", "field"),
    [
        pytest.param(Principal.INGEST, "enriched", id="ingest-cannot-read-enriched"),
        pytest.param(Principal.INGEST, "alerts", id="ingest-cannot-read-alerts"),
        pytest.param(Principal.ENRICHMENT, "alerts", id="enrichment-cannot-read-alerts"),
        pytest.param(Principal.NOTIFICATION, "enriched", id="notification-cannot-read-telemetry"),
    ],
)
def test_a_service_is_refused_a_topic_it_must_not_read(
    kafka: BrokerHandle, topics: Topics, principal: Principal, field: str
) -> None:
    topic = getattr(topics, field)
    produce_all(kafka.settings, topic, [(b"v-1", b"secret reading")])
    said = read_refusal(login(kafka, principal), topic)
    assert TOPIC_REFUSED in said and topic in said, said
    assert "\n" not in said


def test_a_service_cannot_join_another_services_group(kafka: BrokerHandle, topics: Topics) -> None:
    # Detection may read the enriched topic, but only in its own group: not as the storage
    # writer, whose committed offsets it would move.
    consumer = build_consumer(
        login(kafka, Principal.DETECTION),
        group_id=default_group(Principal.STORAGE_WRITER),
        client_id="least-privilege-test",
        read_committed=True,
    )
    errors: list[str] = []
    try:
        consumer.subscribe([topics.enriched])

        def refused() -> bool:
            try:
                for msg in consumer.consume(10, 0.5):
                    error = msg.error()
                    if error is not None:
                        errors.append(error.name())
            except KafkaException as exc:
                errors.append(exc.args[0].name())
            return bool(errors)

        wait_for(refused, timeout=30, what="the group's refusal")
    finally:
        consumer.close()
    assert errors[0] == "GROUP_AUTHORIZATION_FAILED"


def test_only_the_operator_creates_topics(kafka: BrokerHandle) -> None:
    name = f"{Topics().raw}.{uuid.uuid4().hex[:10]}"
    with pytest.raises(KafkaError, match=r"TOPIC_AUTHORIZATION_FAILED|CLUSTER_AUTHORIZATION"):
        build_admin(login(kafka, Principal.INGEST), timeout_s=20).ensure_topics(
            [TopicSpec(name, 1)]
        )
    operator = build_admin(login(kafka, Principal.OPERATOR), timeout_s=20)
    operator.ensure_topics([TopicSpec(name, 2)])
    assert build_admin(kafka.settings).partitions([name]) == {name: 2}


def test_a_wrong_password_is_refused_in_one_clear_line(kafka: BrokerHandle) -> None:
    user = Principal.INGEST.value
    assert check_login(kafka.security.client_settings(user), timeout_s=10) == 1
    wrong = kafka.security.client_settings(user, password="not-the-password")
    with pytest.raises(KafkaError) as refused:
        check_login(wrong, timeout_s=10)
    message = str(refused.value)
    assert message.startswith(f"Kafka refused the login of {user}: "), message
    assert "Authentication failed" in message and "SCRAM-SHA-512" in message, message
    assert "not-the-password" not in message and "\n" not in message
