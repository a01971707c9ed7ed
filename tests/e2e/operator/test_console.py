"""A FleetPipeline that asks for the fleet console gets it from the operator: a Deployment, a
Service and an Ingress, owned by the pipeline, the tokens by Secret reference only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleetpipe_dev.testing import wait_for

pytestmark = pytest.mark.e2e


def test_the_operator_runs_the_console_a_pipeline_asks_for(
    kube: Any, operator: Any, make_pipeline: Any, namespace: str
) -> None:
    tokens = json.dumps({"secret-token-of-fleet-1": ["fleet-1"]})
    kube.run(
        "create", "secret", "generic", "console-tokens", "-n", namespace,
        f"--from-literal=tokens={tokens}",
    )  # fmt: skip
    pipeline = make_pipeline(
        fleet={"vehicles": 2000},
        console={
            "enabled": True,
            "tokensSecret": "console-tokens",
            "ingress": {"host": "fleet.example", "className": "nginx"},
        },
    )
    ns, name = pipeline.namespace, pipeline.name
    kube.wait_ready(ns, name)

    def children() -> dict[str, Any] | None:
        found = {
            kind: kube.run("get", kind, f"{name}-console", "-n", ns, "-o", "json", check=False)
            for kind in ("deployment", "service", "ingress")
        }
        if any(r.returncode != 0 for r in found.values()):
            return None
        return {kind: json.loads(r.stdout) for kind, r in found.items()}

    made = wait_for(children, timeout=60, interval=0.5, what="the console's children")
    uid = kube.pipeline(ns, name)["metadata"]["uid"]
    for child in made.values():
        assert child["metadata"]["ownerReferences"][0]["uid"] == uid
    container = made["deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["fleetpipe-console"]
    env = {e["name"]: e for e in container["env"]}
    assert env["FLEET_CONSOLE_TOKENS"]["valueFrom"]["secretKeyRef"]["name"] == "console-tokens"
    assert "secret-token-of-fleet-1" not in json.dumps(made), "tokens only by reference"
    assert made["service"]["spec"]["ports"][0]["port"] == 8000
    assert made["ingress"]["spec"]["rules"][0]["host"] == "fleet.example"
    assert "console" in kube.replicas(ns, name)
