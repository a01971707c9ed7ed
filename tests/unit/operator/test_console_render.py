"""The fleet console a pipeline asks for: its Deployment, Service and Ingress, secrets by
reference only, and nothing when it is off."""

from __future__ import annotations

from typing import Any

import pytest

from fleet_operator.console import console_manifests
from fleet_operator.objects import Owner
from fleet_operator.render import referenced_secrets
from fleet_operator.spec import SpecError, parse_spec

pytestmark = pytest.mark.unit

OWNER = Owner(name="fleet", namespace="prod", uid="1234-abcd")
BASE: dict[str, Any] = {
    "fleet": {"vehicles": 50_000},
    "kafka": {"bootstrapServers": "kafka-0:9092"},
    "storage": {"databaseSecret": "db"},
    "notification": {"twilioSecret": "twilio"},
}


def _render(console: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = parse_spec({**BASE, "console": console})
    return {m["kind"]: m for m in console_manifests(OWNER, spec)}


def test_no_console_unless_enabled() -> None:
    assert console_manifests(OWNER, parse_spec(BASE)) == []


def test_an_enabled_console_is_a_deployment_and_a_service_owned_by_the_pipeline() -> None:
    found = _render({"enabled": True, "tokensSecret": "console-tokens", "replicas": 2})
    assert set(found) == {"Deployment", "Service"}
    deployment, service = found["Deployment"], found["Service"]
    assert deployment["metadata"]["name"] == service["metadata"]["name"] == "fleet-console"
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == "1234-abcd"
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["fleetpipe-console"]
    env = {e["name"]: e for e in container["env"]}
    assert env["FLEET_CONSOLE_TOKENS"]["valueFrom"]["secretKeyRef"] == {
        "name": "console-tokens",
        "key": "tokens",
    }
    assert env["FLEET_POSTGRES__DSN"]["valueFrom"]["secretKeyRef"]["name"] == "db"
    assert "FLEET_MAP__TILE_URL" not in env, "no tile URL: the plain background"
    assert service["spec"]["ports"][0]["port"] == 8000
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "console"


def test_a_read_only_role_tiles_and_an_ingress() -> None:
    found = _render(
        {
            "enabled": True,
            "databaseSecret": "console-db",
            "tileUrl": "https://tiles.example/{z}/{x}/{y}.png",
            "ingress": {"host": "fleet.example", "className": "nginx", "tlsSecret": "tls"},
        }
    )
    env = {
        e["name"]: e
        for e in found["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["FLEET_POSTGRES__DSN"]["valueFrom"]["secretKeyRef"]["name"] == "console-db"
    assert env["FLEET_MAP__TILE_URL"]["value"] == "https://tiles.example/{z}/{x}/{y}.png"
    ingress = found["Ingress"]["spec"]
    assert ingress["ingressClassName"] == "nginx" and ingress["tls"][0]["secretName"] == "tls"
    backend = ingress["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "fleet-console", "port": {"name": "http"}}
    spec = parse_spec({**BASE, "console": {"enabled": True, "databaseSecret": "console-db"}})
    assert referenced_secrets(spec)["console-db"] == "spec.console.databaseSecret"


def test_an_ingress_needs_a_host() -> None:
    with pytest.raises(SpecError):
        parse_spec({**BASE, "console": {"enabled": True, "ingress": {"className": "nginx"}}})
