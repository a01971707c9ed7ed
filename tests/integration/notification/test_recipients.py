"""Operations recipients (through the twilio SDK) and signed webhooks (to a receiver on loopback
that checks the signature): one delivery per alert, whatever fails on the way.

The guarantee for a webhook is the one the README states: every POST of a delivery carries the
same Idempotency-Key (its ledger row's id), so a receiver that acts once per key acts once per
alert phase, even when a crash between the POST and the ledger's record makes notification send
it again.
"""

from __future__ import annotations

import json
import socket
from collections import Counter
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import psycopg
import pytest

from fleetpipe.notification.messages import reference, text_body
from fleetpipe.notification.routing import Channel, Phase
from fleetpipe.pb.v1 import alert_pb2, notification_pb2
from fleetpipe_dev.testing import ServiceProcess, wait_for
from fleetpipe_loadtest import records
from support.webhooks import WebhookReceiver

from .conftest import INVALID, PHONE, NotificationRig

pytestmark = pytest.mark.integration

SENT = notification_pb2.DELIVERY_STATUS_SENT
FAILED = notification_pb2.DELIVERY_STATUS_FAILED
SKIPPED = notification_pb2.DELIVERY_STATUS_SKIPPED
DESK = "+31201234567"
KEY = "receiver-and-sink-share-this-key"
FAST_RETRIES = {
    "FLEET_WEBHOOK_RETRY__ATTEMPTS": "3",
    "FLEET_WEBHOOK_RETRY__INITIAL_BACKOFF_S": "0.2",
    "FLEET_WEBHOOK_RETRY__MAX_BACKOFF_S": "0.5",
}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(KEY) as running:
        yield running


def _env(*, desk: str | None = None, url: str | None = None, key: str = KEY) -> dict[str, str]:
    recipients: dict[str, list[dict[str, object]]] = {"operations": [], "webhooks": []}
    env = dict(FAST_RETRIES)
    if desk is not None:
        recipients["operations"].append(
            {
                "name": "desk",
                "phone": desk,
                "fleets": ["fleet-1"],
                "channels": {"warning": ["sms"], "critical": ["voice", "sms"]},
            }
        )
    if url is not None:
        recipients["webhooks"].append({"name": "dispatch", "url": url, "secret": "fleetpipe-wh"})
        env["FLEET_WEBHOOK_SECRETS__DISPATCH"] = key
    env["FLEET_RECIPIENTS"] = json.dumps(recipients)
    return env


def _by_recipient(
    outcomes: list[notification_pb2.NotificationOutcome],
) -> dict[tuple[str, str], notification_pb2.NotificationOutcome]:
    return {(o.alert_id, o.recipient or "driver"): o for o in outcomes}


def _wait_settled(rig: NotificationRig, proc: ServiceProcess, rows: int) -> None:
    def settled() -> bool:
        proc.check_alive()
        try:
            found = rig.ledger()
        except psycopg.errors.UndefinedTable:
            return False  # the service has not migrated its schema yet
        return len(found) == rows and all(r["status"] != "PENDING" for r in found)

    wait_for(settled, timeout=90, interval=0.5, what=f"{rows} settled ledger row(s)")


def test_operations_sms_is_sent_once_per_alert_across_a_kill_between_send_and_commit(
    rig: NotificationRig,
) -> None:
    alerts = [
        records.alert("v-nophone", "harsh_braking", values={"decel_ms2": 7.5}),
        records.alert("v-nophone", "overheating", values={"coolant_temp_c": 121}),
    ]
    # The first process holds each delivery after Twilio accepted it and before the ledger
    # records it: the kill lands there.
    first = rig.start("n1", FLEET_HOLD_MS="60000", **_env(desk=DESK))
    rig.produce(*alerts)

    def at_twilio() -> bool:
        first.check_alive()
        return len(rig.twilio.contract.messages()) == 1

    wait_for(at_twilio, timeout=90, what="the desk's first message at Twilio")
    first.kill()
    pending = [r for r in rig.ledger() if r["recipient"] == "ops:desk"]
    assert [(r["status"], r["attempts"]) for r in pending] == [("PENDING", 1)]

    second = rig.start("n2", **_env(desk=DESK))
    _wait_settled(rig, second, rows=4)  # per alert: the driver's SKIPPED sms, the desk's sms
    messages = rig.twilio.contract.messages()
    assert sorted(m["to"] for m in messages) == [DESK, DESK]
    for alert in alerts:
        ref = reference(alert.alert_id, Phase.OPEN, Channel.SMS, "ops:desk")
        (mine,) = [m for m in messages if ref in m["body"]]
        assert mine["body"] == text_body(
            alert, Phase.OPEN, Channel.SMS, tz=ZoneInfo("UTC"), recipient="ops:desk"
        )
    assert len(rig.twilio.contract.creates()) == 2, "never sent twice"
    assert "found at the provider" in second.log()
    rows = {(r["alert_id"], r["recipient"]): r for r in rig.ledger()}
    for alert in alerts:
        assert rows[(alert.alert_id, "ops:desk")]["status"] == "SENT"
        driver = rows[(alert.alert_id, "driver")]
        assert (driver["status"], driver["error_message"]) == (
            "SKIPPED",
            "no phone number for the driver",
        )
    outcomes = _by_recipient(rig.outcomes())
    assert outcomes[(alerts[1].alert_id, "ops:desk")].status == SENT
    assert DESK not in first.log() + second.log(), "a phone number in the log"


def test_the_webhook_acts_once_per_alert_across_a_kill_between_send_and_commit(
    rig: NotificationRig, receiver: WebhookReceiver
) -> None:
    alerts = [
        records.alert("v-nophone", "speeding", values={"speed_kmh": 131, "limit_kmh": 80}),
        records.alert("v-nophone", "low_fuel", values={"fuel_pct": 4}),
    ]
    first = rig.start("n1", FLEET_HOLD_MS="60000", **_env(url=receiver.url))
    rig.produce(*alerts)

    def at_receiver() -> bool:
        first.check_alive()
        return len(receiver.received()) == 1

    wait_for(at_receiver, timeout=90, what="the first POST at the receiver")
    first.kill()
    (pending,) = [r for r in rig.ledger() if r["recipient"] == "webhook:dispatch"]
    assert (pending["status"], pending["attempts"]) == ("PENDING", 1)
    assert receiver.received()[0].key == str(pending["delivery_id"])

    second = rig.start("n2", **_env(url=receiver.url))
    _wait_settled(rig, second, rows=4)
    received = receiver.received()
    assert all(r.signature_ok and r.status == 200 for r in received), received
    # The delivery the kill interrupted was sent again, byte for byte, with its key...
    keys = Counter(r.key for r in received)
    assert sorted(keys.values()) == [1, 2]
    again = [r for r in received if keys[r.key] == 2]
    assert again[0].body == again[1].body
    # ...and the receiver acted once per alert.
    processed = receiver.processed()
    assert sorted(d["alert"]["alert_id"] for d in processed.values()) == sorted(
        a.alert_id for a in alerts
    )
    rows = {(r["alert_id"], r["recipient"]): r for r in rig.ledger()}
    for key, document in processed.items():
        row = rows[(document["alert"]["alert_id"], "webhook:dispatch")]
        assert (row["status"], str(row["delivery_id"])) == ("SENT", key)
        assert (document["delivery_id"], document["phase"], document["sink"]) == (
            key,
            "open",
            "dispatch",
        )
    assert "sending it again with the same Idempotency-Key" in second.log()
    outcome = _by_recipient(rig.outcomes())[(alerts[0].alert_id, "webhook:dispatch")]
    assert (outcome.channel, outcome.status) == (notification_pb2.CHANNEL_WEBHOOK, SENT)
    assert outcome.delivery_id == str(rows[(alerts[0].alert_id, "webhook:dispatch")]["delivery_id"])


def test_a_500_is_retried_with_the_same_key_and_acted_on_once(
    rig: NotificationRig, receiver: WebhookReceiver
) -> None:
    receiver.fail_next(1, status=503)
    proc = rig.start("n1", **_env(url=receiver.url))
    alert = records.alert("v-nophone", "idling", values={"idle_s": 900})
    rig.produce(alert)
    _wait_settled(rig, proc, rows=2)
    first, second = receiver.received()
    assert (first.status, second.status) == (503, 200)
    assert first.key == second.key and first.body == second.body
    assert len(receiver.processed()) == 1
    row = next(r for r in rig.ledger() if r["recipient"] == "webhook:dispatch")
    assert (row["status"], row["attempts"]) == ("SENT", 2)


def test_a_wrong_signing_key_fails_the_webhook_clearly_and_nothing_else(
    rig: NotificationRig, receiver: WebhookReceiver
) -> None:
    proc = rig.start("n1", **_env(desk=DESK, url=receiver.url, key="not-the-receivers-key"))
    alerts = [
        records.alert("v-1", "speeding", values={"speed_kmh": 99, "limit_kmh": 80}),
        records.alert("v-1", "low_fuel", values={"fuel_pct": 6}),
    ]
    rig.produce(*alerts)
    _wait_settled(rig, proc, rows=6)  # per alert: the driver's sms, the desk's, the webhook
    outcomes = _by_recipient(rig.outcomes())
    for alert in alerts:
        hook = outcomes[(alert.alert_id, "webhook:dispatch")]
        assert (hook.status, hook.error_code) == (FAILED, "401")
        assert "refused the request (401)" in hook.error_message
        assert "signing secret" in hook.error_message
        assert outcomes[(alert.alert_id, "driver")].status == SENT
        assert outcomes[(alert.alert_id, "ops:desk")].status == SENT
    assert [r.status for r in receiver.received()] == [401, 401], "refused: never retried"
    assert receiver.processed() == {}
    assert sorted(m["to"] for m in rig.twilio.contract.messages()) == [DESK, DESK, PHONE, PHONE]
    log = proc.log()
    assert "refused the request (401)" in log
    assert "not-the-receivers-key" not in log and "t0ps3cret" not in log
    proc.check_alive()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_an_unreachable_webhook_is_given_up_on_and_holds_nothing_up(rig: NotificationRig) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/hooks"
    proc = rig.start("n1", **_env(desk=DESK, url=url))
    alerts = [
        records.alert("v-1", "overheating", values={"coolant_temp_c": 118}),
        records.alert("v-nophone", "harsh_braking", values={"decel_ms2": 8.0}),
    ]
    rig.produce(*alerts)
    _wait_settled(rig, proc, rows=6)
    outcomes = _by_recipient(rig.outcomes())
    for alert in alerts:
        hook = outcomes[(alert.alert_id, "webhook:dispatch")]
        assert (hook.status, hook.error_code, hook.attempts) == (FAILED, "unreachable", 3)
        assert hook.error_message.startswith("gave up after retries: webhook dispatch")
        assert "is unreachable" in hook.error_message
        assert outcomes[(alert.alert_id, "ops:desk")].status == SENT
    assert outcomes[(alerts[0].alert_id, "driver")].status == SENT
    assert outcomes[(alerts[1].alert_id, "driver")].status == SKIPPED
    proc.check_alive()


def test_an_invalid_desk_number_fails_once_and_stays_out_of_the_log(rig: NotificationRig) -> None:
    proc = rig.start("n1", **_env(desk=INVALID))
    alert = records.alert("v-1", "crash", severity=alert_pb2.SEVERITY_CRITICAL)
    rig.produce(alert)
    _wait_settled(rig, proc, rows=4)  # the driver's voice and sms, the desk's voice and sms
    outcomes = [o for o in rig.outcomes() if o.recipient == "ops:desk"]
    assert sorted((o.channel, o.status, o.error_code) for o in outcomes) == [
        (notification_pb2.CHANNEL_SMS, FAILED, "21211"),
        (notification_pb2.CHANNEL_VOICE, FAILED, "21211"),
    ]
    log = proc.log()
    assert "failed permanently" in log
    assert INVALID not in log and PHONE not in log


def test_a_webhook_without_its_signing_key_refuses_to_start_naming_the_variable(
    rig: NotificationRig,
) -> None:
    env = _env(url="https://dispatch.example.com/hooks")
    del env["FLEET_WEBHOOK_SECRETS__DISPATCH"]
    proc = rig.start("n1", **env)
    wait_for(lambda: not proc.alive(), timeout=60, what="the service to exit")
    assert proc.stop() != 0
    assert "FLEET_WEBHOOK_SECRETS__DISPATCH" in proc.log()
