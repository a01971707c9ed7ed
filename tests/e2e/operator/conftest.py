"""The operator's world: a real control plane with kwok nodes, the CRD, and the operator running.

Only tests in this folder ask for these fixtures, so unit and integration runs never start
Kubernetes. The control plane is started once per session (about 10-20 s on the 2-core machine)
on free loopback ports under the session's work folder; FLEET_TEST_KUBECONFIG uses a running
cluster instead. The operator runs as ``python -m fleet_operator`` — the way its pod runs it —
with a ServiceAccount token bound to nothing but ``k8s/rbac/operator.yaml``, so every test also
proves that the least-privilege rules are enough.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet_operator.spec import parse_spec
from fleetpipe.core.settings import Topics
from fleetpipe.devstack.kube import KubeCluster, find_tools
from fleetpipe.devstack.procs import free_port
from fleetpipe.testing import ServiceProcess, wait_for

ROOT = Path(__file__).resolve().parents[3]
CRD = ROOT / "k8s" / "crds" / "fleetpipelines.yaml"
RBAC = ROOT / "k8s" / "rbac" / "operator.yaml"
SAMPLES = ROOT / "k8s" / "samples"
TIMER_INTERVAL_S = 3


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
            ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
            if status.get("observedGeneration") == want and ready.get("status") == "True":
                return obj
            return None

        return wait_for(check, timeout=timeout, interval=0.5, what=f"{namespace}/{name} Ready")


@pytest.fixture(scope="session")
def kube(workdir: Path) -> Iterator[Kube]:
    tools = find_tools()
    external = os.environ.get("FLEET_TEST_KUBECONFIG")
    if external:
        yield Kube(tools["kubectl"], Path(external))
        return
    cluster = KubeCluster(home=workdir / "kube", api_port=free_port(), nodes=3)
    started = time.monotonic()
    pids = cluster.start()
    handle = Kube(tools["kubectl"], cluster.kubeconfig, time.monotonic() - started)
    print(f"\nkubernetes control plane up in {handle.start_seconds:.1f}s on {cluster.server}")
    yield handle
    cluster.stop(pids)


@pytest.fixture(scope="session")
def crd(kube: Kube) -> str:
    kube.run("apply", "-f", str(CRD))
    name = "fleetpipelines.fleetpipe.io"

    def established() -> bool:
        # Polled rather than `kubectl wait`, which errors out while the CRD has no conditions.
        conditions = kube.json("get", "crd", name).get("status", {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    wait_for(established, timeout=60, what=f"CRD {name} established")
    return name


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


@pytest.fixture(scope="session")
def operator(kube: Kube, crd: str, workdir: Path) -> Iterator[OperatorHandle]:
    kube.run("create", "namespace", "fleetpipe-system", check=False)
    kube.run("apply", "-f", str(RBAC))
    token = kube.run(
        "create", "token", "fleetpipe-operator", "-n", "fleetpipe-system", "--duration=12h"
    ).stdout.strip()
    config = json.loads(kube.kubeconfig.read_text())
    config["users"] = [{"name": "admin", "user": {"token": token}}]
    kubeconfig = workdir / "operator-kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    port = free_port()
    process = ServiceProcess(
        "fleet_operator",
        env={
            "KUBECONFIG": str(kubeconfig),
            "FLEET_OPERATOR_TIMER_INTERVAL_S": str(TIMER_INTERVAL_S),
            "FLEET_OPERATOR_KAFKA_TIMEOUT_S": "10",
            "FLEET_OPERATOR_RETRY_BACKOFF_S": "2",
            "FLEET_OPERATOR_RETRY_BACKOFF_MAX_S": "20",
            "FLEET_OPERATOR_HEALTH_HOST": "127.0.0.1",
            "FLEET_OPERATOR_HEALTH_PORT": str(port),
            "FLEET_OPERATOR_LOG_FORMAT": "text",
        },
        log_file=workdir / "operator.log",
    ).start()
    handle = OperatorHandle(process, port)
    wait_for(handle.healthy, timeout=60, what="the operator's /healthz")
    yield handle
    process.stop()
    # An RBAC denial names the ServiceAccount ("... cannot list resource ..."); a 403 from a
    # namespace being deleted at the end of a test does not.
    denied = [
        line
        for line in process.log().splitlines()
        if "system:serviceaccount:fleetpipe-system:fleetpipe-operator" in line
    ]
    assert not denied, "the operator lacked permissions:\n" + "\n".join(denied[:10])


@pytest.fixture
def namespace(kube: Kube, crd: str) -> Iterator[str]:
    """A namespace of its own, with the Secrets the samples name."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kube.run("create", "namespace", name)
    kube.run(
        "create",
        "secret",
        "generic",
        "fleetpipe-db",
        "-n",
        name,
        "--from-literal=dsn=postgresql://db/fleet",
    )
    kube.run(
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
    yield name
    kube.run("delete", "namespace", name, "--wait=false", check=False)


@dataclass
class Pipeline:
    namespace: str
    name: str
    suffix: str

    @property
    def topics(self) -> Topics:
        return Topics.with_suffix(self.suffix)


def sample_text(sample: str, *, bootstrap: str, suffix: str) -> str:
    """A sample file as written, pointed at the test broker with topics of its own."""
    text = (SAMPLES / sample).read_text()
    line = "    bootstrapServers: 127.0.0.1:19092\n"
    assert line in text, f"{sample} no longer names the dev broker"
    return text.replace(line, f'    bootstrapServers: {bootstrap}\n    topicSuffix: "{suffix}"\n')


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


@pytest.fixture
def make_pipeline(kube: Kube, kafka: Any, namespace: str) -> Callable[..., Pipeline]:
    """Apply a sample (optionally changed) in the test's namespace, with unique topics."""

    def make(sample: str = "fleetpipeline-50k.yaml", **spec: Any) -> Pipeline:
        # A letter first: an all-digit (or 1e5-like) suffix would be a YAML number.
        suffix = f"t{uuid.uuid4().hex[:10]}"
        text = sample_text(sample, bootstrap=kafka.bootstrap, suffix=suffix)
        if spec:
            doc = yaml.safe_load(text)
            doc["spec"] = _merge(doc["spec"], spec)
            parse_spec(doc["spec"])  # a typo in a test should fail here, clearly
            text = yaml.safe_dump(doc)
        kube.run("apply", "-n", namespace, "-f", "-", stdin=text)
        name = yaml.safe_load(text)["metadata"]["name"]
        return Pipeline(namespace, name, suffix)

    return make
