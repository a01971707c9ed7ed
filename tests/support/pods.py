"""What the e2e tests of the local cluster add to :mod:`fleetpipe_dev.cluster.observe`:
waiting for the load-test Job with the assertions of a test, reading Jaeger, the database and
the Twilio stand-in, and crashing a dev server's container.

Every call goes through :class:`LocalCluster`, so it runs inside the cluster's network
namespace, the only place its API server and Services can be reached.
"""

from __future__ import annotations

import json
from typing import Any

from fleet_operator.spec import Component
from fleetpipe_dev.cluster import netns
from fleetpipe_dev.cluster.install import RELEASE, TwilioAccount
from fleetpipe_dev.cluster.node import LocalCluster
from fleetpipe_dev.cluster.observe import (
    get_json,
    job_finished,
    job_log,
    psql,
    running_and_ready,
    stored_counts,
)
from fleetpipe_dev.testing import wait_for


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
