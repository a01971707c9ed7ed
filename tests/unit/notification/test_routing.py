"""Which alerts notify, on which channels, to which address."""

from __future__ import annotations

import pytest

from fleetpipe.notification.routing import (
    Channel,
    Contact,
    Phase,
    PlannedDelivery,
    RoutingPolicy,
    Severity,
    alert_phase,
    plan,
    skip_reason,
)
from fleetpipe.pb.v1 import alert_pb2
from fleetpipe.registry import Vehicle
from fleetpipe_loadtest import records

pytestmark = pytest.mark.unit

NOW = 1_750_000_000_000_000
W, C, INFO = alert_pb2.SEVERITY_WARNING, alert_pb2.SEVERITY_CRITICAL, alert_pb2.SEVERITY_INFO
PHONE, WA = "+31612345678", "+31687654321"


def _alert(
    rule: str = "speeding",
    severity: int = W,
    state: int = alert_pb2.ALERT_STATE_OPEN,
    age_s: float = 5.0,
) -> alert_pb2.Alert:
    a = records.alert("v-1", rule, severity=severity, state=state, episode_start_us=NOW)
    a.detected_time_us = NOW - int(age_s * 1e6)
    return a


@pytest.mark.parametrize(
    ("state", "rule", "resolved_rules", "expected"),
    [
        pytest.param(alert_pb2.ALERT_STATE_OPEN, "speeding", (), Phase.OPEN, id="open-notifies"),
        pytest.param(alert_pb2.ALERT_STATE_UPDATE, "speeding", (), None, id="update-never"),
        pytest.param(alert_pb2.ALERT_STATE_RESOLVED, "speeding", (), None, id="resolved-off"),
        pytest.param(
            alert_pb2.ALERT_STATE_RESOLVED,
            "geofence_exit",
            ("geofence_exit",),
            Phase.RESOLVED,
            id="resolved-for-listed-rule",
        ),
        pytest.param(alert_pb2.ALERT_STATE_UNSPECIFIED, "sos", (), None, id="unspecified"),
    ],
)
def test_alert_phase(
    state: int, rule: str, resolved_rules: tuple[str, ...], expected: Phase | None
) -> None:
    policy = RoutingPolicy(resolved_rules=frozenset(resolved_rules))
    assert alert_phase(_alert(rule, state=state), policy) == expected


@pytest.mark.parametrize(
    ("alert", "policy", "expected"),
    [
        pytest.param(_alert(), RoutingPolicy(), "", id="warning-goes"),
        pytest.param(
            _alert(severity=INFO),
            RoutingPolicy(),
            "below minimum severity warning",
            id="info-below-minimum",
        ),
        pytest.param(
            _alert(severity=INFO),
            RoutingPolicy(min_severity=Severity.INFO),
            "no channel for speeding at info",
            id="info-without-channel",
        ),
        pytest.param(_alert(severity=0), RoutingPolicy(), "severity unspecified", id="unspecified"),
        pytest.param(_alert(age_s=3600), RoutingPolicy(), "stale: 3600s old", id="stale"),
        pytest.param(_alert("crash", C, age_s=600), RoutingPolicy(), "", id="crash-recent-goes"),
    ],
)
def test_skip_reason(alert: alert_pb2.Alert, policy: RoutingPolicy, expected: str) -> None:
    assert skip_reason(alert, policy, NOW) == expected


FULL = Contact("driver:d-1", "Ann", PHONE, WA)
PHONE_ONLY = Contact("driver:d-1", "Ann", PHONE, "")
NOBODY = Contact("vehicle:v-1")


@pytest.mark.parametrize(
    ("alert", "contact", "policy", "expected"),
    [
        pytest.param(
            _alert(), FULL, RoutingPolicy(), [PlannedDelivery(Channel.SMS, PHONE)], id="warning-sms"
        ),
        pytest.param(
            _alert("overheating", C),
            FULL,
            RoutingPolicy(),
            [PlannedDelivery(Channel.SMS, PHONE), PlannedDelivery(Channel.VOICE, PHONE)],
            id="critical-sms-and-call",
        ),
        pytest.param(
            _alert("crash", C),
            FULL,
            RoutingPolicy(),
            [PlannedDelivery(Channel.VOICE, PHONE), PlannedDelivery(Channel.SMS, PHONE)],
            id="crash-calls-first",
        ),
        pytest.param(
            _alert(),
            FULL,
            RoutingPolicy(channels={Severity.WARNING: (Channel.WHATSAPP,)}),
            [PlannedDelivery(Channel.WHATSAPP, f"whatsapp:{WA}")],
            id="whatsapp-address-prefixed",
        ),
        pytest.param(
            _alert(),
            PHONE_ONLY,
            RoutingPolicy(channels={Severity.WARNING: (Channel.WHATSAPP, Channel.SMS)}),
            [PlannedDelivery(Channel.SMS, PHONE)],
            id="whatsapp-falls-back-to-sms-once",
        ),
        pytest.param(
            _alert(),
            PHONE_ONLY,
            RoutingPolicy(
                channels={Severity.WARNING: (Channel.WHATSAPP,)}, whatsapp_fallback_to_sms=False
            ),
            [PlannedDelivery(Channel.WHATSAPP, "", "no WhatsApp number for the driver")],
            id="whatsapp-without-fallback-skipped",
        ),
        pytest.param(
            _alert(),
            NOBODY,
            RoutingPolicy(),
            [PlannedDelivery(Channel.SMS, "", "no phone number for the driver")],
            id="no-contact-skipped",
        ),
        pytest.param(
            _alert("low_fuel"),
            FULL,
            RoutingPolicy(rule_channels={"low_fuel": (Channel.WHATSAPP,)}),
            [PlannedDelivery(Channel.WHATSAPP, f"whatsapp:{WA}")],
            id="rule-overrides-severity",
        ),
    ],
)
def test_plan(
    alert: alert_pb2.Alert, contact: Contact, policy: RoutingPolicy, expected: list[PlannedDelivery]
) -> None:
    assert plan(alert, contact, policy) == expected


def test_contact_counts_by_driver_else_vehicle() -> None:
    vehicle = Vehicle("v-1", "f", driver_id="d-9", driver_phone=PHONE)
    assert Contact.of(vehicle, _alert()).driver_key == "driver:d-9"
    assert Contact.of(None, _alert()).driver_key == "vehicle:v-1"
    assert Contact.of(vehicle, _alert()).phone == PHONE


def test_policy_reads_json_channel_tables() -> None:
    policy = RoutingPolicy.model_validate_json(
        '{"min_severity": "critical", "channels": {"critical": ["whatsapp", "voice"]},'
        ' "resolved_rules": ["geofence_exit"]}'
    )
    assert policy.channels == {Severity.CRITICAL: (Channel.WHATSAPP, Channel.VOICE)}
    assert policy.resolved_rules == frozenset({"geofence_exit"})
