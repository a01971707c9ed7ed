from __future__ import annotations

import pytest

from fleetpipe.core.settings import Topics
from fleetpipe_dev.stack.devstack import topic_specs

pytestmark = pytest.mark.unit


def test_pipeline_topics_are_co_partitioned_and_state_is_compacted() -> None:
    topics = Topics()
    specs = {s.name: s for s in topic_specs(topics, 50)}
    for name in (topics.raw, topics.enriched, topics.alerts, topics.trips, topics.detection_state):
        assert specs[name].partitions == 50
    assert (specs[topics.detection_state].config or {})["cleanup.policy"] == "compact"
    assert set(specs) == set(topics.model_dump().values())
