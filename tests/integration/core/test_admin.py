"""The admin client on the real broker: topics it creates or grows are in the metadata when it
returns, and topic configs as the operator aligns retention."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import pytest

from fleetpipe.core.errors import KafkaError
from fleetpipe.core.kafka import Admin, build_admin
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.topics import TopicAction, TopicChange, TopicSpec
from fleetpipe_dev.testing import wait_for

pytestmark = pytest.mark.integration


def test_setting_one_topic_config_leaves_the_others_as_they_were(
    kafka_settings: KafkaSettings,
) -> None:
    topic = f"cfg-{uuid.uuid4().hex[:10]}"
    admin = build_admin(kafka_settings)
    admin.ensure_topics(
        [TopicSpec(topic, 1, config={"retention.ms": "3600000", "cleanup.policy": "compact"})]
    )
    assert admin.topic_config([topic], "retention.ms") == {topic: "3600000"}

    admin.set_topic_config("retention.ms", {topic: "7200000"})

    # The broker applies a config change shortly after answering the request.
    wait_for(
        lambda: admin.topic_config([topic], "retention.ms") == {topic: "7200000"},
        timeout=30,
        what="the new retention",
    )
    assert admin.topic_config([topic], "cleanup.policy") == {topic: "compact"}


def test_the_broker_count_comes_from_the_metadata(kafka_settings: KafkaSettings) -> None:
    assert build_admin(kafka_settings, timeout_s=10).brokers() == 1


class _TrailingMetadata(Admin):
    """An admin whose metadata trails its topic changes, as a broker's can: after its first
    metadata read, the next ``behind`` answer what that first read found."""

    def __init__(self, kafka: KafkaSettings, *, behind: int, timeout_s: float = 30.0) -> None:
        super().__init__(kafka, timeout_s=timeout_s)
        self.behind = behind
        self.answers: list[dict[str, int]] = []

    def partitions(self, topics: Iterable[str] | None = None) -> dict[str, int]:
        found = super().partitions(topics)
        if self.answers and self.behind > 0:
            self.behind -= 1
            found = dict(self.answers[0])
        self.answers.append(found)
        return found


@pytest.mark.parametrize(
    ("before", "action"),
    [
        pytest.param(None, TopicAction.CREATED, id="created"),
        pytest.param(2, TopicAction.GROWN, id="grown"),
    ],
)
def test_ensuring_topics_returns_only_once_the_metadata_shows_their_partitions(
    kafka_settings: KafkaSettings, before: int | None, action: TopicAction
) -> None:
    topic = f"meta-{uuid.uuid4().hex[:10]}"
    if before is not None:
        build_admin(kafka_settings).ensure_topics([TopicSpec(topic, before)])
    admin = _TrailingMetadata(kafka_settings, behind=3)

    changes = admin.ensure_topics([TopicSpec(topic, 5)])

    assert changes[topic] == TopicChange(action, before or 0, 5, 5)
    assert admin.behind == 0, "it read the metadata again until it caught up"
    assert admin.answers[-1] == {topic: 5}


def test_topics_already_as_asked_take_one_metadata_read(kafka_settings: KafkaSettings) -> None:
    topic = f"meta-{uuid.uuid4().hex[:10]}"
    build_admin(kafka_settings).ensure_topics([TopicSpec(topic, 2)])
    admin = _TrailingMetadata(kafka_settings, behind=3)

    changes = admin.ensure_topics([TopicSpec(topic, 2)])

    assert changes[topic] == TopicChange(TopicAction.OK, 2, 2, 2)
    assert len(admin.answers) == 1


class _GrownMeanwhile(Admin):
    """An admin whose topic another client grows to ``to`` partitions right after its first
    metadata read, while it grows the topic itself."""

    def __init__(self, kafka: KafkaSettings, topic: str, *, to: int) -> None:
        super().__init__(kafka)
        self.other, self.topic, self.to = build_admin(kafka), topic, to
        self.reads = 0

    def partitions(self, topics: Iterable[str] | None = None) -> dict[str, int]:
        self.reads += 1
        if self.reads == 2:
            self.other.ensure_topics([TopicSpec(self.topic, self.to)])
        return super().partitions(topics)


def test_the_partitions_returned_are_those_the_metadata_shows(
    kafka_settings: KafkaSettings,
) -> None:
    topic = f"meta-{uuid.uuid4().hex[:10]}"
    build_admin(kafka_settings).ensure_topics([TopicSpec(topic, 2)])
    admin = _GrownMeanwhile(kafka_settings, topic, to=7)

    changes = admin.ensure_topics([TopicSpec(topic, 5)])

    assert changes[topic] == TopicChange(TopicAction.GROWN, 2, 7, 5), "7, not the 5 it asked"


def test_topics_the_metadata_never_shows_are_named_after_the_timeout(
    kafka_settings: KafkaSettings,
) -> None:
    topic = f"meta-{uuid.uuid4().hex[:10]}"
    admin = _TrailingMetadata(kafka_settings, behind=1_000_000, timeout_s=3)

    with pytest.raises(KafkaError, match=f"not visible in the brokers' metadata yet: {topic}$"):
        admin.ensure_topics([TopicSpec(topic, 2)])
