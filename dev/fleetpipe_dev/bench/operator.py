"""Operator benchmark: seconds from a FleetPipeline's 50K → 100K vehicles patch to Ready.

Everything is real: a fresh local control plane (etcd, kube-apiserver, controller-manager,
scheduler, kwok nodes), the dev stack's Kafka broker, and the operator as its own process. Each
run uses a namespace and topics of its own, so every run grows 50 partitions to 100 and scales
22 replicas to 43 from the same starting point.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import yaml
from rich.console import Console

from fleetpipe_dev.bench.session import BenchSession
from fleetpipe_dev.stack.devstack import DevStack, DevStackSettings
from fleetpipe_dev.stack.kube import KubeCluster
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import ServiceProcess, wait_for
from fleetpipe_loadtest.machine import machine

SAMPLES = Path(__file__).resolve().parents[2] / "k8s" / "samples"
CRD = Path(__file__).resolve().parents[2] / "k8s" / "crds" / "fleetpipelines.yaml"


@dataclass(frozen=True)
class OperatorRun:
    create_to_ready_s: float  # 50K applied → Ready (topics created, 22 pods Running)
    patch_to_observed_s: float  # 100K patch → the operator applied it (observedGeneration)
    patch_to_ready_s: float  # 100K patch → Ready (100 partitions, 43 pods Running)


class _Poller:
    """Reads a FleetPipeline's status through the API, without a kubectl process per look."""

    def __init__(self, kubeconfig: Path) -> None:
        from kubernetes import client, config

        self._api = client.CustomObjectsApi(
            config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        )

    def state(self, namespace: str, name: str) -> tuple[int, bool]:
        """(observedGeneration, Ready for that generation)."""
        obj = cast(
            dict[str, Any],
            self._api.get_namespaced_custom_object(
                "fleetpipe.io", "v1alpha1", namespace, "fleetpipelines", name
            ),
        )
        status = obj.get("status") or {}
        observed = int(status.get("observedGeneration") or 0)
        ready = any(
            c.get("type") == "Ready"
            and c.get("status") == "True"
            and c.get("observedGeneration") == observed
            for c in status.get("conditions") or []
        )
        return observed, ready


def _until(check: Any, *, timeout: float, what: str) -> float:
    started = time.monotonic()
    wait_for(check, timeout=timeout, interval=0.1, what=what)
    return time.monotonic() - started


def run_operator_bench(
    *, runs: int, nodes: int, report: Path, console: Console
) -> list[OperatorRun]:
    # The machine is shared: the load around the runs is part of the result.
    load_before = os.getloadavg()[0]
    session = BenchSession.start(
        DevStack(DevStackSettings()), name="opbench", partitions=1, report=report, console=console
    )
    bootstrap = session.kafka.bootstrap_servers
    home = Path(tempfile.mkdtemp(prefix="fleetpipe-opbench-"))
    cluster = KubeCluster(home=home / "kube", api_port=free_port(), nodes=nodes)
    started = time.monotonic()
    pids = cluster.start()
    console.print(f"control plane with {nodes} kwok nodes up in {time.monotonic() - started:.1f}s")
    logs = session.logs()
    operator = ServiceProcess(
        "fleet_operator",
        env={
            "KUBECONFIG": str(cluster.kubeconfig),
            "FLEET_OPERATOR_HEALTH_HOST": "127.0.0.1",
            "FLEET_OPERATOR_HEALTH_PORT": str(free_port()),
            "FLEET_OPERATOR_LOG_FORMAT": "text",
        },
        log_file=logs / "operator-bench.log",
    )
    results: list[OperatorRun] = []
    try:
        cluster.apply_crd(CRD)
        operator.start()
        poller = _Poller(cluster.kubeconfig)
        for run in range(1, runs + 1):
            results.append(_one_run(cluster, poller, bootstrap, run))
            operator.check_alive()
            r = results[-1]
            console.print(
                f"run {run}/{runs}: create→Ready {r.create_to_ready_s:5.1f}s  "
                f"50K→100K patch→applied {r.patch_to_observed_s:5.1f}s  "
                f"→Ready {r.patch_to_ready_s:5.1f}s"
            )
    finally:
        operator.stop()
        cluster.stop(pids)
        shutil.rmtree(home, ignore_errors=True)
    _write_report(session, results, nodes=nodes, load=(load_before, os.getloadavg()[0]))
    console.print(f"report: {report}")
    return results


def _one_run(cluster: KubeCluster, poller: _Poller, bootstrap: str, run: int) -> OperatorRun:
    namespace = f"bench-{run}-{int(time.time())}"
    cluster.kubectl_run("create", "namespace", namespace)
    for secret, literals in (
        ("fleetpipe-db", ["--from-literal=dsn=postgresql://db/fleet"]),
        (
            "fleetpipe-twilio",
            [
                "--from-literal=account_sid=AC0",
                "--from-literal=auth_token=x",
                "--from-literal=sms_from=+15550100",
            ],
        ),
        ("fleetpipe-webhook", ["--from-literal=hmac_key=x"]),
    ):
        cluster.kubectl_run("create", "secret", "generic", secret, "-n", namespace, *literals)
    doc = yaml.safe_load((SAMPLES / "fleetpipeline-50k.yaml").read_text())
    doc["spec"]["kafka"]["bootstrapServers"] = bootstrap
    doc["spec"]["kafka"]["topicSuffix"] = namespace
    doc["spec"]["deletionPolicy"] = "Delete"  # the benchmark leaves no topics behind
    name = doc["metadata"]["name"]
    try:
        cluster.kubectl_run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc))
        create = _until(
            lambda: poller.state(namespace, name) == (1, True), timeout=300, what="50K Ready"
        )
        cluster.kubectl_run(
            "patch", "fp", name, "-n", namespace, "--type=merge",
            "-p", '{"spec":{"fleet":{"vehicles":100000}}}',
        )  # fmt: skip
        patched = time.monotonic()
        _until(lambda: poller.state(namespace, name)[0] == 2, timeout=300, what="100K applied")
        observed = time.monotonic() - patched
        _until(lambda: poller.state(namespace, name) == (2, True), timeout=300, what="100K Ready")
        ready = time.monotonic() - patched
    finally:
        cluster.kubectl_run("delete", "fp", name, "-n", namespace, "--timeout=120s", check=False)
        cluster.kubectl_run("delete", "namespace", namespace, "--wait=false", check=False)
    return OperatorRun(create, observed, ready)


def _stats(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def _write_report(
    session: BenchSession, results: list[OperatorRun], *, nodes: int, load: tuple[float, float]
) -> None:
    env = machine()
    rows = [
        ("50K vehicles applied → Ready", [r.create_to_ready_s for r in results]),
        (
            "50K → 100K patch → applied (observedGeneration)",
            [r.patch_to_observed_s for r in results],
        ),
        ("**50K → 100K patch → Ready**", [r.patch_to_ready_s for r in results]),
    ]
    md = [
        *session.heading("Operator: FleetPipeline 50K → 100K vehicles to Ready"),
        "A fresh local control plane (etcd 3.4, kube-apiserver, kube-controller-manager and "
        f"kube-scheduler v1.37.1, {nodes} kwok nodes), the dev stack's Kafka broker and the "
        "operator as its own process (`python -m fleet_operator`), all on this machine. Each run "
        "applies `k8s/samples/fleetpipeline-50k.yaml` in a namespace of its own (its own topics), "
        "waits for Ready, then patches `spec.fleet.vehicles` to 100000 and measures until the "
        "status reports Ready for the new generation: 7 topics grown from 50 to 100 partitions "
        "first, then 5 Deployments scaled from 22 to 43 replicas and every pod Running and ready "
        "on the kwok nodes. Target (DESIGN §7): ≤ 60 s.",
        "",
        "| seconds | runs | median | min – max |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, values in rows:
        low, mid, high = _stats(values)
        md.append(f"| {label} | {len(values)} | {mid:.1f} | {low:.1f} – {high:.1f} |")
    md += [
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in env.items()),
        "",
        f"1-minute load average before / after the runs: {load[0]:.1f} / {load[1]:.1f} "
        "(the 2 cores are shared with other work).",
        "",
        "Every run (create → Ready, patch → applied, patch → Ready, seconds):",
        "",
    ]
    md += [
        f"- {r.create_to_ready_s:.1f}, {r.patch_to_observed_s:.1f}, {r.patch_to_ready_s:.1f}"
        for r in results
    ]
    session.report.write_text("\n".join(md) + "\n")
    session.report.with_suffix(".json").write_text(
        json.dumps(
            {
                "command": session.command,
                "machine": env,
                "nodes": nodes,
                "load_average_before_after": list(load),
                "runs": [asdict(r) for r in results],
                "median_patch_to_ready_s": statistics.median(r.patch_to_ready_s for r in results),
            },
            indent=2,
        )
        + "\n"
    )
