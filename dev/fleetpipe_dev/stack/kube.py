"""A local Kubernetes control plane: etcd, kube-apiserver, controller-manager, scheduler, kwok.

Every component is a real upstream binary: etcd from Debian's packages, the Kubernetes binaries and
kwok built from the Go module proxy by ``scripts/build-go-tools.sh`` into the cache
(``$FLEETPIPE_CACHE/bin``, by default ``~/.cache/fleetpipe/bin``). kwok plays the kubelets of N fake
nodes, so the scheduler places pods on them and they become Running without any container runtime.

Everything binds to 127.0.0.1, lives under one home folder (etcd data, certificates, logs,
kubeconfig) and authenticates with a static token of the ``system:masters`` group. Every process has
the home folder in its command line: that is the marker ``stop`` checks before signalling a pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleetpipe_dev.stack.devstack import StackState
from fleetpipe_dev.stack.kafka import default_cache
from fleetpipe_dev.stack.procs import StartError, free_port, spawn, stop_pid, wait_until

KUBE_TOOLS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
# Started in this order, stopped in the reverse one.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# kwok manages only the nodes carrying this annotation: the ones this module creates.
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
SERVICE_CIDR = "10.96.0.0/16"
# Debian's etcd 3.4 lacks the progress notifications that client-go's streaming list needs
# (see --feature-gates on the API server): the clients are told not to ask for it.
_CLIENT_ENV = {"KUBE_FEATURE_WatchListClient": "false"}


def bin_dir(cache: Path | None = None) -> Path:
    return (cache or default_cache()) / "bin"


def find_tools(directory: Path | None = None) -> dict[str, Path]:
    """Paths of every binary the control plane needs; a clear error when one is missing."""
    directory = directory or bin_dir()
    tools: dict[str, Path] = {}
    missing = []
    for name in KUBE_TOOLS:
        path = directory / name
        if os.access(path, os.X_OK):
            tools[name] = path
        else:
            missing.append(name)
    if missing:
        raise StartError(
            f"{', '.join(missing)} not found in {directory}: build them (once, cached) with "
            "`scripts/build-go-tools.sh k8s kwok`, or point FLEETPIPE_CACHE at a cache holding bin/"
        )
    etcd = os.environ.get("FLEETPIPE_ETCD") or shutil.which("etcd")
    if not etcd:
        raise StartError(
            "etcd not found: install Debian's etcd-server (apt-get install etcd-server) "
            "or set FLEETPIPE_ETCD to its path"
        )
    tools["etcd"] = Path(etcd)
    return tools


def _stages_yaml() -> str:
    return (resources.files("fleetpipe_dev.stack.kwok") / "stages.yaml").read_text()


@dataclass
class KubeCluster:
    """A control plane under ``home``, its API server on ``api_port``, ``nodes`` kwok nodes."""

    home: Path
    api_port: int
    nodes: int = 3
    tools_dir: Path = field(default_factory=bin_dir)
    _tools: dict[str, Path] | None = field(default=None, repr=False)

    # ---- paths ---------------------------------------------------------------------------
    @property
    def marker(self) -> str:
        return str(self.home)

    @property
    def kubeconfig(self) -> Path:
        return self.home / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def pki(self) -> Path:
        return self.home / "pki"

    @property
    def ca_file(self) -> Path:
        # kube-apiserver writes its self-signed serving certificate and the CA that signed it
        # into this one file; trusting the file trusts that CA.
        return self.pki / "apiserver.crt"

    def log_file(self, component: str) -> Path:
        return self.home / "logs" / f"{component}.log"

    @property
    def tools(self) -> dict[str, Path]:
        if self._tools is None:
            self._tools = find_tools(self.tools_dir)
        return self._tools

    @property
    def kubectl(self) -> Path:
        return self.tools["kubectl"]

    # ---- one-time material ---------------------------------------------------------------
    def _ports(self) -> dict[str, int]:
        """etcd's ports, kept across restarts: a member's peer URL is stored in its data."""
        path = self.home / "ports.json"
        if path.exists():
            ports: dict[str, int] = json.loads(path.read_text())
            return ports
        ports = {"etcd_client": free_port(), "etcd_peer": free_port()}
        path.write_text(json.dumps(ports))
        return ports

    @property
    def token(self) -> str:
        return (self.home / "token").read_text().strip()

    def _prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.pki.mkdir(exist_ok=True)
        token_file = self.home / "token"
        if not token_file.exists():
            token_file.touch(mode=0o600)
            token_file.write_text(secrets.token_hex(24))
        tokens_csv = self.home / "tokens.csv"
        tokens_csv.touch(mode=0o600)
        tokens_csv.write_text(f"{self.token},admin,admin,system:masters\n")
        sa_key = self.pki / "sa.key"
        if not sa_key.exists():
            self._openssl("genrsa", "-out", str(sa_key), "2048")
            self._openssl("rsa", "-in", str(sa_key), "-pubout", "-out", str(self.pki / "sa.pub"))
        (self.home / "kwok-stages.yaml").write_text(_stages_yaml())

    @staticmethod
    def _openssl(*args: str) -> None:
        result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StartError(f"openssl {args[0]} failed: {result.stderr.strip()}")

    def write_kubeconfig(self, path: Path | None = None) -> Path:
        path = path or self.kubeconfig
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "fleetpipe-local",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "fleetpipe-local",
                    "context": {
                        "cluster": "fleetpipe-local",
                        "user": "admin",
                        "namespace": "default",
                    },
                }
            ],
            "current-context": "fleetpipe-local",
        }
        path.touch(mode=0o600)
        # JSON is YAML: no YAML writer needed for a file kubectl and the clients read.
        path.write_text(json.dumps(config, indent=2))
        return path

    # ---- commands ------------------------------------------------------------------------
    def _commands(self) -> dict[str, list[str]]:
        ports = self._ports()
        tools = self.tools
        kubeconfig = str(self.kubeconfig)
        etcd_url = f"http://127.0.0.1:{ports['etcd_client']}"
        peer_url = f"http://127.0.0.1:{ports['etcd_peer']}"
        return {
            "etcd": [
                str(tools["etcd"]),
                "--name=fleetpipe",
                f"--data-dir={self.home / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=fleetpipe={peer_url}",
                "--initial-cluster-state=new",
                # A throw-away cluster: fsync per write would make a loaded disk the bottleneck.
                "--unsafe-no-fsync",
                "--quota-backend-bytes=2147483648",
                "--log-level=warn",
            ],
            "kube-apiserver": [
                str(tools["kube-apiserver"]),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.api_port}",
                # Needed with a loopback advertise address, otherwise the server exits.
                "--endpoint-reconciler-type=none",
                f"--cert-dir={self.pki}",
                f"--token-auth-file={self.home / 'tokens.csv'}",
                "--authorization-mode=Node,RBAC",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={self.pki / 'sa.pub'}",
                f"--service-account-signing-key-file={self.pki / 'sa.key'}",
                "--enable-priority-and-fairness=false",
                # With WatchList on, a watch from resourceVersion 0 (how kwok watches pods) is
                # served as a watch-list stream, which needs etcd's progress notifications;
                # Debian's etcd 3.4 has none, so every such watch failed at once and kwok only
                # saw new pods when it re-listed, 5-15 s later.
                "--feature-gates=WatchList=false",
                "--v=1",
            ],
            "kube-controller-manager": [
                str(tools["kube-controller-manager"]),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                # No serving port: several clusters (tests, benchmarks) run side by side.
                "--secure-port=0",
                f"--service-account-private-key-file={self.pki / 'sa.key'}",
                f"--root-ca-file={self.ca_file}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # It publishes the API server's serving CA as a ClusterTrustBundle, which the
                # self-signed serving certificate cannot be (no CA bit): it would only log errors.
                "--controllers=*,-kube-apiserver-serving-clustertrustbundle-publisher-controller",
                # kwok's heartbeats come every 20-45 s; a loaded machine may delay them further.
                "--node-monitor-grace-period=180s",
                "--v=1",
            ],
            "kube-scheduler": [
                str(tools["kube-scheduler"]),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                "--v=1",
            ],
            "kwok": [
                str(tools["kwok"]),
                f"--kubeconfig={kubeconfig}",
                f"--config={self.home / 'kwok-stages.yaml'}",
                f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
                "--cidr=10.0.0.0/16",
            ],
        }

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self, *, timeout: float = 180.0) -> dict[str, int]:
        """Start every component, create the fake nodes; returns the pid of each component.

        Waits until the API server is ready, the default ServiceAccount exists (the
        controller-manager works) and every node is Ready (kwok works). A component that fails
        stops the ones already started, so a failed start leaves nothing behind.
        """
        self._prepare()
        commands = self._commands()
        pids: dict[str, int] = {}
        # The components the next ones need: each is waited for before the next starts.
        checks = {
            "etcd": (self._etcd_healthy, "etcd", 0.2),
            "kube-apiserver": (self._api_ready, f"kube-apiserver on {self.server}", 0.5),
        }
        try:
            for component in COMPONENTS:
                log_file = self.log_file(component)
                proc = spawn(commands[component], log_file=log_file, env=_CLIENT_ENV)
                pids[component] = proc.pid
                if component in checks:
                    ready, what, interval = checks[component]
                    wait_until(
                        ready,
                        timeout=timeout,
                        what=what,
                        proc=proc,
                        log_file=log_file,
                        interval=interval,
                    )
                if component == "kube-apiserver":
                    self.write_kubeconfig()
            self._create_nodes()
            wait_until(
                lambda: self._ready_nodes() >= self.nodes and self._has_default_account(),
                timeout=timeout,
                what=f"{self.nodes} kwok nodes Ready and the default ServiceAccount",
                log_file=self.log_file("kwok"),
                interval=0.5,
            )
        except BaseException:
            self.stop(pids)
            raise
        return pids

    def stop(self, pids: Mapping[str, int], *, kill: bool = False) -> dict[str, bool]:
        """Stop the given components (ours only: their command line names our home)."""
        stopped: dict[str, bool] = {}
        for component in reversed(COMPONENTS):
            if component in pids:
                stopped[component] = stop_pid(
                    pids[component],
                    self.marker,
                    sig=signal.SIGKILL if kill else signal.SIGTERM,
                    timeout=20.0,
                )
        return stopped

    def purge(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    # ---- checks --------------------------------------------------------------------------
    def _etcd_healthy(self) -> bool:
        url = f"http://127.0.0.1:{self._ports()['etcd_client']}/health"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(json.loads(resp.read()).get("health") == "true")

    def _api_ready(self) -> bool:
        if not self.ca_file.exists():
            return False
        context = ssl.create_default_context(cafile=str(self.ca_file))
        request = urllib.request.Request(  # noqa: S310 - https to loopback
            f"{self.server}/readyz", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=3, context=context) as resp:  # noqa: S310
            return bool(resp.status == 200)

    def kubectl_run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise StartError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl_run(*args, "-o", "json").stdout)

    def apply_crd(self, path: Path, *, timeout: float = 60.0) -> str:
        """Apply a CustomResourceDefinition and wait until the API serves it; its name."""
        applied = self.kubectl_run("apply", "-f", str(path), "-o", "name").stdout.strip()
        name = applied.split("/", 1)[-1]

        def established() -> bool:
            # Polled: `kubectl wait` errors out while a new CRD has no conditions yet.
            crd = self.kubectl_json("get", "crd", name)
            return any(
                c["type"] == "Established" and c["status"] == "True"
                for c in crd.get("status", {}).get("conditions") or []
            )

        wait_until(established, timeout=timeout, what=f"CRD {name} established")
        return name

    def node_names(self) -> list[str]:
        return [f"kwok-node-{i}" for i in range(self.nodes)]

    def _create_nodes(self) -> None:
        docs = []
        for name in self.node_names():
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {KWOK_NODE_ANNOTATION: "fake"},
                        "labels": {
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                            "type": "kwok",
                        },
                    },
                    # Room for every test's pods; the scheduler checks requests against this.
                    "status": {
                        "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "250"},
                        "capacity": {"cpu": "64", "memory": "256Gi", "pods": "250"},
                    },
                }
            )
        self.kubectl_run(
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}),
        )

    def _ready_nodes(self) -> int:
        nodes = self.kubectl_json("get", "nodes")["items"]
        return sum(
            1
            for node in nodes
            for cond in node.get("status", {}).get("conditions", [])
            if cond["type"] == "Ready" and cond["status"] == "True"
        )

    def _has_default_account(self) -> bool:
        result = self.kubectl_run("get", "serviceaccount", "default", "-n", "default", check=False)
        return result.returncode == 0

    def healthy(self) -> bool:
        with contextlib.suppress(Exception):
            return self._api_ready()
        return False


class KubeDevSettings(BaseSettings):
    """``FLEET_DEV_KUBE_*``; the home defaults to ``<FLEET_DEV_HOME>/kube``."""

    model_config = SettingsConfigDict(env_prefix="FLEET_DEV_KUBE_", frozen=True, extra="ignore")

    home: Path | None = None
    api_port: int = Field(default=16443, ge=1, le=65535)
    nodes: int = Field(default=3, ge=1, le=100)


class KubeStack:
    """``fleetpipe dev kube up | down | status``: one recorded control plane."""

    def __init__(self, settings: KubeDevSettings, dev_home: Path) -> None:
        home = settings.home or dev_home / "kube"
        self.cluster = KubeCluster(home=home, api_port=settings.api_port, nodes=settings.nodes)
        self.state = StackState.load(home / "state.json")

    def up(self, *, say: Any = print) -> None:
        running = [c for c in COMPONENTS if self.state.running(c)]
        if len(running) == len(COMPONENTS):
            say(f"kubernetes already running on {self.cluster.server}")
            return
        if running:
            # Half a control plane is worse than none: restart it as a whole.
            self.down(say=say)
        say(f"kubernetes starting on {self.cluster.server} ({self.cluster.nodes} kwok nodes)")
        pids = self.cluster.start()
        for component, pid in pids.items():
            self.state.processes[component] = {
                "pid": pid,
                "marker": self.cluster.marker,
                "address": self.cluster.server if component == "kube-apiserver" else "",
            }
        self.state.save()

    def down(self, *, purge: bool = False, say: Any = print) -> None:
        pids = {name: int(proc["pid"]) for name, proc in self.state.processes.items()}
        for component, stopped in self.cluster.stop(pids).items():
            say(f"{component:<24} {'stopped' if stopped else 'was not running'}")
        self.state.processes.clear()
        self.state.save()
        if purge:
            self.cluster.purge()
            say("data                     removed")

    def status(self) -> dict[str, dict[str, Any]]:
        return {
            name: {**proc, "running": self.state.running(name)}
            for name, proc in self.state.processes.items()
        }
