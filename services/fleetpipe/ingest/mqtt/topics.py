"""The MQTT topic layout devices publish to, and the subscription the bridge takes.

A device publishes to ``fleet/{fleet}/vehicle/{vehicle_id}/telemetry``, optionally with a
suffix naming the payload: ``/json`` (JSON), ``/batch`` (a protobuf ``TelemetryBatch``); no
suffix means one protobuf ``Telemetry``. The bridge answers rejected events on
``fleet/{fleet}/vehicle/{vehicle_id}/rejections``, which only that device may read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from fleetpipe.registry import VEHICLE_ID_RE

# What every replica subscribes to, inside one shared-subscription group: in MQTT a trailing
# '#' also matches its parent level, so this takes ``.../telemetry`` and every suffix of it.
TELEMETRY_FILTER = "fleet/+/vehicle/+/telemetry/#"
REJECTIONS_FILTER = "fleet/+/vehicle/+/rejections"
# A fleet id becomes a topic level and an ACL entry: no wildcard, separator or space.
FLEET_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Payload(StrEnum):
    TELEMETRY = "telemetry"  # one protobuf Telemetry
    BATCH = "batch"  # a protobuf TelemetryBatch
    JSON = "json"  # a JSON object, an array of objects, or {"events": [...]}


_SUFFIXES = {"": Payload.TELEMETRY, "batch": Payload.BATCH, "json": Payload.JSON}


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    """Where a message came from: its fleet, its vehicle, and the payload its topic names."""

    fleet_id: str
    vehicle_id: str
    payload: Payload

    @property
    def rejections(self) -> str:
        return rejections_topic(self.fleet_id, self.vehicle_id)


def telemetry_topic(fleet_id: str, vehicle_id: str, payload: Payload = Payload.TELEMETRY) -> str:
    base = f"fleet/{fleet_id}/vehicle/{vehicle_id}/telemetry"
    return base if payload is Payload.TELEMETRY else f"{base}/{payload.value}"


def rejections_topic(fleet_id: str, vehicle_id: str) -> str:
    return f"fleet/{fleet_id}/vehicle/{vehicle_id}/rejections"


def shared_subscription(group: str) -> str:
    """The bridge's subscription: replicas in one ``$share`` group split the messages."""
    return f"$share/{group}/{TELEMETRY_FILTER}"


def parse_topic(topic: str) -> DeviceTopic | None:
    """The device topic's parts, or None for a topic outside the layout."""
    parts = topic.split("/")
    if len(parts) not in (5, 6) or parts[0] != "fleet" or parts[2] != "vehicle":
        return None
    if parts[4] != "telemetry":
        return None
    payload = _SUFFIXES.get(parts[5] if len(parts) == 6 else "")
    if payload is None or not parts[1] or not parts[3]:
        return None
    return DeviceTopic(parts[1], parts[3], payload)


def valid_fleet_id(fleet_id: str) -> bool:
    return bool(FLEET_ID_RE.match(fleet_id))


def valid_device_id(vehicle_id: str) -> bool:
    """A vehicle id usable as an MQTT user name in a password file (no ':')."""
    return bool(VEHICLE_ID_RE.match(vehicle_id)) and ":" not in vehicle_id
