"""skaffold for real on the cluster with real pods: ``skaffold run -p fleetpipe-cluster`` builds
the image with the private Docker engine, its after-build hook imports it into the cluster's
containerd, and the chart's operator comes up Ready running exactly that build's tag;
``skaffold delete`` removes it again.

Runs after test_uninstall_in_pods (file order): the release ``fleetpipe dev cluster install``
made would share the chart's cluster-scoped names (the operator's ClusterRole) with this one.
The image's layers are the ones ``make image`` left in the engine, so the build is quick.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fleetpipe_dev.cluster.node import LocalCluster
from fleetpipe_dev.cluster.skaffold import PROFILE, SKAFFOLD_NAMESPACE
from fleetpipe_dev.testing import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

OPERATOR = "app.kubernetes.io/component=operator"


def skaffold(cluster: LocalCluster, *args: str) -> tuple[float, str]:
    """``fleetpipe dev cluster skaffold ARGS`` as a user runs it; (seconds, output)."""
    settings = cluster.settings
    env = {
        **os.environ,
        "FLEETPIPE_CLUSTER_HOME": str(settings.home),
        "FLEETPIPE_CLUSTER_NETNS": settings.netns,
    }
    command = [str(Path(sys.executable).with_name("fleetpipe")), "dev", "cluster", "skaffold"]
    start = time.monotonic()
    result = subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=1100, check=False
    )
    took = time.monotonic() - start
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return took, output


def operator_objects(cluster: LocalCluster, kinds: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", kinds, "-n", SKAFFOLD_NAMESPACE, "-l", OPERATOR, "-o", "json")
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def image_digest(cluster: LocalCluster, name: str) -> str:
    """The digest the image ``name`` (short, or a full reference) points at in containerd."""
    ref = name if "/" in name else f"docker.io/library/{name}"
    listed = cluster.ctr("images", "ls", f"name=={ref}").splitlines()
    rows = [line.split() for line in listed[1:] if line.strip()]
    assert len(rows) == 1, listed
    digest: str = rows[0][2]  # REF TYPE DIGEST SIZE PLATFORMS LABELS
    assert digest.startswith("sha256:"), listed
    return digest


def ready_operator(cluster: LocalCluster) -> dict[str, Any] | None:
    found = operator_objects(cluster, "deployments")
    if len(found) != 1:
        return None
    deployment = found[0]
    status = deployment.get("status") or {}
    if status.get("observedGeneration") != deployment["metadata"]["generation"]:
        return None
    if status.get("readyReplicas") != deployment["spec"]["replicas"]:
        return None
    return deployment


def test_skaffold_run_brings_the_operator_up_from_a_fresh_build_and_delete_removes_it(
    local_cluster: LocalCluster,
) -> None:
    cluster = local_cluster
    # No artifact cache: the image is built (and loaded) by this run, whatever ran before.
    run_s, output = skaffold(cluster, "run", "-p", PROFILE, "--cache-artifacts=false")
    # skaffold names what it deploys: "Tags used in deployment:\n - fleetpipe -> TAG" (after
    # the tag policy's "Generating tags...\n - fleetpipe -> fleetpipe:COMMIT").
    used = re.search(r"^Tags used in deployment:\n - fleetpipe -> (\S+)$", output, re.MULTILINE)
    assert used is not None, output
    tag = used[1]
    # skaffold's own tag for a local build that is not pushed: the new image's id.
    assert re.fullmatch(r"fleetpipe:[0-9a-f]{64}", tag), tag
    assert "loaded into the cluster's containerd: " in output
    assert tag in output.split("loaded into the cluster's containerd: ", 1)[1].splitlines()[0]

    # skaffold run waits for the Deployment (helm --wait and its status check) itself.
    deployment = ready_operator(cluster)
    assert deployment is not None, operator_objects(cluster, "deployments")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == tag
    assert container["imagePullPolicy"] == "Never"
    # Pods being deleted (the operator of a release uninstalled just before, still ending in
    # the same namespace) are not this release's.
    pods = wait_for(
        lambda: [
            p
            for p in operator_objects(cluster, "pods")
            if not p["metadata"].get("deletionTimestamp")
        ],
        timeout=60,
        what="the operator's pod",
    )
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    (status,) = pods[0]["status"]["containerStatuses"]
    assert status["ready"] is True
    # The running container's image is the one containerd imported under the build's tag. The
    # status names the image by any of its names (the same build also carries the commit's tag
    # from `make image`), so the two names are compared by what they point at.
    assert image_digest(cluster, status["image"]) == image_digest(cluster, tag)
    print(f"skaffold run: operator Ready on {tag[:25]}… in {run_s:.0f}s (build included)")

    delete_s, output = skaffold(cluster, "delete", "-p", PROFILE)
    wait_for(
        lambda: not operator_objects(cluster, "deployments,pods"),
        timeout=120,
        interval=1.0,
        what="the operator's Deployment and pod gone",
    )
    releases = cluster.kubectl(
        "get", "secrets", "-n", SKAFFOLD_NAMESPACE, "-l", "owner=helm", "-o", "name"
    )
    assert releases.strip() == "", releases
    print(f"skaffold delete: operator gone in {delete_s:.0f}s")
