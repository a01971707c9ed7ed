"""The pipeline in real pods, as the README tells a user: ``helm install`` with the dev Kafka,
PostgreSQL and Jaeger on the local cluster, a FleetPipeline, the operator's pod creating the
topics and Deployments, the five services Running and Ready, a shell in the ingest pod, and the
chart's load-test Job completing with every accepted event stored exactly once.

Every Kubernetes call (kubectl, helm) runs inside the cluster's network namespace, the only
place its API server and Services can be reached.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet_operator.spec import Component
from fleetpipe_dev.cluster.node import LocalCluster
from fleetpipe_dev.devtools.manifests import CHART, REPO
from fleetpipe_dev.testing import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2700)]

RELEASE = "fleetpipe"
NAMESPACE = "fleetpipe"
PIPELINE = "fleet"
FLEET = "fleet-1"
LOCAL_VALUES = REPO / "helm" / "local-cluster.values.yaml"
# Small requests: the five services, the dev servers and the load driver share two cores.
SMALL = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}


def camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(word.title() for word in rest)


def pipeline_values(workdir: Path) -> Path:
    """The FleetPipeline the chart creates: 1,000 vehicles over 2 partitions, one replica of
    each service."""
    services = {camel(c.field): {"minReplicas": 1, "resources": SMALL} for c in Component}
    values = {
        "pipeline": {
            "create": True,
            "name": PIPELINE,
            "spec": {
                "fleet": {
                    "vehicles": 1000,
                    "eventsPerVehiclePerSecond": 1,
                    "vehiclesPerPartition": 500,
                },
                "kafka": {},
                "services": services,
                "ingest": {"tokensSecret": "fleetpipe-ingest-tokens"},
                "notification": {"twilioSecret": "fleetpipe-twilio"},
                "storage": {"databaseSecret": "fleetpipe-db"},
            },
        },
        "loadtest": {"resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}},
    }
    path = workdir / "pipeline-values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "stringData": data,
    }


def create_secrets(cluster: LocalCluster, token: str) -> None:
    password = secrets.token_hex(12)
    host = f"{RELEASE}-postgresql.{NAMESPACE}.svc"
    docs = [
        secret(
            "fleetpipe-db",
            {
                "password": password,
                "dsn": f"postgresql://fleetpipe:{password}@{host}:5432/fleetpipe",
            },
        ),
        # Twilio itself is out of reach here: notification's sends fail fast and are retried;
        # this test counts stored events, not messages.
        secret(
            "fleetpipe-twilio",
            {
                "account_sid": "AC" + "0" * 32,
                "auth_token": secrets.token_hex(16),
                "sms_from": "+15550100",
                "api_base_url": "http://127.0.0.1:9",
            },
        ),
        secret("fleetpipe-ingest-tokens", {"tokens.yaml": json.dumps({token: FLEET})}),
        secret("fleetpipe-loadtest", {"token": token}),
    ]
    cluster.kubectl("create", "namespace", NAMESPACE)
    cluster.kubectl_apply({"apiVersion": "v1", "kind": "List", "items": docs})


def get_json(cluster: LocalCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", "-n", NAMESPACE, *args, "-o", "json"))


def pipeline_ready(cluster: LocalCluster) -> dict[str, Any] | None:
    obj: dict[str, Any] = get_json(cluster, "fleetpipeline", PIPELINE)
    status = obj.get("status") or {}
    ready: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c["type"] == "Ready"), {}
    )
    if status.get("observedGeneration") == obj["metadata"]["generation"] and (
        ready.get("status") == "True"
    ):
        return obj
    return None


def service_pods(cluster: LocalCluster) -> dict[str, list[dict[str, Any]]]:
    """The pods of each of the five services, by component."""
    pods = get_json(cluster, "pods")["items"]
    found: dict[str, list[dict[str, Any]]] = {c.value: [] for c in Component}
    for pod in pods:
        name = pod["metadata"]["name"]
        for component in Component:
            if name.startswith(f"{PIPELINE}-{component.value}-"):
                found[component.value].append(pod)
    return found


def running_and_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    ready = any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []
    )
    return status.get("phase") == "Running" and ready


def all_services_ready(cluster: LocalCluster) -> dict[str, list[dict[str, Any]]] | None:
    pods = service_pods(cluster)
    if all(pods.values()) and all(running_and_ready(p) for ps in pods.values() for p in ps):
        return pods
    return None


def job_finished(cluster: LocalCluster, name: str) -> str | None:
    job = get_json(cluster, "job", name)
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition["status"] == "True" and condition["type"] in ("Complete", "Failed"):
            return str(condition["type"])
    return None


def test_helm_install_runs_the_pipeline_in_pods_and_the_load_job_loses_nothing(
    local_cluster: LocalCluster, workdir: Path
) -> None:
    cluster = local_cluster
    token = secrets.token_hex(16)
    create_secrets(cluster, token)
    values = pipeline_values(workdir)

    start = time.monotonic()
    out = cluster.helm(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "-f",
        str(LOCAL_VALUES),
        "-f",
        str(values),
    )
    assert "STATUS: deployed" in out

    # The operator's pod creates the topics and the Deployments; the pipeline reports Ready.
    pipeline = wait_for(
        lambda: pipeline_ready(cluster),
        timeout=900,
        interval=2.0,
        what=f"FleetPipeline {PIPELINE} Ready",
    )
    ready_s = time.monotonic() - start
    assert pipeline["status"]["partitions"]["current"] == 2
    operator = get_json(cluster, "pods", "-l", "app.kubernetes.io/component=operator")["items"]
    assert [running_and_ready(p) for p in operator] == [True]

    pods = wait_for(
        lambda: all_services_ready(cluster),
        timeout=600,
        interval=2.0,
        what="the five services' pods Running and Ready",
    )
    print(
        f"helm install -> pipeline Ready {ready_s:.0f}s, services Ready "
        f"{time.monotonic() - start:.0f}s"
    )
    assert sorted(pods) == sorted(c.value for c in Component)
    node = cluster.settings.node_name
    assert {p["spec"]["nodeName"] for ps in pods.values() for p in ps} == {node}

    # A shell in the ingest pod: its hostname is the pod's name.
    ingest = pods[Component.INGEST.value][0]["metadata"]["name"]
    hostname = cluster.kubectl(
        "exec",
        "-n",
        NAMESPACE,
        ingest,
        "--",
        "python",
        "-c",
        "import socket; print(socket.gethostname())",
    )
    assert hostname.strip() == ingest

    # The chart's load-test Job against the pipeline: 300 vehicles for 30 s.
    cluster.helm(
        "upgrade",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--reuse-values",
        "--set",
        "loadtest.enabled=true",
        "--set",
        f"loadtest.fleet={FLEET}",
        "--set",
        "loadtest.profile=300:30",
        "--set",
        "loadtest.processes=1",
        "--set",
        "loadtest.streams=2",
        "--set",
        "loadtest.batchSize=100",
    )
    job = f"{RELEASE}-loadtest"
    result = wait_for(
        lambda: job_finished(cluster, job),
        timeout=900,
        interval=2.0,
        what=f"Job {job} finished",
    )
    log = cluster.kubectl("logs", "-n", NAMESPACE, f"job/{job}", check=False)
    print(log)
    assert result == "Complete", log
    stored = re.search(r"stored ([\d,]+) of ([\d,]+): missing ([\d,]+), duplicates ([\d,]+)", log)
    assert stored is not None, log
    count, expected, missing, duplicates = (int(g.replace(",", "")) for g in stored.groups())
    assert expected > 0
    assert (count, missing, duplicates) == (expected, 0, 0)
