"""The demo's recipients: the webhook receiver's verdicts on requests signed by notification's
own gateway (over loopback HTTP), the settings it hands notification, and what makes the demo
fail."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from fleetpipe.notification.payload import webhook_body
from fleetpipe.notification.provider import ProviderError
from fleetpipe.notification.recipients import Recipients, WebhookSink
from fleetpipe.notification.routing import Phase
from fleetpipe.notification.webhook import WebhookGateway
from fleetpipe.pb.v1 import alert_pb2
from fleetpipe_dev.demo_recipients import (
    STAND_IN_OPERATIONS_PHONE,
    DemoRecipients,
    LedgerCount,
    RecipientsOutcome,
)
from fleetpipe_dev.webhook_receiver import WebhookReceiver
from fleetpipe_loadtest import records

pytestmark = pytest.mark.unit


def _post(receiver: WebhookReceiver, key: str, alert: alert_pb2.Alert, delivery_id: str) -> None:
    sink = WebhookSink(name="dispatch", url=receiver.url, secret="demo-webhook")
    body = webhook_body(alert, Phase.OPEN, sink=sink.name, delivery_id=delivery_id)
    WebhookGateway({"dispatch": SecretStr(key)}).post(sink, body, delivery_id=delivery_id)


def test_the_receiver_counts_valid_bad_and_repeated_deliveries() -> None:
    crash = records.alert("v-1", "crash", severity=alert_pb2.SEVERITY_CRITICAL)
    speeding = records.alert("v-2", "speeding")
    with WebhookReceiver("the-run's-key") as receiver:
        _post(receiver, "the-run's-key", crash, "d-1")
        _post(receiver, "the-run's-key", crash, "d-1")  # a redelivery after a timeout
        _post(receiver, "the-run's-key", speeding, "d-2")
        with pytest.raises(ProviderError) as refused:
            _post(receiver, "another-key", speeding, "d-3")
        tally = receiver.tally()
    assert refused.value.status == 401
    assert tally.requests == 4 and tally.bad_signatures == 1
    assert tally.processed == 2 and tally.redelivered == 1
    assert tally.by_rule == {"crash": 1, "speeding": 1}
    assert tally.by_severity == {"critical": 1, "warning": 1}
    assert tally.by_phase == {"open": 2} and tally.most_per_alert_phase == 1


def test_an_alert_phase_processed_under_two_keys_is_counted() -> None:
    crash = records.alert("v-1", "crash", severity=alert_pb2.SEVERITY_CRITICAL)
    with WebhookReceiver("k") as receiver:
        _post(receiver, "k", crash, "d-1")
        _post(receiver, "k", crash, "d-2")
        assert receiver.tally().most_per_alert_phase == 2


def test_notification_gets_a_desk_and_a_sink_it_accepts_and_the_key_only_as_a_secret() -> None:
    env = {"FLEET_DEMO_WEBHOOK_SECRET": "s3cret-of-the-run"}
    recipients = DemoRecipients.start("demo", env, stand_in=True)
    try:
        settings = recipients.notification_env()
        parsed = Recipients.model_validate(json.loads(settings["FLEET_RECIPIENTS"]))
        (desk,) = parsed.operations
        (sink,) = parsed.webhooks
        assert desk.phone == STAND_IN_OPERATIONS_PHONE and desk.fleets == ("demo",)
        assert sink.url == recipients.receiver.url and sink.fleets == ("demo",)
        assert settings["FLEET_WEBHOOK_SECRETS__DISPATCH"] == "s3cret-of-the-run"
        assert "s3cret" not in settings["FLEET_RECIPIENTS"] + " ".join(recipients.describe())
    finally:
        recipients.stop()
    real_twilio = DemoRecipients.start("demo", {}, stand_in=False)
    try:
        assert json.loads(real_twilio.notification_env()["FLEET_RECIPIENTS"])["operations"] == []
    finally:
        real_twilio.stop()


def _outcome(receiver: WebhookReceiver, *, desk_sms: int) -> RecipientsOutcome:
    sent = LedgerCount("ops:ops_desk", "sms", "SENT", "crash", "critical", 3, 3)
    return RecipientsOutcome(
        operations_phone=STAND_IN_OPERATIONS_PHONE,
        webhook_url=receiver.url,
        ledger=[sent],
        provider={"sms": desk_sms, "calls": 0},
        webhook=receiver.tally(),
    )


def test_a_bad_signature_or_an_sms_beyond_the_ledger_fails_the_demo() -> None:
    with WebhookReceiver("k") as receiver:
        assert _outcome(receiver, desk_sms=3).problems == []
        assert _outcome(receiver, desk_sms=4).problems == [
            "the operations desk received 4 SMS for 3 sent in the ledger"
        ]
        with pytest.raises(ProviderError):
            _post(receiver, "not-k", records.alert("v-1"), "d-1")
        assert _outcome(receiver, desk_sms=3).problems == [
            "1 webhook request(s) with a bad signature"
        ]
