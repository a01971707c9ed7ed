"""`fleetpipe dev kube up | status | down`: a real control plane whose pods run on kwok nodes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fleetpipe_dev.stack.kube import find_tools
from fleetpipe_dev.stack.procs import free_port, is_ours
from fleetpipe_dev.testing import wait_for

pytestmark = pytest.mark.e2e


def _fleetpipe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetpipe.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_dev_kube_up_runs_pods_on_kwok_nodes_and_down_stops_only_what_it_started() -> None:
    kubectl = str(find_tools()["kubectl"])
    home = Path(tempfile.mkdtemp(prefix="fleetpipe-kube-"))
    env = {
        "FLEET_DEV_HOME": str(home),
        "FLEET_DEV_KUBE_API_PORT": str(free_port()),
        "FLEET_DEV_KUBE_NODES": "2",
    }
    bystander = subprocess.Popen(["sleep", "300"])  # something the stack must not touch
    try:
        up = _fleetpipe(env, "dev", "kube", "up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "export KUBECONFIG=" in up.stdout
        status = json.loads(_fleetpipe(env, "dev", "kube", "status", "--json").stdout)
        kubeconfig = status.pop("kubeconfig")
        assert set(status) == {
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
        }
        assert all(proc["running"] for proc in status.values())

        def kubectl_run(*args: str) -> str:
            result = subprocess.run(
                [kubectl, f"--kubeconfig={kubeconfig}", *args],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            return result.stdout

        assert "Server Version: v1.37.1" in kubectl_run("version")
        nodes = json.loads(kubectl_run("get", "nodes", "-o", "json"))["items"]
        assert sorted(n["metadata"]["name"] for n in nodes) == ["kwok-node-0", "kwok-node-1"]
        kubectl_run("create", "deployment", "web", "--image=nginx", "--replicas=3")

        def running() -> int:
            pods = json.loads(kubectl_run("get", "pods", "-l", "app=web", "-o", "json"))["items"]
            return sum(
                1
                for p in pods
                if p["status"].get("phase") == "Running"
                and p["spec"].get("nodeName", "").startswith("kwok-node-")
            )

        wait_for(lambda: running() == 3, timeout=90, what="3 pods Running on kwok nodes")

        again = _fleetpipe(env, "dev", "kube", "up")
        assert "already running" in again.stdout

        down = _fleetpipe(env, "dev", "kube", "down")
        assert down.returncode == 0, down.stderr
        for proc in status.values():
            assert not is_ours(proc["pid"], proc["marker"])
        assert bystander.poll() is None, "down must leave other processes alone"
    finally:
        _fleetpipe(env, "dev", "kube", "down", "--purge")
        bystander.kill()
        shutil.rmtree(home, ignore_errors=True)
