"""The uninstall hook's deletion on the real API server: a pipeline goes with its children
first (foreground), and one a finalizer holds that nobody removes (an operator gone too early)
is reported by name at the deadline instead of waited for in silence."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleet_operator.uninstall import KubePipelines, PipelinesStuck, remove_pipelines
from fleetpipe_dev.testing import wait_for
from support.kube import Kube

pytestmark = pytest.mark.e2e

# Not the operator's own finalizer: an operator of the session running meanwhile would let
# that one go (a Retain pipeline has nothing to delete); this one stands for an absent one.
FINALIZER = "test.fleetpipe.io/held"


def pipeline(namespace: str, name: str, *, finalizers: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "fleetpipe.io/v1alpha1",
        "kind": "FleetPipeline",
        "metadata": {"name": name, "namespace": namespace, "finalizers": finalizers},
        "spec": {
            "fleet": {"vehicles": 1000},
            "kafka": {"bootstrapServers": "kafka:9092"},
            "storage": {"databaseSecret": "fleetpipe-db"},
            "notification": {"twilioSecret": "fleetpipe-twilio"},
        },
    }


def child_of(owner: dict[str, Any], name: str) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "ownerReferences": [
                {
                    "apiVersion": owner["apiVersion"],
                    "kind": owner["kind"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "data": {"a": "b"},
    }


def test_the_hook_deletes_a_pipeline_with_its_children_and_names_a_finalizer_left_holding(
    kube: Kube, crd: str, namespace: str
) -> None:
    api = KubePipelines.connect(kubeconfig=str(kube.kubeconfig))
    for name, finalizers in (("free", []), ("held", [FINALIZER])):
        kube.run(
            "apply", "-f", "-", stdin=json.dumps(pipeline(namespace, name, finalizers=finalizers))
        )
    free = kube.pipeline(namespace, "free")
    kube.run("apply", "-f", "-", stdin=json.dumps(child_of(free, "free-child")))

    said: list[str] = []
    took = remove_pipelines(api, namespace, ["free"], timeout_s=60, interval_s=0.5, say=said.append)
    assert kube.run("get", "fleetpipeline", "free", "-n", namespace, check=False).returncode != 0
    # Foreground: the pipeline went only once its child had.
    assert kube.run("get", "configmap", "free-child", "-n", namespace, check=False).returncode != 0
    print(f"a pipeline and its child gone in {took:.1f}s")

    with pytest.raises(PipelinesStuck, match=rf"held: held by {FINALIZER}"):
        remove_pipelines(api, namespace, ["held"], timeout_s=3, interval_s=0.5, say=said.append)
    # Nothing forced: it is still there, Terminating, until its finalizer is let go.
    held = kube.pipeline(namespace, "held")
    assert held["metadata"].get("deletionTimestamp")
    kube.run(
        "patch", "fleetpipeline", "held", "-n", namespace, "--type=merge",
        "-p", '{"metadata": {"finalizers": null}}',
    )  # fmt: skip
    wait_for(
        lambda: (
            kube.run("get", "fleetpipeline", "held", "-n", namespace, check=False).returncode != 0
        ),
        timeout=30,
        what="the held pipeline gone once let go",
    )
