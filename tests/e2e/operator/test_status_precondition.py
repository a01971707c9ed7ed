"""The operator's status write with a resourceVersion precondition, on the real API server: the
readiness refresh relies on a stale write being refused rather than overwriting a newer status."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import config

from fleet_operator.cluster import KubeGateway
from fleet_operator.ports import StatusConflict

pytestmark = pytest.mark.e2e


def test_a_status_write_from_a_stale_read_is_refused_and_a_fresh_one_lands(
    kube: Any, make_pipeline: Any
) -> None:
    pipeline = make_pipeline()
    client = config.new_client_from_config(config_file=str(kube.kubeconfig))  # type: ignore[no-untyped-call]
    gateway = KubeGateway(client)
    written = None
    # The operator, when running, writes this status too: a write may race it, so try again.
    for _ in range(5):
        found = gateway.pipeline(pipeline.namespace, pipeline.name)
        assert found is not None
        version = found["metadata"]["resourceVersion"]
        try:
            gateway.patch_status(
                pipeline.namespace,
                pipeline.name,
                {"partitions": {"desired": 7, "current": 7}},
                resource_version=version,
            )
        except StatusConflict:
            continue
        written = version
        break
    assert written is not None, "a write from a fresh read lands"
    with pytest.raises(StatusConflict, match="patching the status"):
        gateway.patch_status(
            pipeline.namespace,
            pipeline.name,
            {"partitions": {"desired": 1, "current": 1}},
            resource_version=written,
        )
    status = kube.pipeline(pipeline.namespace, pipeline.name).get("status") or {}
    assert status.get("partitions") != {"desired": 1, "current": 1}
