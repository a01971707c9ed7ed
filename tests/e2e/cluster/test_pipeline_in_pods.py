"""The pipeline in real pods, as the README tells a user: ``helm install`` with the dev Kafka,
PostgreSQL and Jaeger on the local cluster, a FleetPipeline, the operator's pod creating the
topics and Deployments, the five services Running and Ready, a shell in the ingest pod, the
chart's load-test Job completing with every accepted event stored exactly once and the dev
Jaeger holding a trace of an alert through the five services' pods; then the fleet
grows from 50K to 100K vehicles while the load runs, and shrinks back.

The FleetPipeline is ``fleetpipe dev cluster install``'s default (see ``PipelineSize``): the
design's partition counts (1,000 vehicles a partition: 50, then 100), an event rate scaled down
for two cores (0.01 events per vehicle per second) and each replica's capacity with it, so the
replica counts still follow the fleet's size (2, then 4). The tests run in file order: the
second starts from the first's pipeline.
"""

from __future__ import annotations

import time

import pytest

from fleet_operator.spec import Component
from fleetpipe_dev.cluster.install import NAMESPACE, PIPELINE, Installation
from fleetpipe_dev.cluster.node import LocalCluster
from fleetpipe_dev.cluster.observe import (
    get_json,
    job_log,
    overlapping_episodes,
    pipeline_ready,
    psql,
    replicas,
    running_and_ready,
    services_ready,
    set_vehicles,
    start_load_job,
)
from fleetpipe_dev.testing import wait_for
from support.pods import (
    alert_trace_services,
    wait_load_job,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2700)]

SERVICES = sorted(c.value for c in Component)


def test_helm_install_runs_the_pipeline_in_pods_and_the_load_job_loses_nothing(
    local_cluster: LocalCluster, installed: Installation
) -> None:
    cluster = local_cluster

    # The operator's pod created the topics and the Deployments; the pipeline reports Ready.
    pipeline = wait_for(
        lambda: pipeline_ready(cluster),
        timeout=900,
        interval=2.0,
        what=f"FleetPipeline {PIPELINE} Ready",
    )
    assert pipeline["status"]["partitions"]["current"] == 50
    operator = get_json(cluster, "pods", "-l", "app.kubernetes.io/component=operator")["items"]
    assert [running_and_ready(p) for p in operator] == [True]

    pods = wait_for(
        lambda: services_ready(cluster, dict.fromkeys(SERVICES, 2)),
        timeout=600,
        interval=2.0,
        what="the five services' pods Running and Ready",
    )
    print(f"install -> pipeline and services Ready {installed.ready_s:.0f}s")
    node = cluster.settings.node_name
    assert {p["spec"]["nodeName"] for ps in pods.values() for p in ps} == {node}

    # A shell in the ingest pod: its hostname is the pod's name.
    ingest = pods[Component.INGEST.value][0]["metadata"]["name"]
    hostname = cluster.kubectl(
        "exec", "-n", NAMESPACE, ingest, "--",
        "python", "-c", "import socket; print(socket.gethostname())",
    )  # fmt: skip
    assert hostname.strip() == ingest

    # The chart's load-test Job against the pipeline: 300 vehicles for 45 s. Scenarios at 24
    # episodes per vehicle-hour start about 48 episodes in the run (the simulator's own count):
    # an alert whose event ingest traced (one in five) is then all but certain (0.8^48). At 6
    # an hour for 30 s, about 11 episodes, a run had none about once in twelve (0.8^11).
    start_load_job(cluster, profile="300:45", scenarios="all=24")
    wait_load_job(cluster)

    # Jaeger holds a trace of an alert across the five services' pods.
    services = wait_for(
        lambda: alert_trace_services(cluster),
        timeout=120,
        interval=2.0,
        what="a trace of an alert through the five services in Jaeger",
    )
    print(f"a trace of an alert through {sorted(services)}")


def test_the_dev_database_runs_with_the_charts_server_settings(
    local_cluster: LocalCluster, installed: Installation
) -> None:
    # dev.postgresql.settings reach the server as `postgres -c` (not the image's defaults).
    assert psql(local_cluster, "SHOW shared_buffers") == "512MB"
    assert psql(local_cluster, "SHOW max_wal_size") == "2GB"


def test_the_fleet_grows_to_100k_under_load_and_back_without_loss_or_reopened_episodes(
    local_cluster: LocalCluster, installed: Installation
) -> None:
    cluster = local_cluster
    wait_for(lambda: pipeline_ready(cluster), timeout=600, interval=2.0, what="pipeline Ready")
    assert set(replicas(cluster).values()) == {2}

    since = psql(cluster, "SELECT now()")
    start_load_job(cluster, profile="300:150")
    wait_for(
        lambda: "events from" in job_log(cluster),
        timeout=300,
        interval=1.0,
        what="the load Job sending",
    )

    patched = time.monotonic()
    set_vehicles(cluster, 100_000)
    try:
        grown_and_back(cluster, patched)
    except BaseException:
        # The tests after this one start from the installed pipeline, and the chart's
        # `helm upgrade` must not meet this test's field owner holding another value.
        set_vehicles(cluster, 50_000, check=False)
        raise

    alerts = int(
        psql(cluster, f"SELECT count(*) FROM fleetpipe.alerts WHERE episode_start >= '{since}'")
    )
    overlapping = psql(cluster, overlapping_episodes(since))
    print(f"alert episodes of the run {alerts}; reopened or duplicated: {overlapping or 'none'}")
    assert alerts > 0
    assert overlapping == ""


def grown_and_back(cluster: LocalCluster, patched: float) -> None:
    """50K → 100K under the running load Job, the Job finished with nothing lost, and back."""
    grown = wait_for(
        lambda: pipeline_ready(cluster), timeout=600, interval=1.0, what="pipeline Ready at 100K"
    )
    ready_s = time.monotonic() - patched
    assert grown["status"]["partitions"]["current"] == 100
    assert replicas(cluster) == dict.fromkeys(SERVICES, 4)
    wait_for(
        lambda: services_ready(cluster, dict.fromkeys(SERVICES, 4)),
        timeout=600,
        interval=2.0,
        what="four Ready pods of each service",
    )
    pods_s = time.monotonic() - patched
    print(f"50K -> 100K: patch to Ready {ready_s:.1f}s, to every new pod Ready {pods_s:.1f}s")

    wait_load_job(cluster)

    # Back to 50K: partitions stay (Kafka cannot remove them), the replicas follow the fleet.
    set_vehicles(cluster, 50_000)
    shrunk = wait_for(
        lambda: pipeline_ready(cluster), timeout=600, interval=1.0, what="pipeline Ready at 50K"
    )
    assert shrunk["status"]["partitions"]["current"] == 100
    assert replicas(cluster) == dict.fromkeys(SERVICES, 2)
