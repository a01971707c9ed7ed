"""What the driver reads and hears."""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET
from functools import partial
from zoneinfo import ZoneInfo

import pytest

from fleetpipe.notification.messages import reference, text_body, voice_twiml
from fleetpipe.notification.routing import Channel, Phase
from fleetpipe.pb.v1 import alert_pb2
from fleetpipe_loadtest import records

pytestmark = pytest.mark.unit

T = 1_736_951_525_000_000  # 2025-01-15 14:32:05 UTC
UTC = ZoneInfo("UTC")


# An alert of van-12 whose episode started at T: ``_alert(rule="speeding", **as records.alert)``.
_alert = partial(records.alert, "van-12", episode_start_us=T)


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        pytest.param(
            _alert(),
            "FleetPipe WARNING: Speeding. Vehicle van-12 at 52.37012,4.89031 (u173zq), "
            "2025-01-15 14:32:05 UTC. Speed 97 km/h, limit 80 km/h.",
            id="speeding",
        ),
        pytest.param(
            _alert("crash", severity=alert_pb2.SEVERITY_CRITICAL, values={"decel_ms2": 31.4}),
            "FleetPipe CRITICAL: Crash detected. Vehicle van-12 at 52.37012,4.89031 (u173zq), "
            "2025-01-15 14:32:05 UTC. Deceleration 31.4 m/s2.",
            id="crash",
        ),
        pytest.param(
            _alert("low_fuel", values={"fuel_pct": 7.6}, lat=0.0, lon=0.0),
            "FleetPipe WARNING: Low fuel. Vehicle van-12 at zone u173zq, "
            "2025-01-15 14:32:05 UTC. Fuel 8%.",
            id="no-coordinates-uses-zone",
        ),
        pytest.param(
            _alert("tyre_pressure", values={"psi": 18.5}, geohash6=""),
            "FleetPipe WARNING: Tyre pressure. Vehicle van-12 at 52.37012,4.89031, "
            "2025-01-15 14:32:05 UTC. Psi=18.5.",
            id="unknown-rule-and-value",
        ),
    ],
)
def test_text_says_what_which_vehicle_where_and_when(alert: alert_pb2.Alert, expected: str) -> None:
    body = text_body(alert, Phase.OPEN, Channel.SMS, tz=UTC)
    assert body == f"{expected} Ref {reference(alert.alert_id, Phase.OPEN, Channel.SMS)}"
    assert body.isascii(), "GSM-7 friendly: one SMS segment holds 160 characters"


def test_time_is_shown_in_the_configured_zone() -> None:
    body = text_body(_alert(), Phase.OPEN, Channel.SMS, tz=ZoneInfo("Europe/Amsterdam"))
    assert "2025-01-15 15:32:05 CET" in body


def test_resolved_text_says_it_is_over() -> None:
    alert = _alert("geofence_exit", state=alert_pb2.ALERT_STATE_RESOLVED, at_us=T + 60_000_000)
    body = text_body(alert, Phase.RESOLVED, Channel.WHATSAPP, tz=UTC)
    assert body.startswith("FleetPipe resolved: Left the geofence is over. Vehicle van-12")
    assert "14:33:05" in body


def test_references_differ_by_alert_phase_channel_and_recipient() -> None:
    refs = {
        reference(a, p, c, who)
        for a in ("a1", "a2")
        for p in Phase
        for c in Channel
        for who in ("driver", "ops:desk")
    }
    assert len(refs) == 2 * 2 * len(Channel) * 2
    assert all(r.startswith("FP-") and len(r) == 13 for r in refs)
    assert reference("a1", Phase.OPEN, Channel.SMS) == reference("a1", Phase.OPEN, Channel.SMS)
    # A driver's reference is the one it had before other recipients: pending rows still match.
    assert (
        reference("a1", Phase.OPEN, Channel.SMS, "driver")
        == "FP-" + base64.b32encode(hashlib.sha256(b"a1|open|sms").digest()).decode()[:10]
    )


def test_voice_twiml_says_the_alert_twice() -> None:
    twiml = voice_twiml(_alert("sos", severity=alert_pb2.SEVERITY_CRITICAL), Phase.OPEN, tz=UTC)
    root = ET.fromstring(twiml)
    says = [e.text for e in root.iter("Say")]
    assert root.tag == "Response" and len(says) == 2 and says[0] == says[1]
    assert "SOS raised on vehicle van-12 at 14:32 UTC" in (says[0] or "")
