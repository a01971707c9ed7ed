"""The console the operator runs knows where the operations view reads: Jaeger's query API and
UI from the spec, the pipeline's health from Prometheus or else each service's Service."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleet_operator.console import console_manifests
from fleet_operator.objects import Owner
from fleet_operator.spec import SpecError, parse_spec

pytestmark = pytest.mark.unit

OWNER = Owner(name="fleet", namespace="prod", uid="1234-abcd")
BASE: dict[str, Any] = {
    "fleet": {"vehicles": 50_000},
    "kafka": {"bootstrapServers": "kafka-0:9092"},
    "storage": {"databaseSecret": "db"},
    "notification": {"twilioSecret": "twilio"},
}


def _env(console: dict[str, Any]) -> dict[str, str]:
    spec = parse_spec({**BASE, "console": {"enabled": True, **console}})
    (deployment,) = [m for m in console_manifests(OWNER, spec) if m["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_without_prometheus_the_console_reads_each_services_metrics_through_its_service() -> None:
    env = _env({})
    assert json.loads(env["FLEET_HEALTH__TARGETS"]) == {
        "ingest": "http://fleet-ingest:8080",
        "enrichment": "http://fleet-enrichment:8080",
        "detection": "http://fleet-detection:8080",
        "notification": "http://fleet-notification:8080",
        "storage-writer": "http://fleet-storage-writer:8080",
        "kpis": "http://fleet-kpis:8080",
    }
    assert "FLEET_HEALTH__PROMETHEUS_URL" not in env
    assert "FLEET_TRACES__QUERY_URL" not in env, "no trace store named: traces are not shown"


def test_a_disabled_kpi_stage_is_not_among_the_health_targets() -> None:
    spec = parse_spec({**BASE, "console": {"enabled": True}, "kpis": {"enabled": False}})
    (deployment,) = [m for m in console_manifests(OWNER, spec) if m["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    assert "kpis" not in json.loads(env["FLEET_HEALTH__TARGETS"])


def test_a_prometheus_and_jaeger_named_in_the_spec_are_where_it_reads() -> None:
    env = _env(
        {
            "prometheusUrl": "http://prometheus-operated.monitoring:9090",
            "tracesQueryUrl": "http://jaeger-query.tracing:16686",
            "tracesUiUrl": "https://jaeger.example.org",
        }
    )
    assert env["FLEET_HEALTH__PROMETHEUS_URL"] == "http://prometheus-operated.monitoring:9090"
    assert "FLEET_HEALTH__TARGETS" not in env
    assert env["FLEET_TRACES__QUERY_URL"] == "http://jaeger-query.tracing:16686"
    assert env["FLEET_TRACES__UI_URL"] == "https://jaeger.example.org"


def test_an_address_that_is_not_a_url_is_refused_naming_the_field() -> None:
    with pytest.raises(SpecError, match=r"tracesQueryUrl|traces_query_url"):
        parse_spec({**BASE, "console": {"enabled": True, "tracesQueryUrl": "jaeger:16686"}})
