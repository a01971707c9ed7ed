"""The topic contract: one row per topic, read by settings, the local stack and the operator."""

from __future__ import annotations

import pytest

from fleetpipe.core.settings import Topics
from fleetpipe.core.topics import (
    CONTRACTS,
    DEADLETTER,
    DETECTION_STATE,
    KPI_STATE,
    KPIS,
    Cleanup,
    TopicAction,
    TopicChange,
    co_partitioned,
    topic_specs,
)

pytestmark = pytest.mark.unit


def test_pipeline_topics_are_co_partitioned_and_state_is_compacted() -> None:
    topics = Topics()
    specs = {s.name: s for s in topic_specs(topics, 50)}
    for name in (topics.raw, topics.enriched, topics.alerts, topics.trips, topics.detection_state):
        assert specs[name].partitions == 50
    assert (specs[topics.detection_state].config or {})["cleanup.policy"] == "compact"
    assert set(specs) == set(topics.model_dump().values())


def test_every_settings_topic_has_exactly_one_contract_with_its_default_name() -> None:
    assert [c.field for c in CONTRACTS] == list(Topics.model_fields)
    assert {c.field: c.name for c in CONTRACTS} == Topics().model_dump()


def test_suffixed_names_keep_the_contract() -> None:
    topics = Topics.with_suffix("t1")
    specs = {s.name: s for s in topic_specs(topics, 12)}
    assert specs["fleet.deadletter.v1.t1"].partitions == 6
    assert specs["fleet.detection.state.v1.t1"].config == {
        "cleanup.policy": "compact",
        "min.compaction.lag.ms": "0",
        "segment.ms": "600000",
    }
    assert "fleet.deadletter.v1.t1" not in co_partitioned(topics)
    assert "fleet.kpis.v1.t1" not in co_partitioned(topics)
    assert len(co_partitioned(topics)) == len(CONTRACTS) - 2
    assert KPIS.partitions(50) == 6


@pytest.mark.parametrize(
    ("pipeline", "deadletter"),
    [
        pytest.param(1, 1, id="one-partition-pipeline"),
        pytest.param(4, 4, id="small-pipeline-follows"),
        pytest.param(100, 6, id="large-pipeline-capped"),
    ],
)
def test_the_deadletter_topic_follows_the_pipeline_up_to_its_cap(
    pipeline: int, deadletter: int
) -> None:
    assert DEADLETTER.partitions(pipeline) == deadletter


def test_retention_and_replication_apply_to_deleted_topics_only() -> None:
    topics = Topics()
    specs = topic_specs(topics, 3, replication_factor=3, retention_ms=3_600_000)
    assert {s.replication_factor for s in specs} == {3}
    for spec in specs:
        config = dict(spec.config or {})
        if spec.name in (topics.detection_state, topics.kpi_state):
            assert "retention.ms" not in config
            assert config["cleanup.policy"] == Cleanup.COMPACT
        else:
            assert config == {"retention.ms": "3600000"}


def test_without_retention_deleted_topics_take_the_broker_defaults() -> None:
    specs = {s.name: s for s in topic_specs(Topics(), 3)}
    assert [n for n, s in specs.items() if s.config is not None] == [
        DETECTION_STATE.name,
        KPI_STATE.name,
    ]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        pytest.param(TopicChange(TopicAction.CREATED, 0, 50, 50), "created", id="created"),
        pytest.param(TopicChange(TopicAction.GROWN, 50, 100, 100), "grown 50->100", id="grown"),
        pytest.param(TopicChange(TopicAction.OK, 50, 50, 50), "ok", id="ok"),
        pytest.param(TopicChange(TopicAction.KEPT, 100, 100, 50), "kept 100 (asked 50)", id="kept"),
    ],
)
def test_a_topic_change_reads_as_the_local_stack_prints_it(change: TopicChange, said: str) -> None:
    assert str(change) == said
