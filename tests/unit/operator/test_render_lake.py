"""The storage writer's lake in an S3-compatible bucket: its URL and credentials as rendered."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_operator.objects import Owner
from fleet_operator.render import env_for
from fleet_operator.spec import Component, FleetPipelineSpec, SpecError, parse_spec

pytestmark = pytest.mark.unit

OWNER = Owner(name="fleet", namespace="fleets", uid="u-1")
BASE: dict[str, Any] = {
    "fleet": {"vehicles": 1000},
    "kafka": {"bootstrapServers": "kafka:9092"},
    "notification": {"twilioSecret": "twilio"},
}


def _spec(storage: dict[str, Any]) -> FleetPipelineSpec:
    return parse_spec({**BASE, "storage": {"databaseSecret": "db", **storage}})


def _env(pipeline: FleetPipelineSpec) -> dict[str, Any]:
    found = env_for(OWNER, pipeline, Component.STORAGE_WRITER)
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in found}


def test_a_bucket_url_and_its_credentials_secret_reach_the_storage_writer() -> None:
    url = "s3://lake/fleet?endpoint_override=minio:9000&scheme=http"
    env = _env(_spec({"coldUrl": url, "coldCredentialsSecret": "lake-s3"}))
    assert env["FLEET_LAKE__URL"] == url
    assert env["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": "lake-s3", "key": "AWS_ACCESS_KEY_ID"}
    }
    assert env["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "lake-s3", "key": "AWS_SECRET_ACCESS_KEY"}
    }


def test_without_a_bucket_the_lake_stays_on_the_volume() -> None:
    env = _env(_spec({}))
    assert "FLEET_LAKE__URL" not in env and "AWS_ACCESS_KEY_ID" not in env


def test_a_cold_url_that_is_not_s3_is_refused() -> None:
    with pytest.raises(SpecError, match=r"spec\.storage\.coldUrl"):
        _spec({"coldUrl": "/var/lake"})


def test_the_small_tables_retention_reaches_the_storage_writer() -> None:
    env = _env(_spec({"latestRetentionDays": 7, "ledgerRetentionDays": 30}))
    assert env["FLEET_LATEST_RETENTION_DAYS"] == "7"
    assert env["FLEET_LEDGER_RETENTION_DAYS"] == "30"
    assert env["FLEET_DEAD_LETTERS_RETENTION_DAYS"] == "90"
