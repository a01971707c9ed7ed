"""Alerts reach drivers through the twilio SDK, once, whatever fails on the way."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from zoneinfo import ZoneInfo

import pytest

from fleetpipe.notification.messages import text_body
from fleetpipe.notification.routing import Channel, Phase
from fleetpipe.pb.v1 import alert_pb2, notification_pb2
from fleetpipe_dev.testing import wait_for
from fleetpipe_loadtest import records

from .conftest import INVALID, PHONE, SENDER, NotificationRig

pytestmark = pytest.mark.integration

SENT = notification_pb2.DELIVERY_STATUS_SENT
FAILED = notification_pb2.DELIVERY_STATUS_FAILED


def test_one_alert_becomes_one_sms_with_the_right_body(rig: NotificationRig) -> None:
    alert = records.alert("v-1", "speeding", values={"speed_kmh": 97, "limit_kmh": 80})
    proc = rig.start("n1")
    rig.produce(alert)
    (outcome,) = rig.wait_outcomes(1, proc)

    (message,) = rig.twilio.contract.messages()
    assert message["body"] == text_body(alert, Phase.OPEN, Channel.SMS, tz=ZoneInfo("UTC"))
    assert "Speeding. Vehicle v-1 at 52.37012,4.89031 (u173zq)" in message["body"]
    assert (message["to"], message["from"]) == (PHONE, SENDER)
    assert (outcome.alert_id, outcome.channel, outcome.status) == (
        alert.alert_id,
        notification_pb2.CHANNEL_SMS,
        SENT,
    )
    assert outcome.provider_sid == message["sid"] and outcome.attempts == 1
    (row,) = rig.ledger()
    assert (row["status"], row["provider_sid"]) == ("SENT", message["sid"])
    assert proc.stop() == 0


def test_a_500_then_a_201_sends_exactly_one_message(rig: NotificationRig) -> None:
    rig.twilio.contract.fail_next(1, status=500)
    proc = rig.start("n1")
    rig.produce(records.alert("v-1", "low_fuel", values={"fuel_pct": 7}))
    (outcome,) = rig.wait_outcomes(1, proc)

    assert len(rig.twilio.contract.messages()) == 1
    assert [r.status for r in rig.twilio.contract.creates()] == [500, 201]
    assert (outcome.status, outcome.attempts) == (SENT, 2)


def test_an_answer_lost_in_a_timeout_is_found_not_resent(rig: NotificationRig) -> None:
    # Twilio creates the message but the answer never arrives: the classic ambiguous failure.
    rig.twilio.contract.fail_next(1, kind="timeout_after_create", hang_s=10)
    proc = rig.start("n1")
    rig.produce(records.alert("v-1", "overheating", values={"coolant_temp_c": 215}))
    (outcome,) = rig.wait_outcomes(1, proc)

    (message,) = rig.twilio.contract.messages()
    assert len(rig.twilio.contract.creates()) == 1
    assert (outcome.status, outcome.provider_sid) == (SENT, message["sid"])


def test_an_invalid_number_fails_once_without_a_retry_storm(rig: NotificationRig) -> None:
    proc = rig.start("n1")
    rig.produce(records.alert("v-bad", "speeding"), records.alert("v-1", "speeding"))
    outcomes = rig.wait_outcomes(2, proc)
    by_vehicle = {o.vehicle_id: o for o in outcomes}
    assert (by_vehicle["v-bad"].status, by_vehicle["v-bad"].error_code) == (FAILED, "21211")
    assert by_vehicle["v-1"].status == SENT, "the next alert is not held up"
    assert proc.stop() == 0

    # A second consumer group replays every alert from the start: the ledger answers.
    replay = rig.start("n2", group="replay")
    rig.wait_outcomes(4, replay)
    assert replay.stop() == 0
    creates_to_invalid = [r for r in rig.twilio.contract.creates() if r.param("To") == INVALID]
    assert len(creates_to_invalid) == 1
    assert len(rig.twilio.contract.messages()) == 1
    statuses = sorted((o.vehicle_id, o.status) for o in rig.outcomes())
    assert statuses == [("v-1", SENT), ("v-1", SENT), ("v-bad", FAILED), ("v-bad", FAILED)]


def test_a_kill_between_the_send_and_the_commit_still_sends_once(rig: NotificationRig) -> None:
    alert = records.alert("v-1", "harsh_braking", values={"decel_ms2": 7.5})
    # The first process holds every delivery after Twilio accepted it and before the ledger
    # records it: the window the kill lands in.
    first = rig.start("n1", FLEET_HOLD_MS="60000")
    rig.produce(alert)

    def sent_to_twilio() -> bool:
        first.check_alive()
        return len(rig.twilio.contract.messages()) == 1

    wait_for(sent_to_twilio, timeout=90, what="the message at Twilio")
    first.kill()
    (row,) = rig.ledger()
    assert (row["status"], row["attempts"]) == ("PENDING", 1)
    assert rig.outcomes() == []

    second = rig.start("n1b")
    (outcome,) = rig.wait_outcomes(1, second)
    (message,) = rig.twilio.contract.messages()
    assert (outcome.status, outcome.provider_sid) == (SENT, message["sid"])
    assert len(rig.twilio.contract.creates()) == 1, "never sent twice"
    assert rig.ledger()[0]["status"] == "SENT"
    assert "found at the provider" in second.log()


def test_a_crash_alert_calls_the_driver_and_texts(rig: NotificationRig) -> None:
    proc = rig.start("n1")
    crash = records.alert(
        "v-1", "crash", severity=alert_pb2.SEVERITY_CRITICAL, values={"decel_ms2": 31.0}
    )
    rig.produce(crash)
    outcomes = rig.wait_outcomes(2, proc)
    assert [(o.channel, o.status) for o in outcomes] == [
        (notification_pb2.CHANNEL_VOICE, SENT),
        (notification_pb2.CHANNEL_SMS, SENT),
    ]
    (call,) = rig.twilio.contract.calls()
    assert call["to"] == PHONE and outcomes[0].provider_sid == call["sid"]
    (create,) = rig.twilio.contract.creates("Calls")
    says = [e.text or "" for e in ET.fromstring(create.param("Twiml") or "").iter("Say")]
    assert says and "Crash detected on vehicle v-1" in says[0]


def test_whatsapp_goes_to_the_whatsapp_number(rig: NotificationRig) -> None:
    proc = rig.start("n1", FLEET_ROUTING__CHANNELS='{"warning": ["whatsapp"]}')
    rig.produce(
        records.alert("v-2", "idling", values={"idle_s": 900}),
        records.alert("v-1", "idling", values={"idle_s": 600}),
    )
    outcomes = rig.wait_outcomes(2, proc)
    assert {(o.vehicle_id, o.channel) for o in outcomes} == {
        ("v-2", notification_pb2.CHANNEL_WHATSAPP),
        ("v-1", notification_pb2.CHANNEL_SMS),  # no WhatsApp number: falls back to SMS
    }
    to = sorted(m["to"] for m in rig.twilio.contract.messages())
    assert to == [PHONE, "whatsapp:+31622222222"]
    wa = next(m for m in rig.twilio.contract.messages() if m["to"].startswith("whatsapp:"))
    assert wa["from"] == f"whatsapp:{SENDER}"
