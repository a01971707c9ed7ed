"""The Helm chart on a real API server: dry-run, install, a pipeline reconciled, uninstall.

The module has a control plane of its own (``start_kube``), empty when it starts: ``helm install``
must create the CRD itself, which it cannot show on the session's cluster once the operator tests
have applied it. The operator that reconciles runs locally (``python -m fleet_operator``) with
the token of the ServiceAccount the chart created, so the chart's RBAC is what it is allowed; the
chart's own operator pod runs on a kwok node, where no container runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import yaml

from fleet_operator.spec import Component
from fleetpipe_dev.devtools import manifests
from fleetpipe_dev.testing import wait_for
from support.kube import Kube, OperatorHandle
from support.servers import BrokerHandle

pytestmark = pytest.mark.e2e

RELEASE = "fleetpipe"
SYSTEM = "fleetpipe-system"
CRD_NAME = "fleetpipelines.fleetpipe.io"
# The control plane's clients must not ask for watch-list streams (see fleetpipe_dev.stack.kube).
HELM_ENV = {"KUBE_FEATURE_WatchListClient": "false"}
EVERYTHING = (*manifests.EVERY_OPTION, "operator.watchNamespace=fp-dry-run")


@pytest.fixture(scope="module")
def cluster(
    start_kube: Callable[..., AbstractContextManager[Kube]], workdir: Path
) -> Iterator[Kube]:
    with start_kube(workdir / "kube-helm", nodes=2) as kube:
        yield kube


def helm_on(kube: Kube, *args: str, timeout: float = 180.0) -> str:
    return manifests.helm(
        *args, "--kubeconfig", str(kube.kubeconfig), timeout=timeout, env=HELM_ENV
    )


def crd_established(kube: Kube) -> bool:
    found = kube.run("get", "crd", CRD_NAME, "-o", "json", check=False)
    if found.returncode != 0:
        return False
    conditions = yaml.safe_load(found.stdout).get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def exists(kube: Kube, kind: str, name: str, namespace: str | None = None) -> bool:
    args = ["get", kind, name] + (["-n", namespace] if namespace else [])
    return kube.run(*args, check=False).returncode == 0


def operator_pods_running_on_kwok(kube: Kube) -> list[str]:
    pods = kube.json(
        "get",
        "pods",
        "-n",
        SYSTEM,
        "-l",
        f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator",
    )["items"]
    return [
        p["metadata"]["name"]
        for p in pods
        if p["status"].get("phase") == "Running"
        and p["spec"].get("nodeName", "").startswith("kwok-node-")
    ]


def test_helm_install_runs_the_operator_a_sample_is_reconciled_and_uninstall_removes_it(
    cluster: Kube,
    kafka: BrokerHandle,
    run_operator: Callable[..., AbstractContextManager[OperatorHandle]],
    sample_text: Callable[..., str],
    workdir: Path,
) -> None:
    kube = cluster
    assert not exists(kube, "crd", CRD_NAME), "the module's cluster should start without the CRD"

    chart = str(manifests.CHART)
    out = helm_on(kube, "install", RELEASE, chart, "-n", SYSTEM, "--create-namespace")
    assert "STATUS: deployed" in out
    assert "kubectl apply -f k8s/samples/fleetpipeline-50k.yaml" in out  # NOTES.txt: what next

    # The CRD from crds/, served; the operator's Deployment, its pod Running on a kwok node.
    wait_for(lambda: crd_established(kube), timeout=60, what=f"CRD {CRD_NAME} established")
    deployment = kube.json("get", "deployment", f"{RELEASE}-operator", "-n", SYSTEM)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == f"{RELEASE}-operator"
    running = wait_for(
        lambda: operator_pods_running_on_kwok(kube) or None,
        timeout=90,
        interval=0.5,
        what="the operator's pod Running on a kwok node",
    )
    assert len(running) == 1

    # A sample pipeline, reconciled by the operator with nothing but the chart's RBAC.
    namespace = "fleet-e2e"
    kube.create_sample_namespace(namespace)
    text = sample_text("fleetpipeline-50k.yaml", bootstrap=kafka.bootstrap, suffix="helm1")
    name = yaml.safe_load(text)["metadata"]["name"]
    with run_operator(
        kube,
        service_account=f"{RELEASE}-operator",
        namespace=SYSTEM,
        home=workdir / "helm-operator",
    ):
        kube.run("apply", "-n", namespace, "-f", "-", stdin=text)
        pipeline = kube.wait_ready(namespace, name, timeout=180)
        assert pipeline["status"]["partitions"]["current"] == 50
        replicas = kube.replicas(namespace, name)
        assert set(replicas) == {c.value for c in Component}
        assert all(n >= 1 for n in replicas.values()), replicas
        # Deleted while the operator runs, so that its finalizer is let go.
        kube.run("delete", "fleetpipeline", name, "-n", namespace, "--timeout=120s")

    helm_on(kube, "uninstall", RELEASE, "-n", SYSTEM, "--wait", "--timeout=120s")
    for kind, obj, ns in [
        ("deployment", f"{RELEASE}-operator", SYSTEM),
        ("serviceaccount", f"{RELEASE}-operator", SYSTEM),
        ("clusterrole", f"{RELEASE}-operator", None),
        ("clusterrolebinding", f"{RELEASE}-operator", None),
        ("networkpolicy", f"{RELEASE}-operator", SYSTEM),
        ("networkpolicy", f"{RELEASE}-pipelines", SYSTEM),
    ]:
        assert not exists(kube, kind, obj, ns), f"{kind}/{obj} survived helm uninstall"
    wait_for(
        lambda: not operator_pods_running_on_kwok(kube),
        timeout=60,
        what="the operator's pod gone",
    )
    # Helm never deletes what crds/ installed: deleting the CRD would delete every pipeline.
    assert exists(kube, "crd", CRD_NAME)


@pytest.mark.parametrize(
    "values",
    [
        pytest.param((), id="defaults"),
        pytest.param(EVERYTHING, id="everything-on"),
    ],
)
def test_the_rendered_chart_is_accepted_by_a_server_side_dry_run(
    cluster: Kube, values: tuple[str, ...]
) -> None:
    kube = cluster
    namespace = "fp-dry-run"
    if not exists(kube, "namespace", namespace):
        kube.run("create", "namespace", namespace)
    # A FleetPipeline can only be dry-run against a CRD that is really there.
    if not crd_established(kube):
        kube.run("apply", "-f", str(manifests.CHART / "crds" / manifests.CRD_FILE))
        wait_for(lambda: crd_established(kube), timeout=60, what=f"CRD {CRD_NAME} established")
    args = ["template", RELEASE, str(manifests.CHART), "-n", namespace, "--include-crds"]
    for value in values:
        args += ["--set", value]
    rendered = manifests.helm(*args)
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    result = kube.run(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", stdin=rendered, check=False
    )
    assert result.returncode == 0, result.stderr
    accepted = [line for line in result.stdout.splitlines() if "(server dry run)" in line]
    assert len(accepted) == len(docs), result.stdout
    if values:
        assert any(line.startswith("fleetpipeline.fleetpipe.io/fleet ") for line in accepted)


def test_helm_uninstall_with_a_pipeline_leaves_no_pipeline_and_no_child_behind(
    cluster: Kube,
    kafka: BrokerHandle,
    run_operator: Callable[..., AbstractContextManager[OperatorHandle]],
    workdir: Path,
) -> None:
    kube = cluster
    release, namespace, name = "fleetpipe-gone", "fp-gone", "fleet"
    kube.create_sample_namespace(namespace)
    spec = {
        "fleet": {"vehicles": 2000},
        "kafka": {
            "bootstrapServers": kafka.bootstrap,
            "replicationFactor": 1,
            "topicSuffix": "helmgone",
        },
        "notification": {"twilioSecret": "fleetpipe-twilio"},
        "storage": {"databaseSecret": "fleetpipe-db"},
    }
    helm_on(
        kube,
        "install",
        release,
        str(manifests.CHART),
        "-n",
        namespace,
        "--set",
        "pipeline.create=true",
        "--set-json",
        f"pipeline.spec={json.dumps(spec)}",
    )
    wait_for(lambda: crd_established(kube), timeout=60, what=f"CRD {CRD_NAME} established")
    with run_operator(
        kube,
        service_account=f"{release}-operator",
        namespace=namespace,
        home=workdir / "helm-gone-operator",
    ):
        kube.wait_ready(namespace, name, timeout=180)
        assert kube.replicas(namespace, name)
        # Retain (the default): deleting it has nothing to do, so nothing holds it.
        assert not kube.pipeline(namespace, name)["metadata"].get("finalizers")
    # The operator is gone before the release is, as when `helm uninstall` removes its pod;
    # without the pre-delete hook either (kwok runs no Job): a Retain pipeline needs none.
    helm_on(kube, "uninstall", release, "-n", namespace, "--no-hooks", "--wait", "--timeout=120s")
    assert not exists(kube, "fleetpipeline", name, namespace), "the FleetPipeline survived"

    def children() -> list[str]:
        found = kube.json(
            "get",
            "deployments,configmaps,services",
            "-n",
            namespace,
            "-l",
            f"fleetpipe.io/pipeline={name}",
        )
        return [f"{i['kind']}/{i['metadata']['name']}" for i in found["items"]]

    # The children follow their owner (the garbage collector of kube-controller-manager).
    wait_for(lambda: not children(), timeout=60, what="no child of the pipeline left")
