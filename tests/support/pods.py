"""The chart installed on the local cluster (``fleetpipe dev cluster``), as a user installs it:
its Secrets, the values of a small FleetPipeline, and reading pods, Jobs and the database.

Every call goes through :class:`LocalCluster`, so it runs inside the cluster's network
namespace, the only place its API server and Services can be reached.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleet_operator.spec import Component
from fleetpipe_dev.cluster import netns
from fleetpipe_dev.cluster.node import LocalCluster
from fleetpipe_dev.devtools.manifests import CHART, REPO

RELEASE = "fleetpipe"
NAMESPACE = "fleetpipe"
PIPELINE = "fleet"
FLEET = "fleet-1"
LOCAL_VALUES = REPO / "helm" / "local-cluster.values.yaml"
LOAD_JOB = f"{RELEASE}-loadtest"
# Small requests: up to twenty service pods, the dev servers and the load driver share two cores.
SMALL = {"requests": {"cpu": "20m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}


def camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(word.title() for word in rest)


def pipeline_values(
    workdir: Path, *, vehicles: int, events_per_vehicle: float, capacity_per_replica: int
) -> Path:
    """Values creating the FleetPipeline: 1,000 vehicles a partition (the design's), a scaled
    down event rate, and a per-replica capacity sized to that rate so replicas still follow
    the fleet's size."""
    services = {
        camel(c.field): {
            "minReplicas": 1,
            "capacityPerReplica": capacity_per_replica,
            "resources": SMALL,
        }
        for c in Component
    }
    values = {
        "pipeline": {
            "create": True,
            "name": PIPELINE,
            "spec": {
                "fleet": {
                    "vehicles": vehicles,
                    "eventsPerVehiclePerSecond": events_per_vehicle,
                    "vehiclesPerPartition": 1000,
                },
                "kafka": {},
                "services": services,
                "ingest": {"tokensSecret": "fleetpipe-ingest-tokens"},
                "notification": {"twilioSecret": "fleetpipe-twilio"},
                "storage": {"databaseSecret": "fleetpipe-db"},
                # One event in five traced from ingest on: some alerts' traces then cross all
                # five services (the chart points the exporter at its dev Jaeger).
                "tracing": {"samplingRatio": 0.2},
            },
        },
        "loadtest": {"resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}},
    }
    path = workdir / "pipeline-values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "stringData": data,
    }


def create_secrets(cluster: LocalCluster) -> None:
    """The namespace and the Secrets the chart's notes list, with fresh values."""
    password = secrets.token_hex(12)
    token = secrets.token_hex(16)
    host = f"{RELEASE}-postgresql.{NAMESPACE}.svc"
    docs = [
        _secret(
            "fleetpipe-db",
            {
                "password": password,
                "dsn": f"postgresql://fleetpipe:{password}@{host}:5432/fleetpipe",
            },
        ),
        # Twilio itself is out of reach here: notification's sends fail fast and are retried;
        # these tests count stored events and alert episodes, not messages.
        _secret(
            "fleetpipe-twilio",
            {
                "account_sid": "AC" + "0" * 32,
                "auth_token": secrets.token_hex(16),
                "sms_from": "+15550100",
                "api_base_url": "http://127.0.0.1:9",
            },
        ),
        _secret("fleetpipe-ingest-tokens", {"tokens.yaml": json.dumps({token: FLEET})}),
        _secret("fleetpipe-loadtest", {"token": token}),
    ]
    cluster.kubectl("create", "namespace", NAMESPACE)
    cluster.kubectl_apply({"apiVersion": "v1", "kind": "List", "items": docs})


def helm_install(cluster: LocalCluster, values: Path) -> str:
    return cluster.helm(
        "install", RELEASE, str(CHART), "-n", NAMESPACE, "-f", str(LOCAL_VALUES), "-f", str(values)
    )


def get_json(cluster: LocalCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", "-n", NAMESPACE, *args, "-o", "json"))


def pipeline_ready(cluster: LocalCluster) -> dict[str, Any] | None:
    """The FleetPipeline once Ready for its current generation, else None."""
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


def replicas(cluster: LocalCluster) -> dict[str, int]:
    """Service → the replicas its Deployment asks for."""
    items = get_json(cluster, "deployments", "-l", f"fleetpipe.io/pipeline={PIPELINE}")["items"]
    return {
        d["metadata"]["name"].removeprefix(f"{PIPELINE}-"): d["spec"]["replicas"] for d in items
    }


def service_pods(cluster: LocalCluster) -> dict[str, list[dict[str, Any]]]:
    """The live (not terminating) pods of each of the five services."""
    pods = get_json(cluster, "pods")["items"]
    found: dict[str, list[dict[str, Any]]] = {c.value: [] for c in Component}
    for pod in pods:
        name = pod["metadata"]["name"]
        if pod["metadata"].get("deletionTimestamp"):
            continue
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


def services_ready(
    cluster: LocalCluster, want: dict[str, int] | None = None
) -> dict[str, list[dict[str, Any]]] | None:
    """Every service's pods Running and Ready (``want``: exactly that many of each)."""
    pods = service_pods(cluster)
    if not all(pods.values()) or not all(running_and_ready(p) for ps in pods.values() for p in ps):
        return None
    if want is not None and {k: len(v) for k, v in pods.items()} != want:
        return None
    return pods


def start_load_job(cluster: LocalCluster, *, profile: str) -> None:
    """The chart's load-test Job (its name is fixed: a finished one is deleted first)."""
    cluster.kubectl("delete", "job", LOAD_JOB, "-n", NAMESPACE, "--ignore-not-found", "--wait")
    cluster.helm(
        "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reuse-values",
        "--set", "loadtest.enabled=true", "--set", f"loadtest.fleet={FLEET}",
        "--set", f"loadtest.profile={profile}", "--set", "loadtest.processes=1",
        "--set", "loadtest.streams=2", "--set", "loadtest.batchSize=100",
    )  # fmt: skip


def job_finished(cluster: LocalCluster) -> str | None:
    job = get_json(cluster, "job", LOAD_JOB)
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition["status"] == "True" and condition["type"] in ("Complete", "Failed"):
            return str(condition["type"])
    return None


def job_log(cluster: LocalCluster) -> str:
    return cluster.kubectl("logs", "-n", NAMESPACE, f"job/{LOAD_JOB}", check=False)


@dataclass(frozen=True)
class Stored:
    """The load report's per-event accounting in the pipeline's database."""

    stored: int
    expected: int
    missing: int
    duplicates: int


def stored_counts(log: str) -> Stored | None:
    found = re.search(r"stored ([\d,]+) of ([\d,]+): missing ([\d,]+), duplicates ([\d,]+)", log)
    if found is None:
        return None
    return Stored(*(int(g.replace(",", "")) for g in found.groups()))


def alert_trace_services(cluster: LocalCluster) -> set[str] | None:
    """The services of a trace in the dev Jaeger that holds an alert and spans of all five
    services, or None yet. Asked through the Jaeger Service's ClusterIP, as a pod would."""
    service = get_json(cluster, "service", f"{RELEASE}-jaeger")
    url = (
        f"http://{service['spec']['clusterIP']}:16686/api/traces"
        "?service=fleetpipe-notification&limit=200&lookback=1h"
    )
    found = netns.run(cluster.ns("curl", "-sf", url), check=False, timeout=30)
    want = {f"fleetpipe-{c.value}" for c in Component}
    for trace in json.loads(found or '{"data": []}').get("data") or []:
        services = {p["serviceName"] for p in trace["processes"].values()}
        alert = any(s["operationName"].startswith("alert ") for s in trace["spans"])
        if alert and want <= services:
            return services
    return None


def psql(cluster: LocalCluster, query: str) -> str:
    """One query in the dev PostgreSQL pod (its local socket trusts the database user)."""
    return cluster.kubectl(
        "exec", "-n", NAMESPACE, f"{RELEASE}-postgresql-0", "--",
        "psql", "-U", "fleetpipe", "-d", "fleetpipe", "-tAc", query,
    ).strip()  # fmt: skip


def overlapping_episodes(since: str) -> str:
    """Pairs of alert episodes of one vehicle and rule, both begun at or after ``since`` (a
    database timestamp), whose times overlap: one of them was reopened or stored twice.

    Episodes left open by an earlier run (its load stopped mid-episode) are not counted: a later
    run's episode for the same vehicle is then a new one, not a reopened one.
    """
    return f"""
SELECT a.vehicle_id, a.rule, a.episode_start, a.episode_end, b.episode_start, b.episode_end
  FROM fleetpipe.alerts a JOIN fleetpipe.alerts b
    ON a.vehicle_id = b.vehicle_id AND a.rule = b.rule AND a.alert_id < b.alert_id
 WHERE a.episode_start >= '{since}' AND b.episode_start >= '{since}'
   AND tstzrange(a.episode_start, coalesce(a.episode_end, 'infinity'))
    && tstzrange(b.episode_start, coalesce(b.episode_end, 'infinity'))
"""
