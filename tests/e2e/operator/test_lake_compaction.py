"""The lake's retention set in the FleetPipeline: the operator runs the compaction CronJob with
the spec's retention as its arguments, follows a patch of it, and the API server refuses a bad
value naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleetpipe_dev.testing import wait_for

pytestmark = pytest.mark.e2e


def _args(cron: dict[str, Any]) -> list[str]:
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return list(container["args"])


def test_the_operator_runs_the_lake_compaction_the_pipeline_asks_for(
    kube: Any, operator: Any, make_pipeline: Any
) -> None:
    pipeline = make_pipeline(
        fleet={"vehicles": 2000},
        storage={"coldVolumeClaim": "fleet-lake"},
        lake={"bronzeRetentionDays": 14, "compactionSchedule": "*/20 * * * *"},
    )
    ns, name = pipeline.namespace, pipeline.name
    cron_name = f"{name}-lake-compaction"

    def cronjob() -> dict[str, Any] | None:
        got = kube.run("get", "cronjob", cron_name, "-n", ns, "-o", "json", check=False)
        return json.loads(got.stdout) if got.returncode == 0 else None

    cron = wait_for(cronjob, timeout=60, interval=0.5, what="the compaction CronJob")
    assert (
        cron["metadata"]["ownerReferences"][0]["uid"] == kube.pipeline(ns, name)["metadata"]["uid"]
    )
    assert cron["spec"]["schedule"] == "*/20 * * * *"
    assert _args(cron) == [
        "lake", "compact", "--bronze-days", "14", "--silver-days", "730", "--gold-days", "1825",
    ]  # fmt: skip
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert {"name": "cold", "persistentVolumeClaim": {"claimName": "fleet-lake"}} in pod["volumes"]

    patch = {"spec": {"lake": {"silverRetentionDays": 365, "goldRetentionDays": 3650}}}
    kube.run("patch", "fp", name, "-n", ns, "--type=merge", "-p", json.dumps(patch))

    def patched() -> dict[str, Any] | None:
        found = cronjob()
        return found if found and "365" in _args(found) else None

    cron = wait_for(patched, timeout=60, interval=0.5, what="the CronJob to follow the patch")
    assert _args(cron)[2:] == ["--bronze-days", "14", "--silver-days", "365", "--gold-days", "3650"]

    for change, field in (
        ({"bronzeRetentionDays": 0}, "spec.lake.bronzeRetentionDays"),
        ({"silverRetentionDays": 7}, "lake.silverRetentionDays"),
        ({"compactionSchedule": "every hour"}, "spec.lake.compactionSchedule"),
    ):
        refused = kube.run(
            "patch", "fp", name, "-n", ns, "--type=merge",
            "-p", json.dumps({"spec": {"lake": change}}), check=False,
        )  # fmt: skip
        assert refused.returncode != 0, change
        assert field in refused.stderr, refused.stderr
    assert _args(cronjob() or {})[2:] == [
        "--bronze-days", "14", "--silver-days", "365", "--gold-days", "3650",
    ]  # fmt: skip


def test_a_lake_without_a_shared_location_is_refused(
    kube: Any, crd: str, namespace: str, sample_text: Any
) -> None:
    text = sample_text("fleetpipeline-50k.yaml", bootstrap="127.0.0.1:9092", suffix="tnolake")
    text += "  lake:\n    bronzeRetentionDays: 30\n"
    refused = kube.run("apply", "-n", namespace, "-f", "-", stdin=text, check=False)
    assert refused.returncode != 0
    assert "lake needs storage.coldUrl or storage.coldVolumeClaim" in refused.stderr
    assert kube.run("get", "fp", "-n", namespace, "-o", "name").stdout == ""
