"""The core's Kafka builders: nothing is connected until used, and a full queue is bounded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import confluent_kafka
import pytest

from fleetpipe.core.errors import KafkaError
from fleetpipe.core.kafka import (
    KafkaException,
    build_admin,
    build_consumer,
    build_producer,
    build_transactional_producer,
)
from fleetpipe.core.lag import PartitionLag
from fleetpipe.core.readers import build_reader, reader_config
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.transient import poll_until, retry_kafka, transient

pytestmark = pytest.mark.unit

# Nothing listens on port 1: a client that tried to connect would get no answer.
NOWHERE = KafkaSettings(bootstrap_servers="127.0.0.1:1")
BAD = {"no.such.setting": 1}


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: build_producer(NOWHERE, client_id="t", overrides=BAD), id="producer"),
        pytest.param(
            lambda: build_transactional_producer(
                NOWHERE, client_id="t", transactional_id="t-0", overrides=BAD
            ),
            id="transactional-producer",
        ),
        pytest.param(
            lambda: build_consumer(
                NOWHERE, group_id="g", client_id="t", read_committed=True, overrides=BAD
            ),
            id="consumer",
        ),
        pytest.param(lambda: build_admin(NOWHERE, overrides=BAD), id="admin"),
        pytest.param(
            lambda: build_reader(NOWHERE, client_id="t", read_committed=False, overrides=BAD),
            id="reader",
        ),
    ],
)
def test_builders_create_no_client_until_it_is_used(build: Callable[[], Any]) -> None:
    # librdkafka refuses an unknown setting when the client is created: building succeeds
    # because no client is created yet, and the first use is where the refusal surfaces.
    built = build()
    with pytest.raises(KafkaException, match=r"no\.such\.setting"):
        _ = built.client


@pytest.mark.parametrize(
    ("read_committed", "isolation"),
    [
        pytest.param(True, "read_committed", id="committed"),
        pytest.param(False, "read_uncommitted", id="uncommitted"),
    ],
)
def test_readers_never_commit_and_read_with_the_isolation_asked(
    read_committed: bool, isolation: str
) -> None:
    conf = reader_config(NOWHERE, client_id="watch", read_committed=read_committed)
    assert conf["isolation.level"] == isolation
    assert conf["enable.auto.commit"] is False
    assert conf["group.id"] == "watch-reader"


def test_partition_lag_is_a_value() -> None:
    lag = PartitionLag(topic="t", partition=0, committed=None, end=5, lag=5)
    assert lag == PartitionLag(topic="t", partition=0, committed=None, end=5, lag=5)
    with pytest.raises(AttributeError):
        lag.lag = 0  # type: ignore[misc]


def test_a_partition_answer_without_the_retriable_flag_is_still_transient() -> None:
    # list_offsets' per-partition errors carry no retriable flag: a topic just grown answers
    # NOT_LEADER_FOR_PARTITION for its new partitions until their leaders are known.
    not_leader = confluent_kafka.KafkaError(confluent_kafka.KafkaError.NOT_LEADER_FOR_PARTITION)
    assert not not_leader.retriable()
    assert transient(confluent_kafka.KafkaException(not_leader))
    refused = confluent_kafka.KafkaError(confluent_kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED)
    assert not transient(confluent_kafka.KafkaException(refused))
    assert not transient(ValueError("not Kafka's"))


def test_kafka_calls_are_repeated_while_transient_and_then_named() -> None:
    answers = iter([confluent_kafka.KafkaError.NOT_LEADER_FOR_PARTITION, None])

    def call() -> str:
        code = next(answers)
        if code is not None:
            raise confluent_kafka.KafkaException(confluent_kafka.KafkaError(code))
        return "offsets"

    assert retry_kafka(call, "listing offsets") == "offsets"

    def refused() -> None:
        raise confluent_kafka.KafkaException(
            confluent_kafka.KafkaError(confluent_kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED)
        )

    with pytest.raises(KafkaError, match="listing offsets failed"):
        retry_kafka(refused, "listing offsets")


def test_polling_stops_at_the_first_answer_that_is_done() -> None:
    answers = iter([0, 1, 2, 3, 4])

    assert poll_until(lambda: next(answers), lambda n: n >= 2, within_s=30) == 2
    assert next(answers) == 3, "not asked again once done"


def test_polling_gives_the_last_answer_when_time_runs_out() -> None:
    asked: list[int] = []

    def call() -> int:
        asked.append(len(asked))
        return asked[-1]

    assert poll_until(call, lambda _: False, within_s=0.3) == asked[-1]
    assert len(asked) > 1, "asked again until the time was up"


def test_polling_lets_the_calls_exceptions_through() -> None:
    def refused() -> int:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        poll_until(refused, lambda _: True, within_s=30)
