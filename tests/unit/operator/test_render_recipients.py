"""spec.recipients → notification's environment: the document as JSON, each sink's key only as
a reference to the Secret the sink names."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleet_operator.objects import Owner
from fleet_operator.render import env_for, referenced_secrets
from fleet_operator.spec import Component, SpecError, parse_spec
from fleetpipe.notification.recipients import Recipients

pytestmark = pytest.mark.unit

OWNER = Owner(name="fleet", namespace="prod", uid="1234-abcd")
BASE: dict[str, Any] = {
    "fleet": {"vehicles": 1000},
    "kafka": {"bootstrapServers": "kafka-0:9092"},
    "storage": {"databaseSecret": "db"},
    "notification": {"twilioSecret": "twilio"},
}
RECIPIENTS = {
    "operations": [
        {"name": "desk", "phone": "+31201234567", "channels": {"critical": ["voice", "sms"]}}
    ],
    "webhooks": [
        {"name": "dispatch", "url": "https://d.example.com/in", "secret": "wh"},
        {
            "name": "audit",
            "url": "https://a.example.com/in",
            "secret": "wh-audit",
            "secret_key": "key",
        },
    ],
}


def _env(raw: dict[str, Any]) -> dict[str, Any]:
    spec = parse_spec(raw)
    return {
        e["name"]: e.get("value", e.get("valueFrom"))
        for e in env_for(OWNER, spec, Component.NOTIFICATION)
    }


def test_recipients_reach_notification_and_keys_stay_in_their_secrets() -> None:
    env = _env({**BASE, "recipients": RECIPIENTS})
    parsed = Recipients.model_validate(json.loads(env["FLEET_RECIPIENTS"]))
    assert parsed == Recipients.model_validate(RECIPIENTS)
    assert env["FLEET_WEBHOOK_SECRETS__DISPATCH"] == {
        "secretKeyRef": {"name": "wh", "key": "hmac_key"}
    }
    assert env["FLEET_WEBHOOK_SECRETS__AUDIT"] == {
        "secretKeyRef": {"name": "wh-audit", "key": "key"}
    }
    secrets = referenced_secrets(parse_spec({**BASE, "recipients": RECIPIENTS}))
    assert secrets["wh"] == "spec.recipients.webhooks[0].secret"
    assert secrets["wh-audit"] == "spec.recipients.webhooks[1].secret"


def test_a_pipeline_without_recipients_renders_as_before() -> None:
    env = _env(BASE)
    assert not [name for name in env if "RECIPIENTS" in name or "WEBHOOK" in name]


def test_a_recipient_named_twice_is_refused_naming_the_field() -> None:
    desk = {"name": "desk", "phone": "+31201234567"}
    twice = {"operations": [desk, desk]}
    with pytest.raises(SpecError, match=r"spec\.recipients: .*more than one entry named desk"):
        parse_spec({**BASE, "recipients": twice})
