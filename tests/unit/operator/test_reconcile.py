"""The reconciler against hand-written fakes: order of work, status, Events, failures."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest

from fleet_operator.ports import Backoff, InvalidSpec
from fleetpipe.core.topics import CONTRACTS

pytestmark = pytest.mark.unit

SPEC: dict[str, Any] = {
    "fleet": {"vehicles": 50_000},
    "kafka": {"bootstrapServers": "kafka:9092", "replicationFactor": 1},
    "storage": {"databaseSecret": "db"},
    "notification": {"twilioSecret": "twilio"},
}
REPLICAS_50K = {
    "ingest": 4,
    "enrichment": 4,
    "detection": 5,
    "notification": 1,
    "storageWriter": 8,
    "kpis": 4,
}
REPLICAS_100K = {
    "ingest": 8,
    "enrichment": 8,
    "detection": 10,
    "notification": 2,
    "storageWriter": 15,
    "kpis": 8,
}


def desired(world: Any, ref: Any) -> dict[str, int]:
    return {k: v["desired"] for k, v in world.kube.status(ref)["replicas"].items()}


def test_first_reconcile_creates_topics_then_children_and_reports(world: Any) -> None:
    ref = world.kube.add_pipeline("fleet", SPEC)
    world.reconcile(ref)
    calls = world.journal.calls
    assert calls[0] == "ensure topics"
    assert calls[-1] == "patch status"
    status = world.kube.status(ref)
    assert status["observedGeneration"] == 1
    assert status["partitions"] == {"desired": 50, "current": 50}
    assert desired(world, ref) == REPLICAS_50K
    assert world.kube.condition(ref, "ServicesReady")["status"] == "False"
    assert world.kube.condition(ref, "Ready")["status"] == "False"
    assert {"TopicsCreated", "ServicesCreated"} <= set(world.events.reasons())


def test_ready_once_every_deployment_has_rolled_out(world: Any) -> None:
    ref = world.kube.add_pipeline("fleet", SPEC)
    world.reconcile(ref)
    world.kube.roll_out()
    world.reconciler.refresh("ns", "fleet")
    ready = world.kube.condition(ref, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "PipelineReady")
    assert world.events.reasons().count("PipelineReady") == 1
    world.reconciler.refresh("ns", "fleet")  # nothing changed: no second event
    assert world.events.reasons().count("PipelineReady") == 1


def _pod_gone(world: Any, deployment: str) -> None:
    """One of the Deployment's pods went away: one replica fewer ready."""
    status = world.kube.objects[("Deployment", deployment)]["status"]
    status["readyReplicas"] = status["replicas"] - 1


def test_readiness_is_written_while_a_reconcile_holds_the_pipeline(world: Any) -> None:
    ref = world.kube.add_pipeline("fleet", SPEC)
    world.reconcile(ref)
    world.kube.roll_out()
    world.reconciler.refresh("ns", "fleet")
    assert world.kube.condition(ref, "Ready")["status"] == "True"
    inside, release = threading.Event(), threading.Event()
    ensure_topics = world.kafka.ensure_topics

    def slow_topics(*args: Any) -> Any:
        inside.set()
        release.wait(10)
        return ensure_topics(*args)

    world.kafka.ensure_topics = slow_topics
    reconcile = threading.Thread(target=world.reconcile, args=(ref,))
    reconcile.start()
    try:
        assert inside.wait(5), "the reconcile is under way"
        _pod_gone(world, "fleet-enrichment")
        refresh = threading.Thread(target=world.reconciler.refresh, args=("ns", "fleet"))
        refresh.start()
        refresh.join(5)
        assert not refresh.is_alive(), "the readiness refresh waited behind the reconcile"
        assert world.kube.status(ref)["replicas"]["enrichment"]["ready"] == 3
        assert world.kube.condition(ref, "Ready")["status"] == "False"
    finally:
        release.set()
        reconcile.join(10)


def test_a_readiness_write_that_raced_another_is_made_again_from_what_is_there(
    world: Any,
) -> None:
    ref = world.kube.add_pipeline("fleet", SPEC)
    world.reconcile(ref)
    world.kube.roll_out()
    world.reconciler.refresh("ns", "fleet")
    _pod_gone(world, "fleet-enrichment")

    def another_writer() -> None:
        # A reconcile that read the Deployments before the pod went writes its own figures.
        world.kube.patch_status("ns", "fleet", {"replicas": {"detection": {"ready": 5}}})
        _pod_gone(world, "fleet-detection")

    world.kube.before_status_write = another_writer
    writes = world.journal.calls.count("patch status")
    world.reconciler.refresh("ns", "fleet")
    replicas = world.kube.status(ref)["replicas"]
    assert (replicas["enrichment"]["ready"], replicas["detection"]["ready"]) == (3, 4)
    assert world.journal.calls.count("patch status") == writes + 3, (
        "the other write, the refused one, and the one made again"
    )


def test_partitions_grow_before_any_deployment_is_scaled(world: Any) -> None:
    ref = world.kube.add_pipeline("fleet", SPEC)
    world.reconcile(ref)
    world.kube.roll_out()
    world.journal.calls.clear()
    world.kube.update_spec(ref, fleet={"vehicles": 100_000})
    world.reconcile(ref)
    calls = world.journal.calls
    first_apply = next(i for i, c in enumerate(calls) if c.startswith("apply"))
    assert calls.index("ensure topics") < first_apply
    assert set(world.kafka.topics.values()) == {100, 6}  # the dead-letter topic stays small
    assert desired(world, ref) == REPLICAS_100K
    assert "PartitionsIncreased" in world.events.reasons()
    assert world.events.reasons().count("Scaled") == 6


def test_a_smaller_fleet_scales_down_but_keeps_the_partitions(world: Any) -> None:
    ref = world.kube.add_pipeline("fleet", {**SPEC, "fleet": {"vehicles": 100_000}})
    world.reconcile(ref)
    world.kube.roll_out()
    world.kube.update_spec(ref, fleet={"vehicles": 50_000})
    world.reconcile(ref)
    world.reconcile(ref, measure_lag=True)  # a timer tick repeats nothing
    assert world.kube.status(ref)["partitions"] == {"desired": 50, "current": 100}
    assert desired(world, ref) == REPLICAS_50K
    topics = world.kube.condition(ref, "TopicsReady")
    assert topics["reason"] == "NotSupported"
    assert "keep 100" in topics["message"]
    assert world.events.reasons().count("PartitionDecreaseNotSupported") == 1


def test_a_hand_scaled_deployment_is_put_back_with_an_event(world: Any) -> None:
    ref = world.kube.add_pipeline("fleet", SPEC)
    world.reconcile(ref)
    world.kube.roll_out()
    world.kube.scale_by_hand("fleet-enrichment", 9)
    world.reconciler.refresh("ns", "fleet")  # the Deployment watch reacts at once
    assert world.kube.objects[("Deployment", "fleet-enrichment")]["spec"]["replicas"] == 4
    drift = [m for _t, r, m in world.events.posted if r == "DriftReverted"]
    assert drift == [
        "Deployment fleet-enrichment was set to 9 replicas outside the operator; "
        "put back to 4 replicas"
    ]


def test_a_hand_edit_landing_between_read_and_apply_is_still_reported(world: Any) -> None:
    ref = world.kube.add_pipeline("fleet", SPEC)
    world.reconcile(ref)
    world.kube.roll_out()

    # Someone scales while the reconcile has read the Deployments and not yet applied.
    def scale_detection(kind: str, name: str) -> bool:
        if (kind, name) != ("Deployment", "fleet-detection"):
            return False
        world.kube.scale_by_hand("fleet-detection", 7)
        return True

    world.kube.on_apply = scale_detection
    world.reconcile(ref, measure_lag=True)
    assert world.kube.objects[("Deployment", "fleet-detection")]["spec"]["replicas"] == 5
    assert [m for _t, r, m in world.events.posted if r == "DriftReverted"] == [
        "Deployment fleet-detection was changed outside the operator; put back to 5 replicas"
    ]


def test_unreachable_kafka_degrades_and_backs_off_exponentially(world: Any) -> None:
    ref = world.kube.add_pipeline("fleet", SPEC)
    world.kafka.reachable = False
    delays = []
    for retry in range(4):
        with pytest.raises(Backoff) as caught:
            world.reconcile(ref, retry=retry)
        delays.append(caught.value.delay)
    assert delays == [5, 10, 20, 40]
    degraded = world.kube.condition(ref, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "KafkaUnreachable")
    assert world.kube.condition(ref, "Ready")["status"] == "False"
    assert world.kube.condition(ref, "TopicsReady")["status"] == "Unknown"
    assert world.events.reasons().count("KafkaUnreachable") == 1
    assert not [c for c in world.journal.calls if c.startswith("apply")]
    world.kafka.reachable = True
    world.reconcile(ref)
    assert world.kube.condition(ref, "Degraded")["status"] == "False"


def test_a_missing_secret_is_named_in_the_degraded_condition(world: Any) -> None:
    world.kube.secrets.discard("twilio")
    ref = world.kube.add_pipeline("fleet", SPEC)
    world.reconcile(ref)
    degraded = world.kube.condition(ref, "Degraded")
    assert degraded["reason"] == "SecretMissing"
    assert "spec.notification.twilioSecret" in degraded["message"]
    assert ("Deployment", "fleet-notification") in world.kube.objects


def test_paused_changes_nothing_until_resumed(world: Any) -> None:
    ref = world.kube.add_pipeline("fleet", SPEC)
    world.reconcile(ref)
    world.kube.roll_out()
    world.kube.update_spec(ref, paused=True, fleet={"vehicles": 100_000})
    applied = len(world.journal.calls)
    world.reconcile(ref)
    world.reconcile(ref, measure_lag=True)
    assert world.journal.calls[applied:] == ["patch status", "patch status"]
    assert world.kube.condition(ref, "Scaling")["reason"] == "Paused"
    assert world.events.reasons().count("Paused") == 1
    world.kube.update_spec(ref, paused=False)
    world.reconcile(ref)
    assert desired(world, ref) == REPLICAS_100K
    assert "Resumed" in world.events.reasons()


def test_a_disabled_kpi_stage_is_removed_and_not_waited_for(world: Any) -> None:
    ref = world.kube.add_pipeline("fleet", SPEC)
    world.reconcile(ref)
    world.kube.roll_out()
    assert ("Deployment", "fleet-kpis") in world.kube.objects
    world.kube.update_spec(ref, kpis={"enabled": False})
    world.reconcile(ref)
    assert ("Deployment", "fleet-kpis") not in world.kube.objects
    assert ("Service", "fleet-kpis") not in world.kube.objects
    assert "kpis" not in desired(world, ref)
    world.reconciler.refresh("ns", "fleet")
    ready = world.kube.condition(ref, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "PipelineReady")
    world.kube.update_spec(ref, kpis={"enabled": True})
    world.reconcile(ref)
    assert desired(world, ref) == REPLICAS_50K
    assert world.kube.objects[("Deployment", "fleet-kpis")]["spec"]["replicas"] == 4


def test_recommend_reports_and_auto_applies_lag_replicas(world: Any) -> None:
    spec = {
        **SPEC,
        "fleet": {"vehicles": 12_000},
        "autoscaling": {"mode": "Recommend", "lagThreshold": 1000},
    }
    ref = world.kube.add_pipeline("fleet", spec)
    world.kafka.lags["fleetpipe-enrichment"] = 7000
    world.reconcile(ref, measure_lag=True)
    enrichment = world.kube.status(ref)["replicas"]["enrichment"]
    assert (enrichment["lagReplicas"], enrichment["recommended"], enrichment["desired"]) == (
        7,
        7,
        1,
    )
    assert world.kube.status(ref)["lag"]["enrichment"] == 7000
    world.kube.roll_out()
    world.reconciler.refresh("ns", "fleet")
    assert world.kube.condition(ref, "Scaling")["reason"] == "Recommendation"
    assert "ScalingRecommended" in world.events.reasons()
    world.kube.update_spec(ref, autoscaling={"mode": "Auto", "lagThreshold": 1000})
    world.kafka.lags["fleetpipe-enrichment"] = 17_000
    world.reconcile(ref, measure_lag=True)
    assert world.kube.objects[("Deployment", "fleet-enrichment")]["spec"]["replicas"] == 12
    assert "AutoScaled" in world.events.reasons()


def test_an_invalid_spec_is_reported_and_not_retried(world: Any) -> None:
    ref = world.kube.add_pipeline("fleet", {**SPEC, "fleet": {"vehicles": 0}})
    with pytest.raises(InvalidSpec, match=r"spec\.fleet\.vehicles"):
        world.reconcile(ref)
    assert world.kube.condition(ref, "Degraded")["reason"] == "InvalidSpec"


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        pytest.param(
            {"geofence": {"fences": [{"name": "x", "kind": "keep_in", "polygon": [[0, 0]] * 3}]}},
            r"spec\.rules: geofence\.fences\.0\.polygon",
            id="empty-polygon",
        ),
        pytest.param(
            {"speeding": {"tiers": [{"severity": "critical"}]}},
            r"spec\.rules: speeding\.tiers\.0",
            id="tier-without-a-bound",
        ),
    ],
)
def test_rules_detection_would_refuse_are_reported_and_keep_the_last_good_ones(
    world: Any, rules: dict[str, Any], field: str
) -> None:
    ref = world.kube.add_pipeline("fleet", {**SPEC, "rules": {"speeding": {"threshold_kmh": 90}}})
    world.reconcile(ref)
    good = world.kube.objects[("ConfigMap", "fleet-rules")]["data"]
    world.kube.update_spec(ref, rules=rules)
    with pytest.raises(InvalidSpec, match=field):
        world.reconcile(ref)
    degraded = world.kube.condition(ref, "Degraded")
    assert degraded["reason"] == "InvalidRules" and degraded["status"] == "True"
    assert world.kube.condition(ref, "Ready")["reason"] == "InvalidRules"
    warnings = [(t, r) for t, r, m in world.events.posted if re.search(field, m)]
    assert warnings == [("Warning", "InvalidRules")]
    assert world.kube.objects[("ConfigMap", "fleet-rules")]["data"] == good
    # Reconciled again with the same bad rules: no second Event.
    with pytest.raises(InvalidSpec):
        world.reconcile(ref)
    assert world.events.reasons().count("InvalidRules") == 1


@pytest.mark.parametrize(
    ("policy", "deleted", "reason"),
    [
        pytest.param("Retain", 0, "TopicsRetained", id="retain-keeps-the-data"),
        pytest.param("Delete", len(CONTRACTS), "TopicsDeleted", id="delete-removes-every-topic"),
    ],
)
def test_deletion_follows_the_deletion_policy(
    world: Any, policy: str, deleted: int, reason: str
) -> None:
    spec = {**SPEC, "deletionPolicy": policy}
    ref = world.kube.add_pipeline("fleet", spec)
    world.reconcile(ref)
    world.reconciler.delete(ref, spec)
    world.reconciler.delete(ref, spec)  # kopf may call again while the timer stops
    assert len(world.kafka.deleted) == deleted
    assert world.events.reasons().count(reason) == 1
