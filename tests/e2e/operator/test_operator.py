"""The operator on a real API server, a real broker and kwok nodes (issue 6's "Must show")."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetpipe.core.kafka import Admin
from fleetpipe.core.topics import CONTRACTS
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import produce_all, wait_for

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[3] / "k8s" / "samples"

# DESIGN §4 with the CRD's defaults: ceil(events/s ÷ capacity ÷ 0.7), by hand.
REPLICAS_50K = {
    "ingest": 4,
    "enrichment": 4,
    "detection": 5,
    "notification": 1,
    "storage-writer": 8,
    "kpis": 4,
}
REPLICAS_100K = {
    "ingest": 8,
    "enrichment": 8,
    "detection": 10,
    "notification": 2,
    "storage-writer": 15,
    "kpis": 8,
}


def partitions(kafka: Any, pipeline: Any) -> dict[str, int]:
    names = pipeline.topics.model_dump()
    found = Admin(kafka.settings).partitions(names.values())
    return {field: found.get(topic, 0) for field, topic in names.items()}


def co_partitioned(counts: dict[str, int]) -> set[int]:
    """The partition counts of the topics that follow the pipeline's (not the few-partition
    ones: dead letters, KPIs)."""
    grows = {c.field for c in CONTRACTS if c.co_partitioned}
    return {n for field, n in counts.items() if field in grows}


def pods_running_on_kwok(kube: Any, namespace: str, name: str) -> int:
    pods = kube.json("get", "pods", "-n", namespace, "-l", f"fleetpipe.io/pipeline={name}")["items"]
    running = [
        p
        for p in pods
        if p["status"].get("phase") == "Running"
        and p["spec"].get("nodeName", "").startswith("kwok-node-")
        and not p["metadata"].get("deletionTimestamp")
    ]
    return len(running)


def test_sample_pipeline_grows_from_50k_to_100k_and_back(
    kube: Any, kafka: Any, operator: Any, make_pipeline: Any
) -> None:
    pipeline = make_pipeline("fleetpipeline-50k.yaml")
    ns, name = pipeline.namespace, pipeline.name

    # 50K: topics with 50 partitions, the computed replicas, pods Running on kwok nodes.
    obj = kube.wait_ready(ns, name, generation=1)
    assert obj["status"]["partitions"] == {"desired": 50, "current": 50}
    assert co_partitioned(partitions(kafka, pipeline)) == {50}
    assert kube.replicas(ns, name) == REPLICAS_50K
    wait_for(
        lambda: pods_running_on_kwok(kube, ns, name) == sum(REPLICAS_50K.values()),
        timeout=60,
        what="26 pods Running on kwok nodes",
    )
    table = kube.run("get", "fp", "-n", ns).stdout.splitlines()
    assert table[0].split() == ["NAME", "VEHICLES", "PARTITIONS", "READY", "AGE"]
    assert table[1].split()[:4] == [name, "50000", "50", "True"]

    # 100K: partitions first, then replicas; Ready within 60 s; Events for each decision.
    kube.run(
        "patch",
        "fp",
        name,
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"fleet":{"vehicles":100000}}}',
    )
    patched = time.monotonic()
    kube.wait_ready(ns, name, generation=2, timeout=60)
    took = time.monotonic() - patched
    assert co_partitioned(partitions(kafka, pipeline)) == {100}
    assert kube.replicas(ns, name) == REPLICAS_100K
    kube.wait_events(ns, name, "TopicsCreated", "ServicesCreated", "PartitionsIncreased")
    wait_for(
        lambda: [r for r, _m in kube.events(ns, name)].count("Scaled") == len(REPLICAS_100K),
        timeout=30,
        what="a Scaled Event per Deployment",
    )
    print(f"50K → 100K Ready in {took:.1f}s")

    # Back to 50K: fewer replicas, but Kafka cannot shrink topics, and the status says so.
    kube.run(
        "patch", "fp", name, "-n", ns, "--type=merge", "-p", '{"spec":{"fleet":{"vehicles":50000}}}'
    )
    obj = kube.wait_ready(ns, name, generation=3)
    assert kube.replicas(ns, name) == REPLICAS_50K
    assert co_partitioned(partitions(kafka, pipeline)) == {100}
    assert obj["status"]["partitions"] == {"desired": 50, "current": 100}
    topics = kube.condition(ns, name, "TopicsReady")
    assert topics["reason"] == "NotSupported"
    assert "cannot decrease partitions" in topics["message"]
    kube.wait_events(ns, name, "PartitionDecreaseNotSupported")
    assert kube.run("get", "fp", name, "-n", ns).stdout.splitlines()[1].split()[1:4] == [
        "50000",
        "100",
        "True",
    ]
    operator.process.check_alive()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        pytest.param(
            ("vehicles: 50000", "vehicles: 0"),
            "spec.fleet.vehicles",
            "greater than or equal to 1",
            id="no-vehicles",
        ),
        pytest.param(
            ("compression: lz4", "compression: brotli"),
            "spec.kafka.compression",
            'Unsupported value: "brotli"',
            id="unknown-compression",
        ),
        pytest.param(
            ("targetUtilisation: 0.7", "targetUtilisation: 1.5"),
            "spec.targetUtilisation",
            "less than or equal to 1",
            id="utilisation-above-one",
        ),
        pytest.param(
            (
                "targetUtilisation: 0.7",
                "targetUtilisation: 0.7\n  services: {detection: {minReplicas: 9, maxReplicas: 2}}",
            ),
            "spec.services.detection",
            "minReplicas must not exceed maxReplicas",
            id="min-above-max",
        ),
        pytest.param(
            ('mode: "Off"', "mode: Off"),
            "spec.autoscaling.mode",
            "must be of type string",
            id="bare-Off-is-a-boolean",
        ),
        pytest.param(
            ("    databaseSecret: fleetpipe-db\n", ""),
            "spec.storage.databaseSecret",
            "Required value",
            id="missing-database-secret",
        ),
        pytest.param(
            ("vehiclesPerPartition: 1000", "vehiclesPerPartition: 1"),
            "spec.fleet",
            "more than 4096 partitions",
            id="too-many-partitions",
        ),
    ],
)
def test_invalid_specs_are_refused_by_the_api_server_naming_the_field(
    kube: Any, crd: str, namespace: str, change: tuple[str, str], field: str, message: str
) -> None:
    text = (SAMPLES / "fleetpipeline-50k.yaml").read_text()
    old, new = change
    assert old in text
    result = kube.run(
        "apply", "-n", namespace, "-f", "-", stdin=text.replace(old, new), check=False
    )
    assert result.returncode != 0
    assert field in result.stderr, result.stderr
    assert message in result.stderr, result.stderr
    assert kube.run("get", "fp", "-n", namespace, "-o", "name").stdout == ""


def test_topic_suffix_is_immutable(kube: Any, operator: Any, make_pipeline: Any) -> None:
    pipeline = make_pipeline(fleet={"vehicles": 2000})
    result = kube.run(
        "patch",
        "fp",
        pipeline.name,
        "-n",
        pipeline.namespace,
        "--type=merge",
        "-p",
        '{"spec":{"kafka":{"topicSuffix":"other"}}}',
        check=False,
    )
    assert result.returncode != 0
    assert "spec.kafka.topicSuffix" in result.stderr and "immutable" in result.stderr


def test_a_deployment_scaled_or_deleted_by_hand_is_put_back(
    kube: Any, operator: Any, make_pipeline: Any
) -> None:
    pipeline = make_pipeline(fleet={"vehicles": 5000})
    ns, name = pipeline.namespace, pipeline.name
    kube.wait_ready(ns, name)
    want = kube.replicas(ns, name)["enrichment"]
    kube.run("scale", "deployment", f"{name}-enrichment", "-n", ns, "--replicas=4")
    wait_for(
        lambda: kube.replicas(ns, name)["enrichment"] == want,
        timeout=60,
        what="the hand-scaled Deployment put back",
    )
    drift = [m for r, m in kube.wait_events(ns, name, "DriftReverted") if r == "DriftReverted"]
    assert len(drift) == 1
    assert f"Deployment {name}-enrichment was" in drift[0]
    assert f"outside the operator; put back to {want} replicas" in drift[0]
    kube.run("delete", "deployment", f"{name}-detection", "-n", ns)
    wait_for(lambda: "detection" in kube.replicas(ns, name), timeout=60, what="detection recreated")
    kube.wait_ready(ns, name)


def test_lag_is_recommended_in_recommend_mode_and_applied_in_auto_mode(
    kube: Any, kafka: Any, operator: Any, make_pipeline: Any
) -> None:
    # 12 partitions; the fleet alone needs one enrichment replica.
    pipeline = make_pipeline(
        fleet={"vehicles": 12_000},
        autoscaling={"mode": "Recommend", "lagThreshold": 1000, "stabilisationSeconds": 60},
    )
    ns, name = pipeline.namespace, pipeline.name
    kube.wait_ready(ns, name)
    assert kube.replicas(ns, name)["enrichment"] == 1

    # No enrichment is running: every record on the raw topic is lag.
    produce_all(kafka.settings, pipeline.topics.raw, ((f"v{i}", b"x") for i in range(7000)))

    def enrichment_status() -> dict[str, Any]:
        status = kube.pipeline(ns, name).get("status") or {}
        return {**status.get("replicas", {}).get("enrichment", {}), "lag": status.get("lag", {})}

    # A reconcile that read the raw topic while produce_all was still writing reports less lag
    # (6,355 of 7,000 once) with the same ceil: wait for the whole lag, then check its replicas.
    seen = wait_for(
        lambda: (s := enrichment_status())["lag"].get("enrichment") == 7000 and s,
        timeout=60,
        what="all 7,000 records seen as enrichment's lag",
    )
    assert seen["lagReplicas"] == 7  # ceil(7000 / 1000)
    assert seen["recommended"] == 7
    assert kube.replicas(ns, name)["enrichment"] == 1  # Recommend changes nothing
    assert any(
        r == "ScalingRecommended" and "enrichment: 7 replicas recommended" in m
        for r, m in kube.wait_events(ns, name, "ScalingRecommended")
    )

    # More lag than partitions: KEDA's cap.
    produce_all(kafka.settings, pipeline.topics.raw, ((f"v{i}", b"x") for i in range(10_000)))
    wait_for(
        lambda: enrichment_status().get("lagReplicas") == 12,
        timeout=60,
        what="ceil(17000 / 1000) capped at 12 partitions",
    )
    assert kube.replicas(ns, name)["enrichment"] == 1

    kube.run(
        "patch",
        "fp",
        name,
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"autoscaling":{"mode":"Auto"}}}',
    )
    wait_for(
        lambda: kube.replicas(ns, name)["enrichment"] == 12,
        timeout=60,
        what="Auto applies 12 enrichment replicas",
    )
    kube.wait_ready(ns, name)
    kube.wait_events(ns, name, "AutoScaled")


def test_unreachable_kafka_degrades_the_pipeline_without_crashing_the_operator(
    kube: Any, kafka: Any, operator: Any, make_pipeline: Any
) -> None:
    pipeline = make_pipeline(fleet={"vehicles": 2000})
    ns, name = pipeline.namespace, pipeline.name
    kube.wait_ready(ns, name)
    dead = f"127.0.0.1:{free_port()}"
    kube.run(
        "patch",
        "fp",
        name,
        "-n",
        ns,
        "--type=merge",
        "-p",
        f'{{"spec":{{"kafka":{{"bootstrapServers":"{dead}"}}}}}}',
    )
    degraded = wait_for(
        lambda: (c := kube.condition(ns, name, "Degraded")).get("status") == "True" and c,
        timeout=90,
        what="Degraded",
    )
    assert degraded["reason"] == "KafkaUnreachable"
    assert dead in degraded["message"]
    ready = kube.condition(ns, name, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "KafkaUnreachable")
    kube.wait_events(ns, name, "KafkaUnreachable")
    # The children stay as they were, the operator keeps running and answering its probe.
    assert kube.replicas(ns, name)
    operator.process.check_alive()
    assert operator.healthy()

    kube.run(
        "patch",
        "fp",
        name,
        "-n",
        ns,
        "--type=merge",
        "-p",
        f'{{"spec":{{"kafka":{{"bootstrapServers":"{kafka.bootstrap}"}}}}}}',
    )
    kube.wait_ready(ns, name, timeout=120)
    assert kube.condition(ns, name, "Degraded")["status"] == "False"


def test_a_paused_pipeline_is_left_alone_until_resumed(
    kube: Any, kafka: Any, operator: Any, make_pipeline: Any
) -> None:
    pipeline = make_pipeline(fleet={"vehicles": 2000})
    ns, name = pipeline.namespace, pipeline.name
    kube.wait_ready(ns, name)
    before = kube.replicas(ns, name)
    kube.run(
        "patch",
        "fp",
        name,
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"paused":true,"fleet":{"vehicles":100000}}}',
    )
    wait_for(
        lambda: kube.condition(ns, name, "Scaling").get("reason") == "Paused",
        timeout=60,
        what="the pause seen",
    )
    assert kube.replicas(ns, name) == before
    assert co_partitioned(partitions(kafka, pipeline)) == {2}
    kube.run("patch", "fp", name, "-n", ns, "--type=merge", "-p", '{"spec":{"paused":false}}')
    kube.wait_ready(ns, name)
    assert kube.replicas(ns, name) == REPLICAS_100K
    assert co_partitioned(partitions(kafka, pipeline)) == {100}
    kube.wait_events(ns, name, "Paused", "Resumed")


@pytest.mark.parametrize(
    ("policy", "topics_left"),
    [
        pytest.param("Retain", len(CONTRACTS), id="retain-keeps-the-data"),
        pytest.param("Delete", 0, id="delete"),
    ],
)
def test_deletion_keeps_the_topics_unless_the_policy_says_delete(
    kube: Any, kafka: Any, operator: Any, make_pipeline: Any, policy: str, topics_left: int
) -> None:
    pipeline = make_pipeline(fleet={"vehicles": 2000}, deletionPolicy=policy)
    ns, name = pipeline.namespace, pipeline.name
    kube.wait_ready(ns, name)
    # Only Delete has work to do at deletion, hence a finalizer; Retain goes without one.
    finalizers = ["fleetpipe.io/finalizer"] if policy == "Delete" else []
    assert kube.pipeline(ns, name)["metadata"].get("finalizers", []) == finalizers
    kube.run("delete", "fp", name, "-n", ns, "--timeout=60s")
    names = pipeline.topics.model_dump().values()
    # The brokers' metadata may trail a deletion (or, on a loaded machine, a creation) a little.
    wait_for(
        lambda: len(Admin(kafka.settings).partitions(names)) == topics_left,
        timeout=30,
        what=f"{topics_left} of the pipeline's topics left",
    )
    # The children follow their owner (the garbage collector of kube-controller-manager).
    wait_for(lambda: not kube.replicas(ns, name), timeout=60, what="Deployments collected")
    kube.wait_events(ns, name, "TopicsRetained" if policy == "Retain" else "TopicsDeleted")


def test_the_events_of_a_reconcile_interrupted_by_sigterm_are_all_posted(
    kube: Any, operator: Any, make_pipeline: Any
) -> None:
    # A broker that does not answer: the reconcile spends the Kafka timeout (10 s) in the
    # topics step, and SIGTERM lands in the middle of it.
    dead = f"127.0.0.1:{free_port()}"
    pipeline = make_pipeline(fleet={"vehicles": 2000}, kafka={"bootstrapServers": dead})
    ns, name = pipeline.namespace, pipeline.name
    wait_for(
        lambda: f"{ns}/{name}: reconciling generation 1" in operator.process.log(),
        timeout=60,
        what="the reconcile started",
    )
    try:
        assert operator.process.stop() == 0
        # Everything that reconcile decided is on the API server once the operator is gone.
        degraded = kube.condition(ns, name, "Degraded")
        assert (degraded["status"], degraded["reason"]) == ("True", "KafkaUnreachable")
        events = kube.events(ns, name)
        assert [r for r, _m in events] == ["KafkaUnreachable"], events
        assert dead in events[0][1]
    finally:
        operator.process.start()
        wait_for(operator.healthy, timeout=60, what="the operator back")


def test_a_spec_the_api_server_refuses_applies_nothing_and_says_why(
    kube: Any, operator: Any, make_pipeline: Any
) -> None:
    # The CRD passes a service's resources through as is; the API server refuses the quantity.
    pipeline = make_pipeline(
        fleet={"vehicles": 2000},
        services={"detection": {"resources": {"requests": {"cpu": "lots"}}}},
    )
    ns, name = pipeline.namespace, pipeline.name
    events = kube.wait_events(ns, name, "ApplyRefused", timeout=60)
    refused = [m for r, m in events if r == "ApplyRefused"]
    assert len(refused) == 1
    assert f"{name}-detection" in refused[0]
    assert "quantities must match the regular expression" in refused[0], refused[0]
    degraded = kube.condition(ns, name, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ApplyRefused")
    assert kube.condition(ns, name, "Ready")["status"] == "False"
    # Nothing applied: no Deployment, no ConfigMap, not half a pipeline.
    found = kube.json(
        "get", "deployments,configmaps", "-n", ns, "-l", f"fleetpipe.io/pipeline={name}"
    )
    assert found["items"] == []


def test_the_sample_in_two_namespaces_gives_one_pipeline_and_one_conflict(
    kube: Any, kafka: Any, operator: Any, make_pipeline: Any, sample_text: Any
) -> None:
    first = make_pipeline(fleet={"vehicles": 2000})
    kube.wait_ready(first.namespace, first.name)
    # The same document, topics and all, applied in another namespace.
    doc = yaml.safe_load(
        sample_text("fleetpipeline-50k.yaml", bootstrap=kafka.bootstrap, suffix=first.suffix)
    )
    doc["spec"]["fleet"]["vehicles"] = 2000
    other = f"t-{uuid.uuid4().hex[:10]}"
    kube.create_sample_namespace(other)
    try:
        kube.run("apply", "-n", other, "-f", "-", stdin=yaml.safe_dump(doc))
        events = kube.wait_events(other, first.name, "TopicsConflict", timeout=60)
        assert f"held by FleetPipeline {first.namespace}/{first.name}" in events[-1][1]
        claimed = kube.condition(other, first.name, "TopicsClaimed")
        assert (claimed["status"], claimed["reason"]) == ("False", "TopicsConflict")
        assert kube.condition(other, first.name, "Ready")["status"] == "False"
        found = kube.json(
            "get",
            "deployments,configmaps",
            "-n",
            other,
            "-l",
            f"fleetpipe.io/pipeline={first.name}",
        )
        assert found["items"] == [], "nothing applied for the second claimant"
        assert kube.condition(first.namespace, first.name, "Ready")["status"] == "True"
        assert kube.condition(first.namespace, first.name, "TopicsClaimed")["status"] == "True"
    finally:
        kube.run("delete", "namespace", other, "--wait=false", check=False)
