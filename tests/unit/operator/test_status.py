"""Conditions: transitions, readiness arithmetic and the reasons other code relies on."""

from __future__ import annotations

import pytest

from fleet_operator.spec import Component
from fleet_operator.status import (
    Condition,
    DeploymentState,
    TopicsOutcome,
    merge_conditions,
    ready_condition,
    services_condition,
    topics_condition,
)

pytestmark = pytest.mark.unit

ALL_TWO = dict.fromkeys(Component, 2)


def test_transition_time_changes_only_when_the_status_does() -> None:
    first = merge_conditions(
        [], [Condition.of("Ready", False, "ReplicasNotReady")], now="t1", generation=1
    )
    same = merge_conditions(
        first, [Condition.of("Ready", False, "Other", "m")], now="t2", generation=2
    )
    flipped = merge_conditions(
        same, [Condition.of("Ready", True, "PipelineReady")], now="t3", generation=2
    )
    assert [c["lastTransitionTime"] for c in (first[0], same[0], flipped[0])] == ["t1", "t1", "t3"]
    assert same[0]["reason"] == "Other"
    assert flipped[0]["observedGeneration"] == 2


def test_conditions_not_updated_are_kept_in_a_fixed_order() -> None:
    before = merge_conditions(
        [],
        [Condition.of("Degraded", False, "AsExpected"), Condition.of("Ready", True, "x")],
        now="t1",
        generation=1,
    )
    after = merge_conditions(
        before, [Condition.of("Scaling", True, "ScalingUp")], now="t2", generation=1
    )
    assert [c["type"] for c in after] == ["Ready", "Scaling", "Degraded"]


@pytest.mark.parametrize(
    ("state", "ready"),
    [
        pytest.param(DeploymentState(2, 2, 2, 2, True), True, id="rolled-out"),
        pytest.param(DeploymentState(2, 2, 1, 2, True), False, id="one-not-ready"),
        pytest.param(DeploymentState(2, 3, 2, 2, True), False, id="old-pod-still-there"),
        pytest.param(DeploymentState(2, 2, 2, 2, False), False, id="controller-not-caught-up"),
        pytest.param(DeploymentState(3, 3, 3, 3, True), False, id="not-the-desired-count"),
    ],
)
def test_services_are_ready_only_when_every_deployment_rolled_out(
    state: DeploymentState, ready: bool
) -> None:
    states = {c: DeploymentState(2, 2, 2, 2, True) for c in Component}
    states[Component.DETECTION] = state
    condition = services_condition(states, ALL_TWO)
    assert (condition.status == "True") is ready


def test_a_refused_shrink_is_not_supported_but_topics_stay_ready() -> None:
    condition = topics_condition(TopicsOutcome(desired=50, current=100, actions={}))
    assert (condition.status, condition.reason) == ("True", "NotSupported")
    assert "100" in condition.message and "50" in condition.message


def test_degraded_wins_over_everything_in_ready() -> None:
    ok = Condition.of("X", True, "Fine")
    degraded = Condition.of("Degraded", True, "KafkaUnreachable", "no broker")
    ready = ready_condition(ok, ok, degraded)
    assert (ready.status, ready.reason, ready.message) == ("False", "KafkaUnreachable", "no broker")


def test_topics_short_of_partitions_are_not_ready() -> None:
    condition = topics_condition(TopicsOutcome(desired=100, current=50, actions={}))
    assert (condition.status, condition.reason) == ("False", "PartitionsPending")
