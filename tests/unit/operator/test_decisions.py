"""From what a reconcile found to the Events and conditions it reports: values in, values out."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_operator import decisions
from fleet_operator.decisions import NORMAL, WARNING, Event, Prior
from fleet_operator.sizing import LagDecision, ServicePlan, SizingPlan
from fleet_operator.spec import AutoscalingMode, Component, DeletionPolicy, parse_spec
from fleet_operator.status import DeploymentState, TopicsOutcome
from fleetpipe.core.topics import TopicAction, TopicChange

pytestmark = pytest.mark.unit

RAW_SPEC: dict[str, Any] = {
    "fleet": {"vehicles": 50_000},
    "kafka": {"bootstrapServers": "kafka:9092", "replicationFactor": 3},
    "storage": {"databaseSecret": "db"},
    "notification": {"twilioSecret": "twilio"},
}
SPEC = parse_spec(RAW_SPEC)
FRESH = Prior(generation=1, same_generation=False)


def prior(*conditions: dict[str, Any], **fields: Any) -> Prior:
    return Prior(
        generation=fields.pop("generation", 2),
        same_generation=fields.pop("same_generation", True),
        conditions=list(conditions),
        **fields,
    )


def plan_of(**desired: int) -> SizingPlan:
    """Every component at 2 replicas, except those named."""
    services = {c: ServicePlan(c, sized=2, desired=desired.get(c.key, 2)) for c in Component}
    return SizingPlan(partitions=50, services=services)


def at(replicas: int) -> DeploymentState:
    return DeploymentState(replicas, replicas, replicas, replicas, True)


def reasons(events: Any) -> list[str]:
    return [e.reason for e in events]


# ---- validating the spec -----------------------------------------------------------------
def test_an_invalid_spec_is_told_once_per_message() -> None:
    first = decisions.invalid_spec(FRESH, "spec.fleet.vehicles: must be at least 1")
    assert first.events == (
        Event(WARNING, "InvalidSpec", "spec.fleet.vehicles: must be at least 1"),
    )
    assert [(c.type, c.status, c.reason) for c in first.conditions] == [
        ("Degraded", "True", "InvalidSpec"),
        ("Ready", "False", "InvalidSpec"),
    ]
    told = prior(
        {
            "type": "Degraded",
            "reason": "InvalidSpec",
            "message": "spec.fleet.vehicles: must be at least 1",
        }
    )
    assert decisions.invalid_spec(told, "spec.fleet.vehicles: must be at least 1").events == ()
    assert reasons(decisions.invalid_spec(told, "another problem").events) == ["InvalidSpec"]


def test_pausing_is_told_once_and_resuming_only_after_a_pause() -> None:
    assert reasons(decisions.paused(FRESH).events) == ["Paused"]
    assert [(c.type, c.reason) for c in decisions.paused(FRESH).conditions] == [
        ("Scaling", "Paused")
    ]
    was_paused = prior({"type": "Scaling", "status": "False", "reason": "Paused"})
    assert decisions.paused(was_paused).events == ()
    assert reasons(decisions.resumed(was_paused)) == ["Resumed"]
    assert decisions.resumed(FRESH) == []


def test_a_missing_secret_names_the_field_that_refers_to_it() -> None:
    named = {"db": "spec.storage.databaseSecret", "twilio": "spec.notification.twilioSecret"}
    assert decisions.missing_secrets(named, ["twilio"], "ns") == [
        ("SecretMissing", "Secret twilio (spec.notification.twilioSecret) not found in ns")
    ]


# ---- topics ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("unreachable", "reason", "topics_status"),
    [
        pytest.param(True, "KafkaUnreachable", "Unknown", id="unreachable-says-nothing-of-topics"),
        pytest.param(False, "TopicsFailed", "False", id="refused-means-topics-are-wrong"),
    ],
)
def test_a_kafka_failure_degrades_with_the_other_problems(
    unreachable: bool, reason: str, topics_status: str
) -> None:
    problems = [("SecretMissing", "Secret twilio not found")]
    decision = decisions.kafka_failed(FRESH, "no broker", problems, unreachable=unreachable)
    assert decision.events == (Event(WARNING, reason, "no broker"),)
    topics, degraded, ready = decision.conditions
    assert (topics.type, topics.status, topics.reason) == ("TopicsReady", topics_status, reason)
    assert (degraded.status, degraded.reason) == ("True", reason)
    assert degraded.message == "no broker; Secret twilio not found"
    assert (ready.status, ready.reason) == ("False", reason)
    again = prior({"type": "Degraded", "status": "True", "reason": reason})
    assert decisions.kafka_failed(again, "no broker", [], unreachable=unreachable).events == ()


def test_created_and_grown_topics_are_told_with_their_partitions() -> None:
    outcome = TopicsOutcome(
        desired=100,
        current=100,
        actions={
            "b": TopicChange(TopicAction.GROWN, 50, 100, 100),
            "a": TopicChange(TopicAction.GROWN, 50, 100, 100),
            "new": TopicChange(TopicAction.CREATED, 0, 100, 100),
            "dl": TopicChange(TopicAction.OK, 6, 6, 6),
        },
    )
    events = decisions.topic_events(FRESH, SPEC, outcome, altered=["dl"])
    assert events == [
        Event(
            NORMAL,
            "TopicsCreated",
            "created 1 topics with 100 partitions (replication factor 3): new",
        ),
        Event(NORMAL, "PartitionsIncreased", "grew 2 topics (50->100) before scaling: a, b"),
        Event(NORMAL, "TopicConfigChanged", "retention.ms set to 72 h on dl"),
    ]


def test_topics_already_as_asked_say_nothing() -> None:
    outcome = TopicsOutcome(
        desired=50, current=50, actions={"a": TopicChange(TopicAction.OK, 50, 50, 50)}
    )
    assert decisions.topic_events(FRESH, SPEC, outcome, altered=[]) == []


def test_a_refused_decrease_is_told_once_per_asked_count() -> None:
    outcome = TopicsOutcome(
        desired=50, current=100, actions={"a": TopicChange(TopicAction.KEPT, 100, 100, 50)}
    )
    assert reasons(decisions.topic_events(FRESH, SPEC, outcome, [])) == [
        "PartitionDecreaseNotSupported"
    ]
    told = prior(
        {"type": "TopicsReady", "status": "True", "reason": "NotSupported"},
        partitions_desired=50,
    )
    assert decisions.topic_events(told, SPEC, outcome, []) == []
    asked_other = prior(
        {"type": "TopicsReady", "status": "True", "reason": "NotSupported"},
        partitions_desired=60,
    )
    assert reasons(decisions.topic_events(asked_other, SPEC, outcome, [])) == [
        "PartitionDecreaseNotSupported"
    ]


# ---- children ----------------------------------------------------------------------------
def test_first_apply_tells_the_deployments_created() -> None:
    events = decisions.scaling_events(
        FRESH, SPEC, plan_of(), dict.fromkeys(Component), pipeline="fleet", edited=set()
    )
    assert events == [
        Event(
            NORMAL,
            "ServicesCreated",
            "Deployments with replicas ingest=2, enrichment=2, detection=2, notification=2, "
            "storage-writer=2, kpis=2",
        )
    ]


def test_a_new_size_is_scaled_and_a_hand_edit_is_drift() -> None:
    before = {c: at(2) for c in Component}
    before[Component.DETECTION] = at(7)  # someone scaled it
    before[Component.INGEST] = at(1)  # the spec asks more
    same = prior(
        replicas={"detection": {"desired": 2}, "ingest": {"desired": 1}}, same_generation=True
    )
    events = decisions.scaling_events(same, SPEC, plan_of(), before, pipeline="fleet", edited=set())
    assert events == [
        Event(NORMAL, "Scaled", "ingest 1→2 replicas for 50000 events/s"),
        Event(
            WARNING,
            "DriftReverted",
            "Deployment fleet-detection was set to 7 replicas outside the operator; "
            "put back to 2 replicas",
        ),
    ]


def test_an_edit_reverted_unseen_is_still_told() -> None:
    before = {c: at(2) for c in Component}
    events = decisions.scaling_events(
        FRESH, SPEC, plan_of(), before, pipeline="fleet", edited={Component.NOTIFICATION}
    )
    assert events == [
        Event(
            WARNING,
            "DriftReverted",
            "Deployment fleet-notification was changed outside the operator; "
            "put back to 2 replicas",
        )
    ]


def test_lag_replicas_applied_are_autoscaled_and_recommended_only_once() -> None:
    decision = LagDecision(lag=7000, lag_replicas=7, recommended=7)
    plan = plan_of(enrichment=7)
    services = dict(plan.services)
    services[Component.ENRICHMENT] = ServicePlan(
        Component.ENRICHMENT, sized=2, desired=7, lag=decision
    )
    before = {c: at(2) for c in Component}
    events = decisions.scaling_events(
        FRESH, SPEC, SizingPlan(50, services), before, pipeline="fleet", edited=set()
    )
    assert reasons(events) == ["AutoScaled"]

    recommend = parse_spec({**RAW_SPEC, "autoscaling": {"mode": "Recommend"}})
    services[Component.ENRICHMENT] = ServicePlan(
        Component.ENRICHMENT, sized=2, desired=2, lag=decision
    )
    recommended = decisions.scaling_events(
        FRESH, recommend, SizingPlan(50, services), before, pipeline="fleet", edited=set()
    )
    assert reasons(recommended) == ["ScalingRecommended"]
    told = prior(replicas={"enrichment": {"desired": 2, "recommended": 7}})
    assert (
        decisions.scaling_events(
            told, recommend, SizingPlan(50, services), before, pipeline="fleet", edited=set()
        )
        == []
    )


# ---- status ------------------------------------------------------------------------------
def test_a_reconciled_pipeline_is_ready_once_rolled_out() -> None:
    outcome = TopicsOutcome(desired=50, current=50, actions={})
    decision = decisions.reconciled(
        FRESH,
        outcome,
        {c: at(2) for c in Component},
        plan_of(),
        mode=AutoscalingMode.OFF,
        decisions={},
        problems=[],
    )
    assert decision.events == ()
    assert [(c.type, c.status) for c in decision.conditions] == [
        ("TopicsReady", "True"),
        ("ServicesReady", "True"),
        ("Scaling", "False"),
        ("Degraded", "False"),
        ("Ready", "True"),
    ]


def test_a_problem_is_warned_about_when_its_message_is_new() -> None:
    outcome = TopicsOutcome(desired=50, current=50, actions={})
    problems = [("SecretMissing", "Secret twilio not found")]

    def warned(before: Prior) -> tuple[Event, ...]:
        return decisions.reconciled(
            before,
            outcome,
            dict.fromkeys(Component),
            plan_of(),
            mode=AutoscalingMode.OFF,
            decisions={},
            problems=problems,
        ).events

    assert warned(FRESH) == (Event(WARNING, "SecretMissing", "Secret twilio not found"),)
    told = prior({"type": "Degraded", "status": "True", "message": "Secret twilio not found"})
    assert warned(told) == ()


def test_ready_is_told_when_it_turns_true_or_for_a_new_generation() -> None:
    ready = [{"type": "Ready", "status": "True", "message": "10 replicas ready"}]
    not_ready = [{"type": "Ready", "status": "False"}]
    told_g1 = [{**ready[0], "observedGeneration": 1}]
    assert decisions.ready_event(not_ready, ready, 1) == Event(
        NORMAL, "PipelineReady", "generation 1: 10 replicas ready"
    )
    assert decisions.ready_event(told_g1, ready, 1) is None
    assert decisions.ready_event(told_g1, ready, 2) is not None
    assert decisions.ready_event(ready, not_ready, 1) is None


def test_a_refresh_writes_only_what_changed() -> None:
    desired = dict.fromkeys(Component, 2)
    rolled_out = {c: at(2) for c in Component}
    replicas = {c.key: {"desired": 2, "current": 0, "ready": 0} for c in Component}
    first = decisions.refreshed(
        prior(replicas=replicas), rolled_out, desired, mode=AutoscalingMode.OFF, decisions={}
    )
    assert first is not None
    updates, new_replicas = first
    assert new_replicas["detection"] == {"desired": 2, "current": 2, "ready": 2}
    written = [
        {"type": u.type, "status": u.status, "reason": u.reason, "message": u.message}
        for u in updates
    ]
    settled = prior(*written, replicas=new_replicas)
    assert (
        decisions.refreshed(settled, rolled_out, desired, mode=AutoscalingMode.OFF, decisions={})
        is None
    )


@pytest.mark.parametrize(
    ("states", "drifted"),
    [
        pytest.param({c: at(2) for c in Component}, False, id="as-asked"),
        pytest.param({**{c: at(2) for c in Component}, Component.INGEST: None}, True, id="deleted"),
        pytest.param({**{c: at(2) for c in Component}, Component.INGEST: at(3)}, True, id="scaled"),
    ],
)
def test_drift_is_a_deployment_deleted_or_scaled_by_others(
    states: dict[Component, DeploymentState | None], drifted: bool
) -> None:
    assert decisions.drifted(states, dict.fromkeys(Component, 2)) is drifted


# ---- deletion ----------------------------------------------------------------------------
def test_deletion_tells_what_became_of_the_data() -> None:
    names = ["fleet.raw", "fleet.alerts"]
    assert decisions.topics_finalized(DeletionPolicy.RETAIN, names) == Event(
        NORMAL, "TopicsRetained", "deletionPolicy Retain: the 2 topics keep the data"
    )
    assert decisions.topics_finalized(DeletionPolicy.DELETE, names) == Event(
        NORMAL, "TopicsDeleted", "deletionPolicy Delete: fleet.raw, fleet.alerts"
    )


def test_a_refused_apply_is_a_warning_with_the_servers_words_once_and_not_ready() -> None:
    message = "applying Deployment ns/fleet-detection: 422 Unprocessable: quantities must match"
    first = decisions.apply_refused(Prior(generation=2, same_generation=False), message)
    assert first.events == (Event(WARNING, "ApplyRefused", message),)
    by_type = {c.type: c for c in first.conditions}
    assert (by_type["Degraded"].status, by_type["Degraded"].reason) == ("True", "ApplyRefused")
    assert (by_type["Ready"].status, by_type["Ready"].message) == ("False", message)
    said = [{"type": "Degraded", "status": "True", "reason": "ApplyRefused", "message": message}]
    again = decisions.apply_refused(
        Prior(generation=2, same_generation=True, conditions=said), message
    )
    assert again.events == ()
