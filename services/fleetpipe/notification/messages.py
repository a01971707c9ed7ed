"""What the driver reads or hears: what happened, to which vehicle, where and when. Pure.

Texts stay in plain ASCII so that an SMS is encoded in GSM-7 (160 characters a segment) rather
than UCS-2 (70). Each text ends with a reference derived from the alert, the phase and the
channel: it is how a pending delivery is found again in Twilio's message list after a crash.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from twilio.twiml.voice_response import VoiceResponse

from fleetpipe.notification.routing import DRIVER, Channel, Phase, Severity, alert_time_us
from fleetpipe.pb.v1 import alert_pb2

RULE_TITLES = {
    "speeding": "Speeding",
    "low_fuel": "Low fuel",
    "overheating": "Engine overheating",
    "low_battery": "Low battery",
    "over_revving": "Over-revving",
    "gear_mismatch": "Gear mismatch",
    "geofence_exit": "Left the geofence",
    "geofence_entry": "Entered a geofence",
    "harsh_braking": "Harsh braking",
    "harsh_acceleration": "Harsh acceleration",
    "crash": "Crash detected",
    "sos": "SOS raised",
    "idling": "Idling",
    "offline": "Vehicle offline",
    "collision_risk": "Collision risk",
}
# value key -> (label, format, unit); keys not listed are shown as key=value.
VALUE_FORMATS: dict[str, tuple[str, str, str]] = {
    "speed_kmh": ("speed", "{:.0f}", " km/h"),
    "limit_kmh": ("limit", "{:.0f}", " km/h"),
    "fuel_pct": ("fuel", "{:.0f}", "%"),
    "coolant_temp_c": ("engine", "{:.0f}", " C"),
    "battery_pct": ("battery", "{:.0f}", "%"),
    "rpm": ("rpm", "{:.0f}", ""),
    "decel_ms2": ("deceleration", "{:.1f}", " m/s2"),
    "accel_ms2": ("acceleration", "{:.1f}", " m/s2"),
    "idle_s": ("idle", "{:.0f}", " s"),
    "duration_s": ("for", "{:.0f}", " s"),
    "ttc_s": ("time to collision", "{:.1f}", " s"),
    "distance_m": ("distance", "{:.0f}", " m"),
    "gear": ("gear", "{:.0f}", ""),
    "expected_gear": ("expected gear", "{:.0f}", ""),
}
MAX_VALUES = 3


def reference(alert_id: str, phase: Phase, channel: Channel, recipient: str = DRIVER) -> str:
    """A short, stable tag for one delivery: ``FP-`` and 10 base32 characters."""
    # A driver's tag is what it was before other recipients existed (pending rows match).
    who = "" if recipient == DRIVER else f"|{recipient}"
    digest = hashlib.sha256(f"{alert_id}|{phase.value}|{channel.value}{who}".encode()).digest()
    return "FP-" + base64.b32encode(digest).decode()[:10]


def rule_title(rule: str) -> str:
    return RULE_TITLES.get(rule) or (rule.replace("_", " ").capitalize() or "Alert")


def when(time_us: int, tz: ZoneInfo) -> str:
    t = datetime.fromtimestamp(time_us / 1e6, UTC).astimezone(tz)
    return f"{t:%Y-%m-%d %H:%M:%S} {t.tzname() or tz.key}"


def where(alert: alert_pb2.Alert) -> str:
    loc = alert.location
    if alert.HasField("location") and (loc.lat or loc.lon):
        place = f"{loc.lat:.5f},{loc.lon:.5f}"
        return f"{place} ({alert.geohash6})" if alert.geohash6 else place
    return f"zone {alert.geohash6}" if alert.geohash6 else "an unknown location"


def details(alert: alert_pb2.Alert) -> str:
    parts: list[str] = []
    known = {k: i for i, k in enumerate(VALUE_FORMATS)}
    for key in sorted(alert.values, key=lambda k: (known.get(k, len(known)), k)):
        value = alert.values[key]
        if key in VALUE_FORMATS:
            label, fmt, unit = VALUE_FORMATS[key]
            parts.append(f"{label} {fmt.format(value)}{unit}")
        else:
            parts.append(f"{key}={value:g}")
        if len(parts) == MAX_VALUES:
            break
    return ", ".join(parts)


def text_body(
    alert: alert_pb2.Alert,
    phase: Phase,
    channel: Channel,
    *,
    tz: ZoneInfo,
    brand: str = "FleetPipe",
    recipient: str = DRIVER,
) -> str:
    """The SMS / WhatsApp text (an operations recipient reads the driver's)."""
    severity = Severity.from_pb(alert.severity)
    level = severity.value.upper() if severity else "ALERT"
    title = rule_title(alert.rule)
    if phase is Phase.RESOLVED:
        head = f"{brand} resolved: {title} is over"
        at_us = alert.episode_end_us or alert_time_us(alert)
    else:
        head = f"{brand} {level}: {title}"
        at_us = alert.event_time_us or alert_time_us(alert)
    text = f"{head}. Vehicle {alert.vehicle_id} at {where(alert)}, {when(at_us, tz)}."
    info = details(alert) if phase is Phase.OPEN else ""
    if info:
        text += f" {info[0].upper()}{info[1:]}."
    return f"{text} Ref {reference(alert.alert_id, phase, channel, recipient)}"


def voice_twiml(
    alert: alert_pb2.Alert, phase: Phase, *, tz: ZoneInfo, brand: str = "FleetPipe"
) -> str:
    """The TwiML of the call: the alert said twice, slowly, then a pointer to the text."""
    title = rule_title(alert.rule)
    at = datetime.fromtimestamp(
        (alert.event_time_us or alert_time_us(alert)) / 1e6, UTC
    ).astimezone(tz)
    if phase is Phase.RESOLVED:
        said = f"{brand}. {title} on vehicle {alert.vehicle_id} is over."
    else:
        said = (
            f"{brand} safety alert. {title} on vehicle {alert.vehicle_id} "
            f"at {at:%H:%M} {at.tzname() or ''}. If you need help, stop safely and call dispatch."
        )
    response = VoiceResponse()
    response.say(said, voice="alice", language="en-US")
    response.pause(length=1)
    response.say(said, voice="alice", language="en-US")
    return str(response)
