"""The KPI stage on a real API server: every FleetPipeline runs it, sized like the other
consumers, its windows from ``spec.kpis``; bad windows are refused naming the field, and
``enabled: false`` removes its Deployment and Service while the pipeline stays Ready."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fleetpipe_dev.testing import wait_for

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[3] / "k8s" / "samples"


def _env(kube: Any, namespace: str, name: str) -> dict[str, str]:
    deployment = kube.json("get", "deployment", f"{name}-kpis", "-n", namespace)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def _kpi_children(kube: Any, namespace: str, name: str) -> list[str]:
    found = kube.json(
        "get", "deployments,services", "-n", namespace, "-l", f"fleetpipe.io/pipeline={name}"
    )
    return sorted(
        f"{item['kind']}/{item['metadata']['name']}"
        for item in found["items"]
        if item["metadata"]["name"] == f"{name}-kpis"
    )


def test_a_pipeline_runs_the_kpi_stage_sized_and_removes_it_when_disabled(
    kube: Any, operator: Any, make_pipeline: Any
) -> None:
    # 3000 vehicles at 5 events/s: 15K events/s ÷ (20K × 0.7) → 2 replicas, within 3 partitions.
    pipeline = make_pipeline(
        fleet={"vehicles": 3000, "eventsPerVehiclePerSecond": 5},
        kpis={"windowSeconds": 60, "hopSeconds": 10, "allowedLatenessSeconds": 5},
    )
    ns, name = pipeline.namespace, pipeline.name
    obj = kube.wait_ready(ns, name, generation=1)
    assert kube.replicas(ns, name)["kpis"] == 2
    status = obj["status"]["replicas"]["kpis"]
    assert (status["sized"], status["desired"], status["ready"]) == (2, 2, 2)
    env = _env(kube, ns, name)
    assert env["FLEET_GROUP_ID"] == f"fleetpipe-kpis.{pipeline.suffix}"
    assert (env["FLEET_WINDOW_S"], env["FLEET_HOP_S"]) == ("60", "10")
    assert env["FLEET_ALLOWED_LATENESS_S"] == "5"
    assert env["FLEET_TOPICS__KPIS"] == pipeline.topics.kpis
    assert env["FLEET_TOPICS__KPI_STATE"] == pipeline.topics.kpi_state
    assert _kpi_children(kube, ns, name) == [f"Deployment/{name}-kpis", f"Service/{name}-kpis"]

    # 300K events/s would take 22 replicas: capped at its input's 3 partitions, like every
    # consumer.
    kube.run(
        "patch",
        "fp",
        name,
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"fleet":{"eventsPerVehiclePerSecond":100}}}',
    )
    obj = kube.wait_ready(ns, name, generation=2)
    assert kube.replicas(ns, name)["kpis"] == 3
    assert obj["status"]["replicas"]["kpis"]["desired"] == 3

    kube.run(
        "patch", "fp", name, "-n", ns, "--type=merge", "-p", '{"spec":{"kpis":{"enabled":false}}}'
    )
    wait_for(
        lambda: _kpi_children(kube, ns, name) == [],
        timeout=60,
        what="the KPI Deployment and Service removed",
    )
    obj = kube.wait_ready(ns, name, generation=3)
    assert "kpis" not in obj["status"]["replicas"]
    assert "kpis" not in kube.replicas(ns, name)

    kube.run(
        "patch", "fp", name, "-n", ns, "--type=merge", "-p", '{"spec":{"kpis":{"enabled":true}}}'
    )
    kube.wait_ready(ns, name, generation=4)
    assert _kpi_children(kube, ns, name) == [f"Deployment/{name}-kpis", f"Service/{name}-kpis"]
    operator.process.check_alive()


@pytest.mark.parametrize(
    ("kpis", "field", "message"),
    [
        pytest.param(
            "{windowSeconds: 900, hopSeconds: 70}",
            "spec.kpis",
            "kpis.windowSeconds must be a whole number of kpis.hopSeconds",
            id="window-not-whole-hops",
        ),
        pytest.param(
            "{hopSeconds: 5}",
            "spec.kpis.hopSeconds",
            "greater than or equal to 10",
            id="hop-too-short",
        ),
        pytest.param(
            "{windowSeconds: 86400, hopSeconds: 60}",
            "spec.kpis",
            "must not exceed 360 windows per event",
            id="too-many-windows-per-event",
        ),
        pytest.param(
            "{allowedLatenessSeconds: -1}",
            "spec.kpis.allowedLatenessSeconds",
            "greater than or equal to 0",
            id="negative-lateness",
        ),
        pytest.param(
            "{enabled: maybe}", "spec.kpis.enabled", "must be of type boolean", id="not-a-boolean"
        ),
    ],
)
def test_bad_kpi_windows_are_refused_by_the_api_server_naming_the_field(
    kube: Any, crd: str, namespace: str, kpis: str, field: str, message: str
) -> None:
    text = (SAMPLES / "fleetpipeline-50k.yaml").read_text()
    old = "targetUtilisation: 0.7"
    assert old in text
    result = kube.run(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=text.replace(old, f"{old}\n  kpis: {kpis}"),
        check=False,
    )
    assert result.returncode != 0
    assert field in result.stderr, result.stderr
    assert message in result.stderr, result.stderr
    assert kube.run("get", "fp", "-n", namespace, "-o", "name").stdout == ""
