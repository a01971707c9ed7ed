"""A producer's callbacks read any report without raising, and a refused right becomes one
line naming the principal and the right."""

from __future__ import annotations

import confluent_kafka
import pytest

from fleetpipe.core.access import Principal, written_topics
from fleetpipe.core.deliveries import DeliveryTracker, record_place
from fleetpipe.core.errors import KafkaError, KafkaRightMissing
from fleetpipe.core.preflight import topics_written_by
from fleetpipe.core.rights import principal_of, producer_refusal
from fleetpipe.core.settings import KafkaSettings, Topics

pytestmark = pytest.mark.unit

Code = confluent_kafka.KafkaError


class Report:
    """A delivery report's message as librdkafka may hand it over."""

    def __init__(self, topic: str | None, partition: int | None) -> None:
        self._topic, self._partition = topic, partition

    def topic(self) -> str | None:
        return self._topic

    def partition(self) -> int | None:
        return self._partition


class GoneRecord:
    """A report whose record the library cannot describe any more."""

    def topic(self) -> str:
        raise RuntimeError("no topic")

    def partition(self) -> int:
        raise RuntimeError("no partition")


@pytest.mark.parametrize(
    ("msg", "produced", "said"),
    [
        pytest.param(Report("raw", 3), {"raw"}, "raw[3]", id="placed"),
        pytest.param(Report("raw", -1), {"raw"}, "raw", id="not-yet-placed"),
        pytest.param(Report(None, None), {"raw"}, "raw", id="no-topic-one-produced"),
        pytest.param(Report("", None), {"raw", "dl"}, "one of dl, raw", id="no-topic-two"),
        pytest.param(GoneRecord(), {"raw"}, "raw", id="report-raises"),
        pytest.param(None, set(), "?", id="no-message"),
    ],
)
def test_a_record_is_placed_from_whatever_its_report_holds(
    msg: object, produced: set[str], said: str
) -> None:
    assert record_place(msg, produced=produced) == said


def test_a_failed_report_without_a_topic_is_named_by_what_was_produced() -> None:
    tracker = DeliveryTracker("User:console")
    tracker.produced.add("fleet.telemetry.raw.v1")
    tracker.on_delivery(Code(Code._FATAL, "producer id refused"), Report(None, None))
    assert tracker.failures == ["fleet.telemetry.raw.v1: producer id refused"]


def test_a_refused_producer_id_names_the_principal_and_the_missing_right() -> None:
    tracker = DeliveryTracker("User:console")
    tracker.on_error(Code(Code._TRANSPORT, "broker down"))  # transient: not kept
    assert tracker.fatal is None
    refused = Code(
        Code.CLUSTER_AUTHORIZATION_FAILED, "Failed to acquire idempotence PID", fatal=True
    )
    tracker.on_error(refused)
    tracker.on_error(Code(Code._FATAL, "a later one", fatal=True))  # the first one stays
    fatal = tracker.fatal
    assert isinstance(fatal, KafkaRightMissing)
    assert (fatal.principal, fatal.right) == ("User:console", "WRITE")
    message = str(fatal)
    assert message.startswith("Kafka refused User:console a producer id: it may write no topic")
    assert "CLUSTER_AUTHORIZATION_FAILED" in message and "grant User:console WRITE" in message
    assert "\n" not in message


def test_a_refused_transactional_id_is_named() -> None:
    err = Code(Code.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "denied", fatal=True)
    refused = producer_refusal(err, principal="User:ingest", transactional_id="fleetpipe-x-0")
    assert refused is not None
    assert "User:ingest its transactional id 'fleetpipe-x-0'" in str(refused)


def test_another_fatal_error_is_kept_as_a_plain_kafka_error() -> None:
    tracker = DeliveryTracker("User:detection", "fleetpipe-detection-0")
    tracker.on_error(Code(Code._FENCED, "fenced by a newer instance", fatal=True))
    assert type(tracker.fatal) is KafkaError
    assert "User:detection failed for good: fenced by a newer instance" in str(tracker.fatal)


def test_the_principal_is_the_sasl_login_or_anonymous() -> None:
    assert principal_of(KafkaSettings(sasl_username="ingest")) == "User:ingest"
    assert principal_of(KafkaSettings()) == "User:ANONYMOUS"


def test_a_service_is_held_to_the_topics_its_principal_writes() -> None:
    topics = Topics.with_suffix("t1")
    assert topics_written_by("ingest", topics) == [topics.raw, topics.deadletter]
    assert topics_written_by("detection", topics) == written_topics(Principal.DETECTION, topics)
    # A stage with no principal of its own writes dead letters like every stage.
    assert topics_written_by("passthrough", topics) == [topics.deadletter]
    assert topics_written_by("console", topics) == [topics.deadletter]
