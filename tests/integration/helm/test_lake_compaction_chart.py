"""The chart's lake compaction CronJob, as helm renders it."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from fleetpipe_dev.devtools import manifests

pytestmark = pytest.mark.integration


def _render(*values: str) -> list[dict[str, Any]]:
    args = ["template", "fleetpipe", str(manifests.CHART), "--namespace", "fleets"]
    for value in values:
        args += ["--set", value]
    return [d for d in yaml.safe_load_all(manifests.helm(*args)) if d]


def test_the_cronjob_compacts_the_bucket_with_the_secrets_credentials() -> None:
    url = "s3://lake/fleet?endpoint_override=minio:9000&scheme=http"
    docs = _render(
        "lakeCompaction.enabled=true", f"lakeCompaction.url={url}", "lakeCompaction.s3Secret=s3"
    )
    (cron,) = [d for d in docs if d["kind"] == "CronJob"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid", "runs never overlap"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["fleetpipe", "lake", "compact"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["FLEET_LAKE__URL"] == url
    assert env["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "s3", "key": "AWS_SECRET_ACCESS_KEY"}
    }


def test_on_a_claim_the_lake_folder_is_mounted() -> None:
    docs = _render("lakeCompaction.enabled=true", "lakeCompaction.volumeClaim=lake")
    (cron,) = [d for d in docs if d["kind"] == "CronJob"]
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert {"name": "lake", "persistentVolumeClaim": {"claimName": "lake"}} in pod["volumes"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env == {"FLEET_LAKE__PATH": "/var/lib/fleetpipe/lake"}


def test_with_a_database_secret_the_job_reads_the_erasure_audit() -> None:
    docs = _render("lakeCompaction.enabled=true", "lakeCompaction.databaseSecret=fleet-db")
    (cron,) = [d for d in docs if d["kind"] == "CronJob"]
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["FLEET_POSTGRES__DSN"] == {"secretKeyRef": {"name": "fleet-db", "key": "dsn"}}


def test_the_retention_values_become_the_jobs_arguments() -> None:
    docs = _render("lakeCompaction.enabled=true", "lakeCompaction.retention.bronzeDays=14")
    (cron,) = [d for d in docs if d["kind"] == "CronJob"]
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["--bronze-days=14", "--silver-days=730", "--gold-days=1825"]


def test_off_by_default() -> None:
    assert not [d for d in _render() if d["kind"] == "CronJob"]


def test_a_url_that_is_not_s3_is_refused_by_the_values_schema() -> None:
    with pytest.raises(manifests.HelmError, match="url"):
        _render("lakeCompaction.enabled=true", "lakeCompaction.url=/var/lake")
