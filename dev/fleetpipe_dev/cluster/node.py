"""A one-node Kubernetes with real pods, every process inside the cluster's network namespace.

The control plane is the project's (:class:`~fleetpipe_dev.stack.kube.KubeCluster`: etcd,
kube-apiserver, controller-manager, scheduler, its certificates and kubeconfig) with the API
server on the node address; the node adds containerd (Debian's, with runc), the CNI bridge,
kubelet, kube-proxy (iptables) and CoreDNS. The images come from ``make image``'s archives,
imported into containerd: nothing is pulled.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fleetpipe_dev.cluster import netns
from fleetpipe_dev.cluster.config import cni_conflist, containerd_toml, corefile, kubelet_config
from fleetpipe_dev.cluster.settings import ClusterSettings
from fleetpipe_dev.image.build import ImageArchive
from fleetpipe_dev.image.dockerd import remove_cgroup_trees
from fleetpipe_dev.stack.devstack import StackState
from fleetpipe_dev.stack.kube import _CLIENT_ENV, KubeCluster, bin_dir
from fleetpipe_dev.stack.procs import StartError, spawn, stop_pid, wait_until

Say = Callable[[str], None]

# Started in this order, stopped in the reverse one.
COMPONENTS = (
    "containerd",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "coredns",
)
NODE_TOOLS = ("kubelet", "kube-proxy", "coredns")
DNS_READY_PORT = 18181


class LocalCluster:
    """``fleetpipe dev cluster up | down | status`` over one recorded set of processes."""

    def __init__(self, settings: ClusterSettings) -> None:
        self.settings = settings
        self.home = settings.home
        self.control = _NodeControlPlane(home=self.home, api_port=settings.api_port, nodes=0)
        self.control.node_ip = settings.node_ip
        self.state = StackState.load(self.home / "state.json")

    # ---- paths ---------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.control.kubeconfig

    @property
    def containerd_socket(self) -> Path:
        return self.home / "containerd" / "containerd.sock"

    def log_file(self, component: str) -> Path:
        return self.control.log_file(component)

    def ns(self, *cmd: str) -> list[str]:
        return netns.in_netns(self.settings, cmd)

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60.0) -> str:
        cmd = self.ns(str(self.control.kubectl), f"--kubeconfig={self.kubeconfig}", *args)
        return netns.run(cmd, check=check, timeout=timeout)

    def kubectl_apply(self, manifest: Mapping[str, Any]) -> str:
        """``kubectl apply`` of one object (a ``List`` for several)."""
        cmd = self.ns(str(self.control.kubectl), f"--kubeconfig={self.kubeconfig}", "apply")
        return netns.run([*cmd, "-f", "-"], stdin=json.dumps(manifest))

    def helm(self, *args: str, timeout: float = 300.0) -> str:
        """The cached helm against this cluster."""
        helm = bin_dir() / "helm"
        cmd = self.ns(str(helm), f"--kubeconfig={self.kubeconfig}", *args)
        return netns.run(cmd, timeout=timeout)

    def ctr(self, *args: str, check: bool = True, timeout: float = 300.0) -> str:
        cmd = ["ctr", f"--address={self.containerd_socket}", "--namespace=k8s.io", *args]
        return netns.run(cmd, check=check, timeout=timeout)

    # ---- files ---------------------------------------------------------------------------
    def _write_files(self) -> None:
        s = self.settings
        for folder in ("containerd", "cni/net.d", "cni/state", "kubelet", "logs"):
            (self.home / folder).mkdir(parents=True, exist_ok=True)
        (self.home / "containerd" / "config.toml").write_text(containerd_toml(s))
        (self.home / "cni" / "net.d" / "10-fleetpipe.conflist").write_text(cni_conflist(s))
        (self.home / "kubelet-config.yaml").write_text(kubelet_config(s))
        (self.home / "Corefile").write_text(
            corefile(s, self.kubeconfig, dns_ready_port=DNS_READY_PORT)
        )

    def _commands(self) -> dict[str, list[str]]:
        s = self.settings
        tools = bin_dir()
        missing = [t for t in NODE_TOOLS if not (tools / t).exists()]
        if missing:
            raise StartError(
                f"{', '.join(missing)} not found in {tools}: scripts/build-go-tools.sh "
                "kubelet kube-proxy coredns"
            )
        control = self.control._commands()
        kubeconfig = f"--kubeconfig={self.kubeconfig}"
        apiserver = [
            a
            for a in control["kube-apiserver"]
            # On the node address the API server keeps the `kubernetes` Service's endpoints
            # itself, as pods (the operator) need them.
            if not a.startswith(("--bind-address", "--advertise-address", "--endpoint-reconciler"))
        ]
        apiserver += [
            "--bind-address=0.0.0.0",
            f"--advertise-address={s.node_ip}",
            "--kubelet-preferred-address-types=InternalIP",
        ]
        controller = [
            a for a in control["kube-controller-manager"] if not a.startswith("--node-monitor")
        ]
        containerd = shutil.which("containerd") or "containerd"
        return {
            "containerd": [containerd, f"--config={self.home / 'containerd' / 'config.toml'}"],
            "etcd": control["etcd"],
            "kube-apiserver": apiserver,
            "kube-controller-manager": controller,
            "kube-scheduler": control["kube-scheduler"],
            "kubelet": [
                str(tools / "kubelet"),
                f"--config={self.home / 'kubelet-config.yaml'}",
                kubeconfig,
                f"--root-dir={self.home / 'kubelet'}",
                f"--cert-dir={self.home / 'kubelet' / 'pki'}",
                f"--node-ip={s.node_ip}",
                f"--hostname-override={s.node_name}",
            ],
            "kube-proxy": [
                str(tools / "kube-proxy"),
                kubeconfig,
                f"--hostname-override={s.node_name}",
                f"--cluster-cidr={s.pod_cidr}",
                "--proxy-mode=iptables",
                # 0: leave the host-wide nf_conntrack_max alone.
                "--conntrack-max-per-core=0",
                "--metrics-bind-address=127.0.0.1:10249",
                "--healthz-bind-address=127.0.0.1:10256",
            ],
            "coredns": [str(tools / "coredns"), "-conf", str(self.home / "Corefile")],
        }

    # ---- up ------------------------------------------------------------------------------
    def up(self, archives: list[ImageArchive], *, say: Say = print) -> None:
        """Start everything that is not running; a half-running cluster is restarted whole,
        and what a killed run left on the host (containers, mounts, its network namespace)
        is swept first."""
        running = [c for c in COMPONENTS if self.state.running(c)]
        if len(running) == len(COMPONENTS):
            netns_name = self.settings.netns
            say(f"cluster already running (KUBECONFIG={self.kubeconfig}, netns {netns_name})")
            return
        if running or any(self.leftovers().values()):
            self.down(say=say)
        start = time.monotonic()
        step = _Steps(say, start)
        self.control._prepare()
        self._write_files()
        netns.create(self.settings)
        step(f"network namespace {self.settings.netns}: node {self.settings.node_ip}")
        commands = self._commands()
        try:
            self._spawn("containerd", commands)
            wait_until(
                lambda: bool(self.ctr("version", timeout=5)),
                timeout=60,
                what="containerd",
                log_file=self.log_file("containerd"),
            )
            step("containerd")
            self._import(archives, step=step)
            self._spawn("etcd", commands)
            wait_until(self._etcd_healthy, timeout=60, what="etcd", log_file=self.log_file("etcd"))
            self._spawn("kube-apiserver", commands)
            self.control.write_kubeconfig()
            wait_until(
                self._api_ready,
                timeout=180,
                what="kube-apiserver",
                interval=0.5,
                log_file=self.log_file("kube-apiserver"),
            )
            step("etcd, kube-apiserver")
            for component in COMPONENTS[3:]:
                self._spawn(component, commands)
            wait_until(
                self._node_ready,
                timeout=180,
                what=f"node {self.settings.node_name} Ready",
                interval=1.0,
                log_file=self.log_file("kubelet"),
            )
            wait_until(
                self._default_account,
                timeout=120,
                what="the default ServiceAccount",
                interval=1.0,
                log_file=self.log_file("kube-controller-manager"),
            )
            wait_until(
                self._dns_ready,
                timeout=60,
                what="CoreDNS ready",
                interval=0.5,
                log_file=self.log_file("coredns"),
            )
            step("controller-manager, scheduler, kubelet, kube-proxy, CoreDNS; node Ready")
        except BaseException:
            self.down(say=say)
            raise
        say(f"cluster up in {time.monotonic() - start:.0f}s")

    def _spawn(self, component: str, commands: dict[str, list[str]]) -> None:
        proc = spawn(
            self.ns(*commands[component]), log_file=self.log_file(component), env=_CLIENT_ENV
        )
        self.state.processes[component] = {
            "pid": proc.pid,
            "marker": str(self.home),
            "address": self.control.server if component == "kube-apiserver" else "",
        }
        self.state.save()

    def _import(self, archives: list[ImageArchive], *, step: Callable[[str], None]) -> None:
        """Import each image whose id containerd does not hold yet (recorded per ref)."""
        record = self.home / "containerd" / "imported.json"
        imported: dict[str, str] = json.loads(record.read_text()) if record.exists() else {}
        present = set(self.ctr("images", "ls", "-q").split())
        for archive in archives:
            name = _normalized(archive.ref)
            if imported.get(archive.ref) == archive.image_id and name in present:
                continue
            self.ctr("images", "import", str(archive.path), timeout=600)
            imported[archive.ref] = archive.image_id
            record.write_text(json.dumps(imported, indent=2))
            step(f"imported {archive.ref}")

    # ---- checks (inside the namespace) -----------------------------------------------------
    def _etcd_healthy(self) -> bool:
        port = self.control._ports()["etcd_client"]
        return '"health":"true"' in netns.run(
            self.ns("curl", "-sf", f"http://127.0.0.1:{port}/health"), check=False, timeout=5
        )

    def _api_ready(self) -> bool:
        return self.kubectl("get", "--raw=/readyz", check=False, timeout=10).strip() == "ok"

    def _dns_ready(self) -> bool:
        # CoreDNS's `ready` plugin answers 200 once the kubernetes plugin has synced.
        url = f"http://127.0.0.1:{DNS_READY_PORT}/ready"
        return bool(netns.run(self.ns("curl", "-sf", url), check=False, timeout=5))

    def _node_ready(self) -> bool:
        node = self.kubectl("get", "node", self.settings.node_name, "-o", "json", check=False)
        if not node:
            return False
        conditions = json.loads(node).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _default_account(self) -> bool:
        return bool(self.kubectl("get", "serviceaccount", "default", "-o", "name", check=False))

    # ---- down ----------------------------------------------------------------------------
    def down(self, *, say: Say = print) -> None:
        """Stop everything and remove what the cluster put on the host: processes, mounts,
        network namespaces, cgroup folders and etcd's data."""
        # Read the record again: another process (`install`) may have added to it.
        self.state = StackState.load(self.home / "state.json")
        pids = {name: int(proc["pid"]) for name, proc in self.state.processes.items()}
        marker = str(self.home)
        stopped: dict[str, bool] = {}
        # What `install` added beside the cluster (the Twilio stand-in) goes first.
        for extra in [name for name in pids if name not in COMPONENTS]:
            stopped[extra] = stop_pid(pids[extra], marker, timeout=10)
            say(f"{extra:<24} {'stopped' if stopped[extra] else 'was not running'}")
        # No new pods while the old ones go: the scheduler and the controllers stop first.
        for component in ("kube-scheduler", "kube-controller-manager"):
            if component in pids:
                stopped[component] = stop_pid(pids[component], marker, timeout=20)
        if self.state.running("kube-apiserver") and self.state.running("kubelet"):
            self.kubectl(
                "delete",
                "pods",
                "--all",
                "--all-namespaces",
                "--grace-period=5",
                "--timeout=90s",
                check=False,
                timeout=120,
            )
        for component in reversed(COMPONENTS):
            if component in pids:
                if component not in stopped:
                    stopped[component] = stop_pid(pids[component], marker, timeout=20)
                say(f"{component:<24} {'stopped' if stopped[component] else 'was not running'}")
        self.state.processes.clear()
        self.state.save()
        self._sweep(say=say)

    def _sweep(self, *, say: Say) -> None:
        # Containers whose pod was not deleted, and their shims (named by our socket).
        leftovers = netns.pids_in_cgroup("kubepods") + netns.pids_naming(str(self.home))
        netns.kill_all(leftovers)
        if leftovers:
            say(f"{'leftover processes':<24} {len(leftovers)} killed")
        cni_netns = sorted(Path("/run/netns").glob("cni-*")) if Path("/run/netns").exists() else []
        unmounted = netns.unmount_all(self.home / "kubelet", self.home / "containerd", *cni_netns)
        for path in cni_netns:
            path.unlink(missing_ok=True)
        deleted = netns.delete(self.settings)
        say(
            f"{'network namespace':<24} {'deleted' if deleted else 'was not there'}"
            f" ({unmounted} mounts released)"
        )
        # etcd's data, pod addresses, pod folders, logs and container state are per run; the
        # imported images (containerd's root) stay for the next `up`.
        for folder in ("etcd", "cni/state", "containerd/state", "kubelet/pods", "pod-logs"):
            shutil.rmtree(self.home / folder, ignore_errors=True)
        remove_cgroup_trees("kubepods")

    # ---- status --------------------------------------------------------------------------
    def status(self) -> dict[str, dict[str, Any]]:
        return {
            name: {**proc, "running": self.state.running(name)}
            for name, proc in self.state.processes.items()
        }

    def leftovers(self) -> dict[str, int]:
        """What would still be on the host after ``down``: a test asserts all are zero."""
        cni = list(Path("/run/netns").glob("cni-*")) if Path("/run/netns").exists() else []
        return {
            "processes": len(netns.pids_naming(str(self.home)))
            + len(netns.pids_in_cgroup("kubepods")),
            "mounts": len(netns.mounts_under(self.home)),
            "netns": int(self.settings.netns_path.exists()) + len(cni),
            "cgroups": sum(
                1 for h in Path("/sys/fs/cgroup").iterdir() if (h / "kubepods").is_dir()
            ),
        }


class _NodeControlPlane(KubeCluster):
    """The project's control plane, its clients pointed at the node address: the API server's
    self-signed certificate names the address it advertises, not loopback."""

    node_ip: str = "127.0.0.1"

    @property
    def server(self) -> str:
        return f"https://{self.node_ip}:{self.api_port}"


class _Steps:
    def __init__(self, say: Say, start: float) -> None:
        self.say = say
        self.start = start

    def __call__(self, what: str) -> None:
        self.say(f"  [{time.monotonic() - self.start:5.1f}s] {what}")


def _normalized(ref: str) -> str:
    """The name containerd gives an image ``docker save`` tagged ``ref``."""
    name = ref if "/" in ref.split(":", maxsplit=1)[0] else f"library/{ref}"
    return f"docker.io/{name}"
