"""The chart on the local cluster (installed by ``fleetpipe dev cluster install``):
the load-test Job, reading pods, Jobs, the database and the Twilio stand-in, and crashing a
dev server's container.

Every call goes through :class:`LocalCluster`, so it runs inside the cluster's network
namespace, the only place its API server and Services can be reached.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from fleet_operator.spec import Component
from fleetpipe_dev.cluster import netns
from fleetpipe_dev.cluster.install import (
    FLEET,
    LOAD_JOB,
    NAMESPACE,
    PIPELINE,
    RELEASE,
    TwilioAccount,
)
from fleetpipe_dev.cluster.node import LocalCluster
from fleetpipe_dev.devtools.manifests import CHART
from fleetpipe_dev.testing import wait_for


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


def start_load_job(
    cluster: LocalCluster, *, profile: str, run_id: str = "", scenarios: str = "all=0.2"
) -> None:
    """The chart's load-test Job (its name is fixed: a finished one is deleted first).
    ``run_id``: the vehicles' id prefix is ``<fleet>-<run_id>`` (default: a new one)."""
    cluster.kubectl("delete", "job", LOAD_JOB, "-n", NAMESPACE, "--ignore-not-found", "--wait")
    cluster.helm(
        "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reuse-values",
        "--set", "loadtest.enabled=true", "--set", f"loadtest.fleet={FLEET}",
        "--set", f"loadtest.profile={profile}", "--set", "loadtest.processes=1",
        "--set", "loadtest.streams=2", "--set", "loadtest.batchSize=100",
        "--set", f"loadtest.runId={run_id}", "--set", f"loadtest.scenarios={scenarios}",
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


def wait_load_job(cluster: LocalCluster) -> str:
    """The finished Job's log, asserting it completed with every event stored once."""
    result = wait_for(
        lambda: job_finished(cluster), timeout=900, interval=2.0, what="the load Job finished"
    )
    log = job_log(cluster)
    print(log)
    assert result == "Complete", log
    counts = stored_counts(log)
    assert counts is not None, log
    assert counts.expected > 0
    assert (counts.stored, counts.missing, counts.duplicates) == (counts.expected, 0, 0)
    return log


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


def psql(cluster: LocalCluster, query: str, *, check: bool = True) -> str:
    """One query in the dev PostgreSQL pod (its local socket trusts the database user);
    with ``check=False`` an empty answer while the pod or the server is down."""
    return cluster.kubectl(
        "exec", "-n", NAMESPACE, f"{RELEASE}-postgresql-0", "--",
        "psql", "-U", "fleetpipe", "-d", "fleetpipe", "-tAc", query, check=check,
    ).strip()  # fmt: skip


def stored_behind_s(cluster: LocalCluster, prefix: str) -> float | None:
    """How far behind now the newest stored event of vehicles ``prefix``-* was ingested (of
    the rows stored in the last 20 s), or None when nothing was stored then or the database
    does not answer: while events flow this is the pipeline's ingest → stored latency."""
    found = psql(
        cluster,
        "SELECT extract(epoch FROM now() - max(ingest_time)) FROM fleetpipe.telemetry "
        f"WHERE vehicle_id LIKE '{prefix}-%' AND stored_time > now() - interval '20 seconds'",
        check=False,
    )
    try:
        return float(found)
    except ValueError:
        return None


def kill_container(cluster: LocalCluster, pod: str, *, signal: str = "SIGKILL") -> int:
    """Signal the pod's container through containerd — SIGKILL as a crash would, SIGTERM as a
    graceful stop: the kubelet starts it again in the same pod, whose emptyDir data stays
    (deleting the pod would erase a dev server's data). The container's restart count before."""
    status = get_json(cluster, "pod", pod)["status"]["containerStatuses"][0]
    container_id = status["containerID"].split("://", 1)[1]
    cluster.ctr("tasks", "kill", "--signal", signal, container_id)
    return int(status["restartCount"])


def restarted_and_ready(cluster: LocalCluster, pod: str, restarts: int) -> bool:
    found = get_json(cluster, "pod", pod)
    statuses = (found.get("status") or {}).get("containerStatuses") or [{}]
    return int(statuses[0].get("restartCount", 0)) > restarts and running_and_ready(found)


def twilio_records(cluster: LocalCluster, account: TwilioAccount, kind: str) -> list[Any]:
    """The stand-in's ``messages`` or ``calls``, through its control API (the password goes
    to curl on stdin, not on its command line)."""
    url = f"{account.api_base_url}/_contract/{kind}"
    config = f'user = "{account.account_sid}:{account.auth_token}"\n'
    out = netns.run(cluster.ns("curl", "-sf", "-K", "-", url), stdin=config, timeout=30)
    found: list[Any] = json.loads(out)
    return found


def ledger_sids(cluster: LocalCluster) -> list[str] | None:
    """Every provider sid notification's ledger claims, or None while a delivery is in
    flight (a PENDING row)."""
    rows = psql(
        cluster, "SELECT status, coalesce(provider_sid, '') FROM fleetpipe.notification_ledger"
    )
    pairs = [line.split("|", 1) for line in rows.splitlines() if line]
    if any(status == "PENDING" for status, _ in pairs):
        return None
    return [sid for _, sid in pairs if sid]


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
