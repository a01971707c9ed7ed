"""Faults in the cluster under load: the chart's load-test Job runs while, one after another,
a pod of each of the five services is deleted with ``--grace-period=0 --force``, the Kafka
broker is killed and restarted, then stopped gracefully and restarted, and PostgreSQL is killed
and restarted. Then nothing may be lost or stored twice
(the Job's own accounting), no alert episode reopened or stored twice, and no notification
sent twice (the Twilio stand-in's messages and calls against notification's ledger).

The dev Kafka and PostgreSQL keep their data on an emptyDir, which goes with the pod: deleting
their pod would start an empty broker or database, not restart one. Their restart is their
container SIGKILLed through containerd, as a crash does; the kubelet starts it again in the
same pod, on the same data. The graceful one (SIGTERM: Kafka's controlled shutdown) is the
restart a rolling upgrade does to each broker; after either, the stages must store fresh events
within ``BROKER_BOUND_S`` of the broker's pod Ready again, without a restart of their own.

Each fault waits for the one before to be over: its pod (or container) Running and Ready again
and the load's events stored within ``FRESH_S`` of their ingest again. Both times are printed
per fault, with what the FleetPipeline's Ready and ServicesReady conditions said meanwhile,
and the pipeline's Events of the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import pytest

from fleet_operator.spec import Component
from fleet_operator.status import READY, SERVICES_READY
from fleetpipe_dev.cluster.install import (
    FLEET,
    NAMESPACE,
    PIPELINE,
    RELEASE,
    Installation,
    put_registry,
)
from fleetpipe_dev.cluster.node import LocalCluster
from fleetpipe_dev.cluster.observe import (
    get_json,
    job_finished,
    overlapping_episodes,
    pipeline_ready,
    psql,
    service_pods,
    services_ready,
    start_load_job,
)
from fleetpipe_dev.testing import wait_for
from fleetpipe_dev.twilio.audit import audit_deliveries
from fleetpipe_loadtest.loadrun import LoadPlan
from fleetpipe_loadtest.report import Step
from support.pods import (
    kill_container,
    ledger_sids,
    restarted_and_ready,
    stored_behind_s,
    twilio_records,
    wait_load_job,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

RUN_ID = "faults"
VEHICLES = 300
# Long enough for the eight faults and their recoveries; the Job runs to its end regardless.
LOAD_S = 360
# 6 injected episodes per vehicle-hour: about 30 a minute, so there are notifications to count.
SCENARIOS = "all=6"
FRESH_S = 5.0
# From the broker serving again (its pod Ready: the readiness probe is its port open, every 5 s)
# to the load's events stored fresh again.
BROKER_BOUND_S = 30.0
SERVICES = [c.value for c in Component]


@dataclass
class Recovery:
    fault: str
    back_s: float = float("nan")  # the pod, or its container, Running and Ready again
    flowing_s: float = float("nan")  # stored events within FRESH_S of their ingest again
    said: list[str] = field(default_factory=list)  # the pipeline's conditions meanwhile

    def line(self) -> str:
        said = " | ".join(self.said) or "-"
        return (
            f"{self.fault:<34} back {self.back_s:5.1f}s  flowing {self.flowing_s:5.1f}s  "
            f"status said: {said}"
        )


def conditions_said(cluster: LocalCluster) -> list[str]:
    """The FleetPipeline's Ready and ServicesReady conditions, as ``type=status message``."""
    pipeline = get_json(cluster, "fleetpipeline", PIPELINE)
    conditions = (pipeline.get("status") or {}).get("conditions") or []
    return [
        f"{c['type']}={c['status']} {c.get('message', '')}"
        for c in conditions
        if c["type"] in (READY, SERVICES_READY)
    ]


def recover(
    cluster: LocalCluster, fault: str, prefix: str, inject: Callable[[], Callable[[], bool]]
) -> Recovery:
    """Inject a fault (``inject`` returns the check that it is over) and time the recovery,
    noting each new thing the pipeline's Ready condition says meanwhile."""
    assert job_finished(cluster) is None, f"the load ended before '{fault}': raise LOAD_S"
    recovery = Recovery(fault)

    def noting(check: Callable[[], bool]) -> Callable[[], bool]:
        def checked() -> bool:
            for said in conditions_said(cluster):
                if said not in recovery.said:
                    recovery.said.append(said)
            return check()

        return checked

    def flowing() -> bool:
        behind = stored_behind_s(cluster, prefix)
        return behind is not None and behind <= FRESH_S

    start = time.monotonic()
    back = inject()
    wait_for(noting(back), timeout=240, interval=1.0, what=f"{fault}: back")
    recovery.back_s = time.monotonic() - start
    wait_for(noting(flowing), timeout=300, interval=1.0, what=f"{fault}: events stored again")
    recovery.flowing_s = time.monotonic() - start
    print(recovery.line())
    return recovery


def delete_a_pod(cluster: LocalCluster, service: str) -> Callable[[], bool]:
    pods = service_pods(cluster)[service]
    want = len(pods)
    name = pods[0]["metadata"]["name"]
    cluster.kubectl(
        "delete", "pod", name, "-n", NAMESPACE, "--grace-period=0", "--force", "--wait=false"
    )

    def replaced() -> bool:
        ready = services_ready(cluster) or {}
        names = [p["metadata"]["name"] for p in ready.get(service, [])]
        return len(names) == want and name not in names

    return replaced


def service_restarts(cluster: LocalCluster) -> dict[str, int]:
    """Each service pod's container restarts (a liveness probe's restart counts here)."""
    return {
        p["metadata"]["name"]: sum(
            int(c.get("restartCount", 0)) for c in p["status"].get("containerStatuses") or []
        )
        for pods in service_pods(cluster).values()
        for p in pods
    }


def last_ends(cluster: LocalCluster, pods: list[str]) -> dict[str, str]:
    """How each of ``pods``' containers last ended (the kubelet's reason and exit code) and
    the last lines its previous run logged: what a restart's assertion shows."""
    ended: dict[str, str] = {}
    for pod in pods:
        state = cluster.kubectl(
            "get", "pod", pod, "-n", NAMESPACE, "-o",
            "jsonpath={.status.containerStatuses[0].lastState.terminated}", check=False,
        )  # fmt: skip
        logs = cluster.kubectl(
            "logs", pod, "-n", NAMESPACE, "--previous", "--tail", "60", check=False
        )
        ended[pod] = f"{state}\n{logs}"
    return ended


def crash(cluster: LocalCluster, pod: str, signal: str = "SIGKILL") -> Callable[[], bool]:
    restarts = kill_container(cluster, pod, signal=signal)
    return lambda: restarted_and_ready(cluster, pod, restarts)


def test_the_pipeline_in_pods_rides_out_deleted_pods_and_broker_and_database_restarts(
    local_cluster: LocalCluster, installed: Installation
) -> None:
    cluster = local_cluster
    assert installed.twilio.api_base_url, "notifications must go to the stand-in to be counted"
    wait_for(lambda: pipeline_ready(cluster), timeout=600, interval=2.0, what="pipeline Ready")
    wait_for(lambda: services_ready(cluster), timeout=600, interval=2.0, what="services Ready")

    # The run's vehicles in the registry, with their drivers' numbers: their alerts notify.
    plan = LoadPlan(
        target="", token="", fleet_id=FLEET, run_id=RUN_ID,
        steps=(Step(VEHICLES, LOAD_S),), scenarios=SCENARIOS,
    )  # fmt: skip
    put_registry(cluster, plan.registry())
    since = psql(cluster, "SELECT now()")
    start_load_job(cluster, profile=f"{VEHICLES}:{LOAD_S}", run_id=RUN_ID, scenarios=SCENARIOS)
    prefix = plan.id_prefix
    wait_for(
        lambda: (b := stored_behind_s(cluster, prefix)) is not None and b <= FRESH_S,
        timeout=300,
        interval=1.0,
        what="the load's events stored",
    )

    recoveries = [
        recover(cluster, f"{s} pod deleted (force)", prefix, partial(delete_a_pod, cluster, s))
        for s in SERVICES
    ]
    kafka, postgres = f"{RELEASE}-kafka-0", f"{RELEASE}-postgresql-0"
    restarts_before = service_restarts(cluster)
    recoveries.append(
        recover(cluster, "Kafka broker SIGKILL, restart", prefix, partial(crash, cluster, kafka))
    )
    graceful = partial(crash, cluster, kafka, "SIGTERM")
    recoveries.append(recover(cluster, "Kafka broker SIGTERM, restart", prefix, graceful))
    broker = recoveries[-2:]
    restarts_after = service_restarts(cluster)
    recoveries.append(
        recover(cluster, "PostgreSQL SIGKILL, restart", prefix, partial(crash, cluster, postgres))
    )

    # Every accepted event stored exactly once (the Job fails otherwise).
    wait_load_job(cluster)

    # No alert episode reopened or stored twice.
    alerts = int(
        psql(cluster, f"SELECT count(*) FROM fleetpipe.alerts WHERE episode_start >= '{since}'")
    )
    overlapping = psql(cluster, overlapping_episodes(since))

    # No notification sent twice: once no delivery is in flight, every message and call the
    # provider holds is claimed by one ledger row, and no reference is on two messages.
    sids = wait_for(
        lambda: ledger_sids(cluster), timeout=180, interval=2.0, what="every delivery settled"
    )
    audit = audit_deliveries(
        sids,
        twilio_records(cluster, installed.twilio, "messages"),
        twilio_records(cluster, installed.twilio, "calls"),
    )

    events = cluster.kubectl(
        "get", "events", "-n", NAMESPACE, "--field-selector", "involvedObject.kind=FleetPipeline",
        "--sort-by=.lastTimestamp", "-o",
        "custom-columns=TIME:.lastTimestamp,TYPE:.type,REASON:.reason,MESSAGE:.message",
    )  # fmt: skip
    print("\n".join(r.line() for r in recoveries))
    print(f"the pipeline's Events:\n{events}")
    print(
        f"alert episodes {alerts}, reopened or stored twice: {overlapping or 'none'}; "
        f"notifications sent {audit.sent}, unclaimed {len(audit.unclaimed)}, "
        f"references on two messages {audit.repeated_references}"
    )
    assert alerts > 0
    assert overlapping == ""
    assert audit.sent > 0, "no notification was sent: the check would prove nothing"
    assert audit.unclaimed == [] and audit.repeated_references == 0
    # A broker restart, crashed or graceful, costs the stages no more than the bound.
    for recovery in broker:
        assert recovery.flowing_s - recovery.back_s <= BROKER_BOUND_S, recovery.line()
    assert restarts_after == restarts_before, (
        "a stage was restarted to get past the broker",
        restarts_after,
        last_ends(cluster, [p for p, n in restarts_after.items() if n != restarts_before.get(p)]),
    )
    # The status said it: each service's missing pod, while it was missing.
    for recovery, service in zip(recoveries, SERVICES, strict=False):
        missing = f"{SERVICES_READY}=False"
        assert any(s.startswith(missing) and service in s for s in recovery.said), recovery
