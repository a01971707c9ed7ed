"""A producer's callbacks read any report without raising, and a refused right becomes one
line naming the principal and the right."""

from __future__ import annotations

import confluent_kafka
import pytest

from fleetpipe.core.access import Principal, written_topics
from fleetpipe.core.deliveries import DeliveryTracker, record_place
from fleetpipe.core.errors import KafkaRightMissing
from fleetpipe.core.preflight import topics_written_by
from fleetpipe.core.rights import principal_of, producer_refusal, raise_if_refused, refusal_of
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
        pytest.param(None, set(), "?", id="no-message"),
    ],
)
def test_a_record_is_placed_from_whatever_its_report_holds(
    msg: object, produced: set[str], said: str
) -> None:
    assert record_place(msg, produced=produced) == said


def test_a_failed_report_without_a_topic_is_named_by_what_was_produced() -> None:
    tracker = DeliveryTracker()
    tracker.produced.add("fleet.telemetry.raw.v1")
    tracker.on_delivery(Code(Code.TOPIC_AUTHORIZATION_FAILED, "refused"), Report(None, None))
    assert tracker.failures == ["fleet.telemetry.raw.v1: refused"]


def test_a_report_met_while_a_fatal_error_is_pending_is_kept_not_raised() -> None:
    tracker = DeliveryTracker()
    tracker.on_delivery(Code(Code._FATAL, "purged"), GoneRecord())
    assert isinstance(tracker.pending, RuntimeError) and tracker.failures == []


def test_a_refusal_is_found_behind_the_system_error_a_callback_met() -> None:
    refused = confluent_kafka.KafkaException(
        Code(Code.CLUSTER_AUTHORIZATION_FAILED, "Failed to acquire idempotence PID", fatal=True)
    )
    try:
        try:
            raise refused
        except confluent_kafka.KafkaException as exc:
            raise SystemError("returned a result with an exception set") from exc
    except SystemError as met:
        said = refusal_of(met, "User:console")
    assert said is not None and str(said).startswith("Kafka refused User:console a producer id")


class Login:
    principal = "User:console"
    transactional_id: str | None = None


def test_a_refused_producer_id_names_the_principal_and_the_missing_right() -> None:
    refused = Code(
        Code.CLUSTER_AUTHORIZATION_FAILED, "Failed to acquire idempotence PID", fatal=True
    )
    raised = confluent_kafka.KafkaException(refused)
    with pytest.raises(KafkaRightMissing) as said:
        raise_if_refused(raised, Login())
    assert said.value.__cause__ is raised
    assert (said.value.principal, said.value.right) == ("User:console", "WRITE")
    message = str(said.value)
    assert message.startswith("Kafka refused User:console a producer id: it may write no topic")
    assert "CLUSTER_AUTHORIZATION_FAILED" in message and "grant User:console WRITE" in message
    assert "\n" not in message


def test_another_fatal_error_is_left_to_its_caller() -> None:
    fenced = confluent_kafka.KafkaException(Code(Code._FENCED, "fenced", fatal=True))
    raise_if_refused(fenced, Login())  # returns: not a refusal
    assert refusal_of(fenced, "User:detection") is None
    assert refusal_of(RuntimeError("not Kafka's"), "User:detection") is None


def test_a_refused_transactional_id_is_named() -> None:
    err = Code(Code.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "denied", fatal=True)
    refused = producer_refusal(err, principal="User:ingest", transactional_id="fleetpipe-x-0")
    assert refused is not None
    assert "User:ingest its transactional id 'fleetpipe-x-0'" in str(refused)


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
