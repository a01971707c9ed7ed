"""The cluster's network namespace and what runs in it: commands, mounts, leftover cleanup."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from fleetpipe_dev.cluster.settings import ClusterSettings
from fleetpipe_dev.stack.procs import StartError


def in_netns(settings: ClusterSettings, cmd: Sequence[str]) -> list[str]:
    """``cmd`` run inside the cluster's network namespace (the host's mounts and pids)."""
    return ["nsenter", f"--net={settings.netns_path}", "--", *cmd]


def run(
    cmd: Sequence[str], *, check: bool = True, timeout: float = 60.0, stdin: str | None = None
) -> str:
    result = subprocess.run(
        list(cmd), input=stdin, capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and result.returncode != 0:
        raise StartError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")
    return result.stdout


def create(settings: ClusterSettings) -> None:
    """The namespace with loopback and the pods' bridge, whose address is the node's.

    The bridge exists before the CNI plugin first runs so the API server can listen on, and
    advertise, the node address; the plugin then finds it and only adds the pods' veths.
    Service addresses are routed onto the bridge so clients in the namespace (kubectl, helm,
    the tests) reach ClusterIPs through kube-proxy's rules as pods do.
    """
    if settings.netns_path.exists():
        return
    run(["ip", "netns", "add", settings.netns])
    ns = ["ip", "netns", "exec", settings.netns]
    prefix = settings.pod_cidr.split("/")[1]
    bridge = settings.bridge
    for step in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "link", "add", settings.bridge, "type", "bridge"],
        ["ip", "addr", "add", f"{settings.node_ip}/{prefix}", "dev", settings.bridge],
        ["ip", "link", "set", settings.bridge, "up"],
        ["ip", "route", "add", settings.service_cidr, "dev", bridge, "src", settings.node_ip],
        # A reply from a Service's pod to a pod on the same bridge is bridged, not routed: only
        # with bridge netfilter does it meet the conntrack entry that undoes kube-proxy's DNAT.
        ["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"],
        ["sysctl", "-qw", "net.ipv4.ip_forward=1"],
    ):
        run([*ns, *step] if step[0] == "ip" else in_netns(settings, step))


def delete(settings: ClusterSettings) -> bool:
    if not settings.netns_path.exists():
        return False
    run(["ip", "netns", "del", settings.netns], check=False)
    return True


def mounts_under(*prefixes: Path | str) -> list[str]:
    """Mount points below any of the prefixes, deepest first (the order to unmount them)."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(p) or point.startswith(f"{p}/") for p in prefixes):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def unmount_all(*prefixes: Path | str) -> int:
    count = 0
    for point in mounts_under(*prefixes):
        run(["umount", "-l", point], check=False)
        count += 1
    return count


def pids_in_cgroup(name: str) -> list[int]:
    """Processes in a cgroup named ``name`` at the top of any hierarchy (``/kubepods/...``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for line in (entry / "cgroup").read_text().splitlines():
                if line.split(":", 2)[-1].startswith(f"/{name}/") or line.endswith(f":/{name}"):
                    found.append(int(entry.name))
                    break
    return found


def pids_naming(marker: str) -> list[int]:
    """Processes whose command line names ``marker`` (a path only this cluster uses)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(entry.name))
    return found


def kill_all(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
