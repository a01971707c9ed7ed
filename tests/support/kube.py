"""A real Kubernetes control plane for the end-to-end tests: kubectl on it, the operator
running against it with nothing but a ServiceAccount's token, and the samples pointed at the
test broker. The fixtures in ``tests/e2e/conftest.py`` hand these out.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetpipe_dev.stack.kube import KubeCluster, find_tools
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import ServiceProcess, wait_for

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "k8s" / "samples"


@dataclass
class Kube:
    """kubectl against the session's cluster, and a few questions the tests ask often."""

    kubectl_bin: Path
    kubeconfig: Path
    start_seconds: float = 0.0

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.kubectl_bin), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def pipeline(self, namespace: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.json("get", "fleetpipeline", name, "-n", namespace)
        return found

    def condition(self, namespace: str, name: str, type_: str) -> dict[str, Any]:
        conditions = (self.pipeline(namespace, name).get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == type_), {})

    def create_sample_namespace(self, name: str) -> None:
        """A namespace with the Secrets the samples name (their values are never used here)."""
        self.run("create", "namespace", name)
        self.run(
            "create",
            "secret",
            "generic",
            "fleetpipe-db",
            "-n",
            name,
            "--from-literal=dsn=postgresql://fleetpipe@db/fleet",
        )
        self.run(
            "create",
            "secret",
            "generic",
            "fleetpipe-twilio",
            "-n",
            name,
            "--from-literal=account_sid=AC0000",
            "--from-literal=auth_token=secret",
            "--from-literal=sms_from=+15550100",
        )
        self.run(
            "create",
            "secret",
            "generic",
            "fleetpipe-webhook",
            "-n",
            name,
            "--from-literal=hmac_key=sample-signing-key",
        )

    def replicas(self, namespace: str, name: str) -> dict[str, int]:
        """Deployment name suffix → spec.replicas."""
        items = self.json(
            "get", "deployments", "-n", namespace, "-l", f"fleetpipe.io/pipeline={name}"
        )
        return {
            d["metadata"]["name"].removeprefix(f"{name}-"): d["spec"]["replicas"]
            for d in items["items"]
        }

    def events(self, namespace: str, name: str) -> list[tuple[str, str]]:
        """(reason, message) of the pipeline's Events, oldest first."""
        items = self.json(
            "get",
            "events",
            "-n",
            namespace,
            "--field-selector",
            f"involvedObject.kind=FleetPipeline,involvedObject.name={name}",
        )["items"]
        items.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        return [(e["reason"], e["message"]) for e in items]

    def wait_events(
        self, namespace: str, name: str, *reasons: str, timeout: float = 30
    ) -> list[tuple[str, str]]:
        """The pipeline's Events once every reason given is among them.

        kopf posts Events from a queue, so one may land a moment after the status it explains.
        """

        def check() -> list[tuple[str, str]] | None:
            events = self.events(namespace, name)
            return events if set(reasons) <= {r for r, _m in events} else None

        return wait_for(check, timeout=timeout, interval=0.5, what=f"Events {reasons}")

    def wait_ready(
        self, namespace: str, name: str, *, generation: int | None = None, timeout: float = 120
    ) -> dict[str, Any]:
        """Until Ready is True for ``generation`` (default: the current one); the object."""

        def check() -> dict[str, Any] | None:
            obj = self.pipeline(namespace, name)
            want = generation or obj["metadata"]["generation"]
            status = obj.get("status") or {}
            conditions = status.get("conditions") or []
            ready: dict[str, Any] = next((c for c in conditions if c["type"] == "Ready"), {})
            if status.get("observedGeneration") == want and ready.get("status") == "True":
                return obj
            return None

        return wait_for(check, timeout=timeout, interval=0.5, what=f"{namespace}/{name} Ready")


@dataclass
class OperatorHandle:
    process: ServiceProcess
    health_port: int

    def healthy(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.health_port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False


@contextmanager
def running_operator(
    kube: Kube,
    *,
    service_account: str,
    namespace: str,
    home: Path,
    timer_interval_s: float = 3,
) -> Iterator[OperatorHandle]:
    """``python -m fleet_operator`` with nothing but the token of ``service_account``.

    On the way out, fails when the operator's log shows a permission it lacked: an RBAC denial
    names the ServiceAccount ("... cannot list resource ..."); a 403 from a namespace being
    deleted at the end of a test does not.
    """
    home.mkdir(parents=True, exist_ok=True)
    token = kube.run(
        "create", "token", service_account, "-n", namespace, "--duration=12h"
    ).stdout.strip()
    config = json.loads(kube.kubeconfig.read_text())
    config["users"] = [{"name": "admin", "user": {"token": token}}]
    kubeconfig = home / "kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    port = free_port()
    process = ServiceProcess(
        "fleet_operator",
        env={
            "KUBECONFIG": str(kubeconfig),
            "FLEET_OPERATOR_TIMER_INTERVAL_S": str(timer_interval_s),
            "FLEET_OPERATOR_KAFKA_TIMEOUT_S": "10",
            "FLEET_OPERATOR_RETRY_BACKOFF_S": "2",
            "FLEET_OPERATOR_RETRY_BACKOFF_MAX_S": "20",
            "FLEET_OPERATOR_HEALTH_HOST": "127.0.0.1",
            "FLEET_OPERATOR_HEALTH_PORT": str(port),
            "FLEET_OPERATOR_LOG_FORMAT": "text",
        },
        log_file=home / "operator.log",
    ).start()
    handle = OperatorHandle(process, port)
    try:
        wait_for(handle.healthy, timeout=60, what="the operator's /healthz")
        yield handle
    finally:
        process.stop()
    denied = [
        line
        for line in process.log().splitlines()
        if f"system:serviceaccount:{namespace}:{service_account}" in line
    ]
    assert not denied, "the operator lacked permissions:\n" + "\n".join(denied[:10])


@contextmanager
def running_kube(home: Path, *, nodes: int = 3) -> Iterator[Kube]:
    """A control plane under ``home`` for the duration of the block (or FLEET_TEST_KUBECONFIG's)."""
    tools = find_tools()
    external = os.environ.get("FLEET_TEST_KUBECONFIG")
    if external:
        yield Kube(tools["kubectl"], Path(external))
        return
    cluster = KubeCluster(home=home, api_port=free_port(), nodes=nodes)
    started = time.monotonic()
    pids = cluster.start()
    handle = Kube(tools["kubectl"], cluster.kubeconfig, time.monotonic() - started)
    print(f"\nkubernetes control plane up in {handle.start_seconds:.1f}s on {cluster.server}")
    try:
        yield handle
    finally:
        cluster.stop(pids)


def sample_text(sample: str, *, bootstrap: str, suffix: str) -> str:
    """A sample file as written, pointed at the test broker with topics of its own."""
    text = (SAMPLES / sample).read_text()
    line = "    bootstrapServers: 127.0.0.1:19092\n"
    assert line in text, f"{sample} no longer names the dev broker"
    return text.replace(line, f'    bootstrapServers: {bootstrap}\n    topicSuffix: "{suffix}"\n')
