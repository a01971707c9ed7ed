"""``helm uninstall`` of the release that holds the FleetPipeline, on the cluster with real pods:
the pipeline is set to ``deletionPolicy: Delete`` (so the operator's finalizer is on it), and
the uninstall must still end with no FleetPipeline and none of its children left, its topics
deleted by the operator, within a bound. The chart's pre-delete hook does it: a Job deletes
the pipeline while the operator still runs.

Runs last of this folder (file order): it removes the release the other tests use.
"""

from __future__ import annotations

import time

import pytest

from fleet_operator.handlers import FINALIZER
from fleetpipe_dev.cluster.install import NAMESPACE, PIPELINE, RELEASE, Installation
from fleetpipe_dev.cluster.node import LocalCluster
from fleetpipe_dev.cluster.observe import (
    get_json,
    pipeline_ready,
)
from fleetpipe_dev.testing import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# helm uninstall's own deadline; the hook waits at most uninstallHook.timeoutSeconds (240 s).
UNINSTALL_BOUND_S = 300


def names(cluster: LocalCluster, kinds: str, *selector: str) -> list[str]:
    found = get_json(cluster, kinds, *selector)["items"]
    return [f"{i['kind']}/{i['metadata']['name']}" for i in found]


def test_helm_uninstall_deletes_a_delete_policy_pipeline_and_leaves_nothing_behind(
    local_cluster: LocalCluster, installed: Installation
) -> None:
    cluster = local_cluster
    wait_for(lambda: pipeline_ready(cluster), timeout=600, interval=2.0, what="pipeline Ready")
    cluster.kubectl(
        "patch", "fleetpipeline", PIPELINE, "-n", NAMESPACE, "--type=merge",
        "-p", '{"spec": {"deletionPolicy": "Delete"}}',
    )  # fmt: skip
    # Deleting it now has work to do: the operator holds it with its finalizer.
    wait_for(
        lambda: (
            FINALIZER
            in (get_json(cluster, "fleetpipeline", PIPELINE)["metadata"].get("finalizers") or [])
        ),
        timeout=120,
        interval=1.0,
        what=f"the finalizer {FINALIZER} on the pipeline",
    )
    children = names(cluster, "deployments,configmaps", "-l", f"fleetpipe.io/pipeline={PIPELINE}")
    assert children, "the pipeline should have children to remove"

    start = time.monotonic()
    out = cluster.helm(
        "uninstall", RELEASE, "-n", NAMESPACE, "--wait", f"--timeout={UNINSTALL_BOUND_S}s",
        timeout=UNINSTALL_BOUND_S + 60,
    )  # fmt: skip
    uninstall_s = time.monotonic() - start
    assert f'release "{RELEASE}" uninstalled' in out

    # Nothing stuck Terminating, no child of the pipeline, no Job (the load Job went with the
    # release, the hook's Job once it succeeded).
    assert names(cluster, "fleetpipelines") == []
    assert names(cluster, "jobs") == []
    pipeline_label = f"fleetpipe.io/pipeline={PIPELINE}"
    assert names(cluster, "deployments,replicasets,configmaps,services", "-l", pipeline_label) == []
    wait_for(
        lambda: not names(cluster, "pods"),
        timeout=120,
        interval=1.0,
        what="every pod of the namespace gone",
    )
    gone_s = time.monotonic() - start
    # The operator did the deletion's work before it went: the topics are deleted.
    deleted = names(cluster, "events", "--field-selector", "reason=TopicsDeleted")
    print(
        f"helm uninstall {uninstall_s:.1f}s (pre-delete hook included), every pod gone "
        f"{gone_s:.1f}s; children before: {len(children)}; TopicsDeleted Events: {len(deleted)}"
    )
    assert deleted, "the operator should have deleted the topics (deletionPolicy Delete)"
    assert uninstall_s < UNINSTALL_BOUND_S
