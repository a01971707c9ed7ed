"""Operations recipients and webhook sinks: the model, the planning, the signature, the logs."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from pydantic import ValidationError

from fleetpipe.notification.payload import webhook_body
from fleetpipe.notification.recipients import (
    Recipients,
    plan_operations,
    plan_webhooks,
)
from fleetpipe.notification.redact import mask_phone, origin, redact
from fleetpipe.notification.routing import Channel, Phase, RoutingPolicy
from fleetpipe.notification.settings import NotificationSettings
from fleetpipe.notification.signing import signature, signed_headers, verify
from fleetpipe.pb.v1 import alert_pb2
from fleetpipe_loadtest import records

pytestmark = pytest.mark.unit

DESK = {"name": "desk", "phone": "+31201234567"}
HOOK = {"name": "dispatch", "url": "https://hooks.example.com/in?token=abc", "secret": "wh"}


@pytest.mark.parametrize(
    ("document", "where"),
    [
        pytest.param({"operations": [{**DESK, "phnoe": "+3120"}]}, "phnoe", id="misspelt-key"),
        pytest.param({"operations": [{**DESK, "phone": "0201234567"}]}, "phone", id="not-e164"),
        pytest.param(
            {"operations": [{**DESK, "channels": {"critical": ["fax"]}}]},
            "channels.critical.0",
            id="unknown-channel",
        ),
        pytest.param({"operations": [DESK, DESK]}, "more than one entry named desk", id="twice"),
        pytest.param({"webhooks": [{**HOOK, "url": "ftp://x"}]}, "url", id="not-http"),
        pytest.param({"webhooks": [{**HOOK, "name": "Dispatch-1"}]}, "name", id="bad-name"),
        pytest.param({"webhooks": [{**HOOK, "timeout_s": 0}]}, "timeout_s", id="zero-timeout"),
    ],
)
def test_bad_recipients_are_refused_naming_the_field(document: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Recipients.model_validate(document)
    assert where in str(caught.value)


def _alert(
    rule: str = "speeding", severity: int = alert_pb2.SEVERITY_WARNING, fleet: str = "fleet-1"
) -> alert_pb2.Alert:
    return records.alert("v-1", rule, severity=severity, fleet_id=fleet)


def test_operations_channels_follow_severity_fleet_and_rule() -> None:
    recipients = Recipients.model_validate(
        {
            "operations": [
                {**DESK, "channels": {"warning": ["sms"], "critical": ["voice", "sms", "voice"]}},
                {
                    "name": "wa",
                    "phone": "+31611111111",
                    "whatsapp": "+31622222222",
                    "channels": {"warning": ["whatsapp"]},
                    "rules": ["low_fuel"],
                },
                {
                    "name": "elsewhere",
                    "phone": "+31633333333",
                    "fleets": ["fleet-9"],
                    "channels": {"warning": ["sms"]},
                },
            ]
        }
    )
    warning = list(plan_operations(_alert(), Phase.OPEN, recipients))
    assert [(p.recipient, p.channel, p.to) for p in warning] == [
        ("ops:desk", Channel.SMS, "+31201234567")
    ]
    critical = list(plan_operations(_alert(severity=3), Phase.OPEN, recipients))
    assert [p.channel for p in critical] == [Channel.VOICE, Channel.SMS], "each channel once"
    fuel = list(plan_operations(_alert("low_fuel"), Phase.OPEN, recipients))
    assert [(p.recipient, p.to) for p in fuel] == [
        ("ops:desk", "+31201234567"),
        ("ops:wa", "whatsapp:+31622222222"),
    ]
    assert list(plan_operations(_alert(), Phase.RESOLVED, recipients)) == []
    assert list(plan_operations(_alert(fleet="fleet-9"), Phase.OPEN, recipients))[1].recipient == (
        "ops:elsewhere"
    )


def test_a_webhook_takes_both_phases_from_its_minimum_severity() -> None:
    recipients = Recipients.model_validate({"webhooks": [HOOK]})
    assert list(plan_webhooks(_alert(severity=1), Phase.OPEN, recipients)) == []
    (opened,) = plan_webhooks(_alert(), Phase.OPEN, recipients)
    assert (opened.channel, opened.to, opened.recipient) == (
        Channel.WEBHOOK,
        "https://hooks.example.com",  # the ledger keeps no path or query: they may be secret
        "webhook:dispatch",
    )
    assert len(list(plan_webhooks(_alert(), Phase.RESOLVED, recipients))) == 1


def test_a_driver_is_never_routed_to_a_webhook() -> None:
    with pytest.raises(ValidationError, match="not by webhook"):
        RoutingPolicy.model_validate({"channels": {"warning": ["webhook"]}})


def test_the_signature_is_hmac_sha256_of_the_timestamp_and_the_body() -> None:
    key, body = b"k3y", b'{"a":1}'
    expected = hmac.new(key, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(key, 1_700_000_000, body) == f"sha256={expected}"
    headers = signed_headers(key, body, delivery_id="d-1", now_s=1_700_000_000.7)
    assert headers["X-FleetPipe-Timestamp"] == "1700000000"
    assert headers["Idempotency-Key"] == "d-1"
    ts, signed = "1700000000", headers["X-FleetPipe-Signature"]
    assert verify(key, body, timestamp=ts, signed=signed, now_s=1_700_000_100)
    assert not verify(key, body + b" ", timestamp=ts, signed=signed, now_s=1_700_000_100)
    assert not verify(b"other", body, timestamp=ts, signed=signed, now_s=1_700_000_100)
    # A replay 1000 s later, and a fresh timestamp on the old signature:
    assert not verify(key, body, timestamp=ts, signed=signed, now_s=1_700_001_000)
    assert not verify(key, body, timestamp="1700000900", signed=signed, now_s=1_700_001_000)


def test_the_webhook_body_is_stable_and_names_no_phone() -> None:
    alert = _alert()
    body = webhook_body(alert, Phase.OPEN, sink="dispatch", delivery_id="d-1")
    assert body == webhook_body(alert, Phase.OPEN, sink="dispatch", delivery_id="d-1")
    document = json.loads(body)
    assert (document["delivery_id"], document["phase"], document["sink"]) == (
        "d-1",
        "open",
        "dispatch",
    )
    assert document["alert"]["alert_id"] == alert.alert_id
    assert (document["alert"]["severity"], document["alert"]["state"]) == ("warning", "open")
    assert document["alert"]["values"] == {"limit_kmh": 80.0, "speed_kmh": 97.0}
    assert document["alert"]["event_time"].endswith("Z")


def test_logs_see_masked_numbers_and_url_origins() -> None:
    assert mask_phone("+31612345678") == "+316******78"
    assert mask_phone("whatsapp:+31612345678") == "whatsapp:+316******78"
    assert redact("The 'To' number +15005550001 is not valid") == (
        "The 'To' number +150******01 is not valid"
    )
    assert redact("at 2026-12-06 15:00:00, alert 123456789") == (
        "at 2026-12-06 15:00:00, alert 123456789"
    )
    assert origin("https://u:p@hooks.example.com:8443/in/s3cret?token=abc") == (
        "https://hooks.example.com:8443"
    )


def test_settings_take_each_sinks_key_from_its_own_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLEET_TWILIO__ACCOUNT_SID", "AC0")
    monkeypatch.setenv("FLEET_TWILIO__AUTH_TOKEN", "t")
    monkeypatch.setenv("FLEET_TWILIO__SMS_FROM", "+15005550006")
    monkeypatch.setenv("FLEET_RECIPIENTS", json.dumps({"webhooks": [HOOK]}))
    with pytest.raises(ValidationError, match="FLEET_WEBHOOK_SECRETS__DISPATCH"):
        NotificationSettings()  # type: ignore[call-arg]
    monkeypatch.setenv("FLEET_WEBHOOK_SECRETS__DISPATCH", "k3y")
    settings = NotificationSettings()  # type: ignore[call-arg]
    assert settings.webhook_secrets["dispatch"].get_secret_value() == "k3y"
    assert "k3y" not in repr(settings)
    assert settings.recipients.webhooks[0].name == "dispatch"
