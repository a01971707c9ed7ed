"""The JSON a webhook sink receives for one alert phase. Pure.

Stable field names in snake_case, times as RFC 3339 UTC strings and microseconds, enums as
lower-case words; no phone number. ``delivery_id`` repeats the ``Idempotency-Key`` header
inside the signed body. The same delivery always has the same body, so a redelivery after a
crash is byte for byte the first one (only the timestamp and signature headers differ).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fleetpipe.notification.routing import Phase, Severity
from fleetpipe.pb.v1 import alert_pb2

_STATES = {
    alert_pb2.ALERT_STATE_OPEN: "open",
    alert_pb2.ALERT_STATE_UPDATE: "update",
    alert_pb2.ALERT_STATE_RESOLVED: "resolved",
}


def _time(us: int) -> str | None:
    if not us:
        return None
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat().replace("+00:00", "Z")


def alert_document(alert: alert_pb2.Alert) -> dict[str, Any]:
    severity = Severity.from_pb(alert.severity)
    location = None
    if alert.HasField("location"):
        location = {"lat": alert.location.lat, "lon": alert.location.lon}
    return {
        "alert_id": alert.alert_id,
        "fleet_id": alert.fleet_id,
        "vehicle_id": alert.vehicle_id,
        "driver_id": alert.driver_id,
        "rule": alert.rule,
        "severity": severity.value if severity else "unspecified",
        "state": _STATES.get(alert.state, "unspecified"),
        "message": alert.message,
        "values": dict(sorted(alert.values.items())),
        "episode_start": _time(alert.episode_start_us),
        "episode_end": _time(alert.episode_end_us),
        "event_time": _time(alert.event_time_us),
        "detected_time": _time(alert.detected_time_us),
        "episode_start_us": alert.episode_start_us,
        "event_time_us": alert.event_time_us,
        "location": location,
        "geohash6": alert.geohash6,
    }


def webhook_body(alert: alert_pb2.Alert, phase: Phase, *, sink: str, delivery_id: str) -> bytes:
    document = {
        "delivery_id": delivery_id,
        "sink": sink,
        "phase": phase.value,
        "alert": alert_document(alert),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
