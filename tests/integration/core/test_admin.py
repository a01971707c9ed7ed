"""The admin client's topic configs on the real broker, as the operator aligns retention."""

from __future__ import annotations

import uuid

import pytest

from fleetpipe.core.kafka import build_admin
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.topics import TopicSpec
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
