"""The chart's pre-delete hook as helm renders it: when it exists, whom it runs as, what it may do.

What it does on a cluster is shown by ``tests/e2e/cluster/test_uninstall_in_pods.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from fleetpipe_dev.devtools import manifests

pytestmark = pytest.mark.integration

PIPELINE = ("pipeline.create=true", "pipeline.spec.kafka.bootstrapServers=kafka:9092")
HOOK_KINDS = {"Role", "RoleBinding", "Job"}


def render(*values: str) -> list[dict[str, Any]]:
    args = ["template", "fleetpipe", str(manifests.CHART), "--namespace", "fleet"]
    for value in values:
        args += ["--set", value]
    return [doc for doc in yaml.safe_load_all(manifests.helm(*args)) if doc]


def hooks(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["kind"]: d
        for d in docs
        if (d["metadata"].get("annotations") or {}).get("helm.sh/hook") == "pre-delete"
    }


def test_a_release_with_a_pipeline_gets_a_pre_delete_job_with_its_own_role() -> None:
    found = hooks(render(*PIPELINE))
    assert set(found) == HOOK_KINDS
    for doc in found.values():
        assert doc["metadata"]["name"] == "fleetpipe-uninstall"
        assert doc["metadata"]["namespace"] == "fleet"
        policy = doc["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
        # Kept when it fails (its log says why); replaced by the next attempt.
        assert policy == "before-hook-creation,hook-succeeded"
    # The Role and its binding exist before the Job runs (a lower hook weight).
    weights = {
        k: int(d["metadata"]["annotations"]["helm.sh/hook-weight"]) for k, d in found.items()
    }
    assert weights["Role"] < weights["Job"] and weights["RoleBinding"] < weights["Job"]

    # Deleting FleetPipelines of the release's namespace, and nothing else.
    assert found["Role"]["rules"] == [
        {"apiGroups": ["fleetpipe.io"], "resources": ["fleetpipelines"], "verbs": ["get", "delete"]}
    ]
    assert found["RoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "fleetpipe-operator", "namespace": "fleet"}
    ]

    pod = found["Job"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "fleetpipe-operator"
    container = pod["containers"][0]
    assert container["command"] == ["fleetpipe-operator-uninstall"]
    assert container["image"] == "fleetpipe:0.1.0"  # the operator's image
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["FLEET_UNINSTALL_NAMESPACE"] == "fleet"
    assert json.loads(env["FLEET_UNINSTALL_PIPELINES"]) == ["fleet"]
    # The Job outlives the wait it is given, so a stuck pipeline is said, not cut off.
    assert found["Job"]["spec"]["activeDeadlineSeconds"] > int(env["FLEET_UNINSTALL_TIMEOUT_S"])


@pytest.mark.parametrize(
    "values",
    [
        pytest.param((), id="no-pipeline"),
        pytest.param((*PIPELINE, "uninstallHook.enabled=false"), id="switched-off"),
    ],
)
def test_no_hook_without_a_pipeline_of_the_release_or_when_switched_off(
    values: tuple[str, ...],
) -> None:
    assert hooks(render(*values)) == {}


def test_without_rbac_the_hook_uses_the_service_accounts_own_rights() -> None:
    found = hooks(render(*PIPELINE, "rbac.create=false"))
    assert set(found) == {"Job"}
