"""Reading and driving the chart installed on the local cluster: the FleetPipeline, its
services' Deployments and pods, the chart's load-test Job and the dev PostgreSQL.

Shared by ``fleetpipe dev cluster growth`` and the e2e tests of the local cluster. Every call
goes through :class:`LocalCluster`, so it runs inside the cluster's network namespace, the only
place its API server and Services can be reached; the functions on objects already read
(``*_of``) do no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from fleet_operator.spec import Component
from fleetpipe_dev.cluster.install import FLEET, LOAD_JOB, NAMESPACE, PIPELINE, RELEASE
from fleetpipe_dev.cluster.node import LocalCluster
from fleetpipe_dev.devtools.manifests import CHART

# What ``SELECT now()`` answers, the only kind of value put into a query's text here.
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[ T][\d:.]+(?:[+-]\d\d(?::?\d\d)?|Z)?")
# The chart's default deadline of the load-test Job (loadtest.activeDeadlineSeconds).
LOAD_DEADLINE_S = 1800


def get_json(cluster: LocalCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", "-n", NAMESPACE, *args, "-o", "json"))


# ---- the FleetPipeline ------------------------------------------------------------------------
def ready_condition(pipeline: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's Ready condition ({} when it has none yet)."""
    conditions = (pipeline.get("status") or {}).get("conditions") or []
    found: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
    return found


def ready_for_generation(pipeline: dict[str, Any]) -> bool:
    """Ready, and said so of the spec as it is now: right after a patch the old Ready
    condition still stands until the operator has observed the new generation."""
    status = pipeline.get("status") or {}
    current = status.get("observedGeneration") == (pipeline.get("metadata") or {}).get("generation")
    return current and ready_condition(pipeline).get("status") == "True"


def pipeline_ready(cluster: LocalCluster) -> dict[str, Any] | None:
    """The FleetPipeline once Ready for its current generation, else None."""
    obj: dict[str, Any] = get_json(cluster, "fleetpipeline", PIPELINE)
    return obj if ready_for_generation(obj) else None


def set_vehicles(cluster: LocalCluster, vehicles: int, *, check: bool = True) -> None:
    """Patch the FleetPipeline's fleet size (the operator resizes partitions and replicas)."""
    patch = json.dumps({"spec": {"fleet": {"vehicles": vehicles}}})
    cluster.kubectl(
        "patch", "fleetpipeline", PIPELINE, "-n", NAMESPACE, "--type=merge", "-p", patch,
        check=check,
    )  # fmt: skip


# ---- the services' Deployments and pods --------------------------------------------------------
def replicas_of(deployments: list[dict[str, Any]]) -> dict[str, int]:
    """Service → the replicas its Deployment asks for."""
    return {
        d["metadata"]["name"].removeprefix(f"{PIPELINE}-"): int(d["spec"]["replicas"])
        for d in deployments
        if (d["metadata"].get("labels") or {}).get("fleetpipe.io/pipeline") == PIPELINE
    }


def replicas(cluster: LocalCluster) -> dict[str, int]:
    """Service → the replicas its Deployment asks for."""
    items = get_json(cluster, "deployments", "-l", f"fleetpipe.io/pipeline={PIPELINE}")["items"]
    return replicas_of(items)


def service_pods_of(pods: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The live (not terminating) pods of each of the five services."""
    found: dict[str, list[dict[str, Any]]] = {c.value: [] for c in Component}
    for pod in pods:
        name = pod["metadata"]["name"]
        if pod["metadata"].get("deletionTimestamp"):
            continue
        for component in Component:
            if name.startswith(f"{PIPELINE}-{component.value}-"):
                found[component.value].append(pod)
    return found


def service_pods(cluster: LocalCluster) -> dict[str, list[dict[str, Any]]]:
    """The live (not terminating) pods of each of the five services."""
    return service_pods_of(get_json(cluster, "pods")["items"])


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


# ---- the chart's load-test Job ----------------------------------------------------------------
def start_load_job(
    cluster: LocalCluster,
    *,
    profile: str,
    run_id: str = "",
    scenarios: str = "all=0.2",
    deadline_s: int = LOAD_DEADLINE_S,
) -> None:
    """The chart's load-test Job (its name is fixed: a finished one is deleted first).
    ``run_id``: the vehicles' id prefix is ``<fleet>-<run_id>`` (default: a new one);
    ``deadline_s``: the Job's activeDeadlineSeconds (sending, then the accounting)."""
    cluster.kubectl("delete", "job", LOAD_JOB, "-n", NAMESPACE, "--ignore-not-found", "--wait")
    cluster.helm(
        "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reuse-values",
        "--set", "loadtest.enabled=true", "--set", f"loadtest.fleet={FLEET}",
        "--set", f"loadtest.profile={profile}", "--set", "loadtest.processes=1",
        "--set", "loadtest.streams=2", "--set", "loadtest.batchSize=100",
        "--set", f"loadtest.runId={run_id}", "--set", f"loadtest.scenarios={scenarios}",
        "--set", f"loadtest.activeDeadlineSeconds={deadline_s}",
    )  # fmt: skip


def job_finished_of(job: dict[str, Any]) -> str | None:
    """``Complete`` or ``Failed`` once the Job is over, else None."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition["status"] == "True" and condition["type"] in ("Complete", "Failed"):
            return str(condition["type"])
    return None


def job_finished(cluster: LocalCluster) -> str | None:
    return job_finished_of(get_json(cluster, "job", LOAD_JOB))


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


# ---- the dev PostgreSQL -----------------------------------------------------------------------
def psql(cluster: LocalCluster, query: str, *, check: bool = True) -> str:
    """One query in the dev PostgreSQL pod (its local socket trusts the database user);
    with ``check=False`` an empty answer while the pod or the server is down."""
    return cluster.kubectl(
        "exec", "-n", NAMESPACE, f"{RELEASE}-postgresql-0", "--",
        "psql", "-U", "fleetpipe", "-d", "fleetpipe", "-tAc", query, check=check,
    ).strip()  # fmt: skip


def overlapping_episodes(since: str) -> str:
    """Pairs of alert episodes of one vehicle and rule, both begun at or after ``since`` (a
    database timestamp), whose times overlap: one of them was reopened or stored twice.

    Episodes left open by an earlier run (its load stopped mid-episode) are not counted: a later
    run's episode for the same vehicle is then a new one, not a reopened one.
    """
    # psql -c takes no bind parameters: ``since`` goes into the text, so only a timestamp may.
    if not _TIMESTAMP.fullmatch(since):
        raise ValueError(f"not a database timestamp: {since!r}")
    return f"""
SELECT a.vehicle_id, a.rule, a.episode_start, a.episode_end, b.episode_start, b.episode_end
  FROM fleetpipe.alerts a JOIN fleetpipe.alerts b
    ON a.vehicle_id = b.vehicle_id AND a.rule = b.rule AND a.alert_id < b.alert_id
 WHERE a.episode_start >= '{since}' AND b.episode_start >= '{since}'
   AND tstzrange(a.episode_start, coalesce(a.episode_end, 'infinity'))
    && tstzrange(b.episode_start, coalesce(b.episode_end, 'infinity'))
"""  # noqa: S608
