"""Operations recipients and webhook sinks on the real API server.

The CRD's ``spec.recipients`` schema is generated from the model notification parses: a
misspelt key, a number that is not E.164, an unknown channel, a string where a number belongs or
two recipients of one name are refused by the API server with the field's name. A pipeline with
recipients gets them in its notification Deployment, each sink's key as a Secret reference.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[3] / "k8s" / "samples"


def _sample() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((SAMPLES / "fleetpipeline-50k.yaml").read_text())
    assert doc["spec"]["recipients"]["operations"] and doc["spec"]["recipients"]["webhooks"]
    return doc


def _desk(doc: dict[str, Any]) -> dict[str, Any]:
    desk: dict[str, Any] = doc["spec"]["recipients"]["operations"][0]
    return desk


def _hook(doc: dict[str, Any]) -> dict[str, Any]:
    hook: dict[str, Any] = doc["spec"]["recipients"]["webhooks"][0]
    return hook


def _misspelt(doc: dict[str, Any]) -> None:
    _desk(doc)["chanels"] = _desk(doc).pop("channels")


def _local_number(doc: dict[str, Any]) -> None:
    _desk(doc)["phone"] = "0201234567"


def _fax(doc: dict[str, Any]) -> None:
    _desk(doc)["channels"] = {"critical": ["fax"]}


def _string_timeout(doc: dict[str, Any]) -> None:
    _hook(doc)["timeout_s"] = "5"


def _twice(doc: dict[str, Any]) -> None:
    operations = doc["spec"]["recipients"]["operations"]
    operations.append(copy.deepcopy(operations[0]))


def _ftp(doc: dict[str, Any]) -> None:
    _hook(doc)["url"] = "ftp://dispatch.example.com/in"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        pytest.param(
            _misspelt, "spec.recipients.operations[0].chanels", "unknown field", id="misspelt-key"
        ),
        pytest.param(
            _local_number, "spec.recipients.operations[0].phone", "should match", id="not-e164"
        ),
        pytest.param(
            _fax,
            "spec.recipients.operations[0].channels.critical[0]",
            "Unsupported value",
            id="unknown-channel",
        ),
        pytest.param(
            _string_timeout,
            "spec.recipients.webhooks[0].timeout_s",
            "must be of type number",
            id="string-for-a-number",
        ),
        pytest.param(_twice, "spec.recipients.operations[1]", "Duplicate value", id="named-twice"),
        pytest.param(_ftp, "spec.recipients.webhooks[0].url", "should match", id="not-http"),
    ],
)
def test_bad_recipients_are_refused_by_the_api_server_naming_the_field(
    kube: Any, crd: str, namespace: str, change: Any, field: str, message: str
) -> None:
    doc = _sample()
    change(doc)
    result = kube.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(doc), check=False)
    assert result.returncode != 0
    assert field in result.stderr, result.stderr
    assert message in result.stderr, result.stderr
    assert kube.run("get", "fp", "-n", namespace, "-o", "name").stdout == ""


def test_the_samples_recipients_reach_the_notification_deployment(
    kube: Any, operator: Any, make_pipeline: Any
) -> None:
    pipeline = make_pipeline(fleet={"vehicles": 2000})
    ns, name = pipeline.namespace, pipeline.name
    kube.wait_ready(ns, name)
    deployment = kube.json("get", "deployment", f"{name}-notification", "-n", ns)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    recipients = json.loads(env["FLEET_RECIPIENTS"]["value"])
    sample = _sample()["spec"]["recipients"]
    assert recipients["operations"][0]["phone"] == sample["operations"][0]["phone"]
    assert recipients["webhooks"][0]["url"] == sample["webhooks"][0]["url"]
    assert env["FLEET_WEBHOOK_SECRETS__DISPATCH"]["valueFrom"] == {
        "secretKeyRef": {"name": "fleetpipe-webhook", "key": "hmac_key"}
    }
    assert "value" not in env["FLEET_WEBHOOK_SECRETS__DISPATCH"]
