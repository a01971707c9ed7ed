"""The lake's compaction CronJob as the operator renders it from ``spec.lake``."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_operator.objects import Owner
from fleet_operator.render_compaction import lake_compaction
from fleet_operator.spec import FleetPipelineSpec, SpecError, parse_spec

pytestmark = pytest.mark.unit

OWNER = Owner(name="fleet", namespace="fleets", uid="u-1")
BASE: dict[str, Any] = {
    "fleet": {"vehicles": 1000},
    "kafka": {"bootstrapServers": "kafka:9092"},
    "notification": {"twilioSecret": "twilio"},
}


def _spec(storage: dict[str, Any], lake: dict[str, Any] | None) -> FleetPipelineSpec:
    raw = {**BASE, "storage": {"databaseSecret": "db", **storage}}
    if lake is not None:
        raw["lake"] = lake
    return parse_spec(raw)


def _container(cron: dict[str, Any]) -> dict[str, Any]:
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return dict(container)


def test_without_spec_lake_there_is_no_cronjob() -> None:
    assert lake_compaction(OWNER, _spec({"coldVolumeClaim": "lake"}, None)) == []


def test_the_retention_and_schedule_become_the_cronjobs_arguments() -> None:
    spec = _spec(
        {"coldVolumeClaim": "lake", "coldPath": "/lake"},
        {"compactionSchedule": "*/30 * * * *", "bronzeRetentionDays": 7, "goldRetentionDays": 400},
    )
    (cron,) = lake_compaction(OWNER, spec)
    assert cron["kind"] == "CronJob" and cron["metadata"]["name"] == "fleet-lake-compaction"
    assert cron["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert cron["spec"]["schedule"] == "*/30 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    container = _container(cron)
    assert container["command"] == ["fleetpipe"]
    assert container["args"] == [
        "lake", "compact", "--bronze-days", "7", "--silver-days", "730", "--gold-days", "400",
    ]  # fmt: skip
    assert {"name": "cold", "mountPath": "/lake"} in container["volumeMounts"]
    env = {e["name"]: e for e in container["env"]}
    assert env["FLEET_LAKE__PATH"]["value"] == "/lake"
    assert "FLEET_LAKE__URL" not in env
    # The erasure audit, read with the storage writer's login.
    assert env["FLEET_POSTGRES__DSN"]["valueFrom"]["secretKeyRef"]["key"] == "dsn"


def test_a_bucket_lake_is_read_with_the_secrets_credentials() -> None:
    url = "s3://lake/fleet?endpoint_override=minio:9000&scheme=http"
    spec = _spec({"coldUrl": url, "coldCredentialsSecret": "lake-s3"}, {})
    container = _container(lake_compaction(OWNER, spec)[0])
    env = {e["name"]: e for e in container["env"]}
    assert env["FLEET_LAKE__URL"]["value"] == url
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "lake-s3",
        "key": "AWS_SECRET_ACCESS_KEY",
    }
    assert [m["name"] for m in container["volumeMounts"]] == ["tmp"]


@pytest.mark.parametrize(
    ("storage", "lake", "field"),
    [
        pytest.param({}, {}, "storage.coldUrl", id="lake-on-an-emptydir"),
        pytest.param(
            {"coldVolumeClaim": "lake"},
            {"bronzeRetentionDays": 0},
            "spec.lake.bronzeRetentionDays",
            id="zero-days",
        ),
        pytest.param(
            {"coldVolumeClaim": "lake"},
            {"bronzeRetentionDays": 90, "silverRetentionDays": 30},
            "lake.silverRetentionDays",
            id="silver-before-bronze",
        ),
        pytest.param(
            {"coldVolumeClaim": "lake"},
            {"compactionSchedule": "hourly"},
            "spec.lake.compactionSchedule",
            id="not-a-cron-line",
        ),
    ],
)
def test_a_bad_lake_spec_is_refused_naming_the_field(
    storage: dict[str, Any], lake: dict[str, Any], field: str
) -> None:
    with pytest.raises(SpecError, match=field.replace(".", r"\.")):
        _spec(storage, lake)
