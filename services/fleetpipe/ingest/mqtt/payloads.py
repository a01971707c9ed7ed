"""An MQTT message's payload as a batch for the intake, held to the topic's vehicle and fleet.

The payload's kind comes from the MQTT 5 ``content-type`` property when the device sets one
(``application/json``, ``application/x-ndjson``, or a protobuf type such as
``application/x-protobuf; messageType=fleetpipe.v1.TelemetryBatch``), else from the topic's
suffix (``topics.py``). The broker's ACL lets a device publish only on its own topic, so the
topic says who sent the message: an event naming another vehicle or fleet is rejected (with its
index and reason, and dead-lettered), an event naming none gets the topic's.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from fleetpipe.core.protowire import delimited, tag_byte
from fleetpipe.ingest.jsonevents import BodyError, ParsedBatch, parse_events
from fleetpipe.ingest.mqtt.topics import DeviceTopic, Payload
from fleetpipe.ingest.validation import MALFORMED, Rejection
from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2

_EVENTS_TAG = bytes([tag_byte(ingest_pb2.TelemetryBatch, "events")])


class PayloadError(ValueError):
    """The payload as a whole cannot be read; the message says why."""


def payload_kind(topic: DeviceTopic, content_type: str | None) -> tuple[Payload, bool]:
    """The payload's kind, and whether JSON is one event per line (NDJSON)."""
    if not content_type:
        return topic.payload, False
    media = content_type.split(";")[0].strip().lower()
    if media in ("application/x-ndjson", "application/jsonl"):
        return Payload.JSON, True
    if media == "application/json" or media.endswith("+json"):
        return Payload.JSON, False
    if "telemetrybatch" in content_type.lower():
        return Payload.BATCH, False
    if "protobuf" in media or media == "application/octet-stream":
        return Payload.TELEMETRY if topic.payload is Payload.JSON else topic.payload, False
    raise PayloadError(f"content type {content_type[:80]!r} is neither JSON nor protobuf")


def decode(payload: bytes, topic: DeviceTopic, content_type: str | None = None) -> ParsedBatch:
    """The payload's events as one serialised ``TelemetryBatch``, held to the topic."""
    kind, ndjson = payload_kind(topic, content_type)
    if kind is Payload.JSON:
        try:
            parsed = parse_events(payload, ndjson=ndjson)
        except BodyError as exc:
            raise PayloadError(str(exc)) from None
        batch = ingest_pb2.TelemetryBatch.FromString(parsed.raw)
        return _held_to_topic(batch, topic, parsed)
    try:
        if kind is Payload.TELEMETRY:
            event = telemetry_pb2.Telemetry.FromString(payload)
            if _ours(event, topic):
                # The common case: the device's own bytes, framed as a one-event batch.
                return ParsedBatch(delimited(_EVENTS_TAG, payload), [0], total=1)
            batch = ingest_pb2.TelemetryBatch(events=[event])
        else:
            batch = ingest_pb2.TelemetryBatch.FromString(payload)
            if all(_ours(e, topic) for e in batch.events):
                return ParsedBatch(payload, list(range(len(batch.events))), total=len(batch.events))
    except DecodeError:
        what = "Telemetry" if kind is Payload.TELEMETRY else "TelemetryBatch"
        raise PayloadError(f"the payload is not a protobuf {what}") from None
    return _held_to_topic(batch, topic, ParsedBatch(b"", list(range(len(batch.events)))))


def _ours(event: telemetry_pb2.Telemetry, topic: DeviceTopic) -> bool:
    return event.vehicle_id == topic.vehicle_id and event.fleet_id in ("", topic.fleet_id)


def _held_to_topic(
    batch: ingest_pb2.TelemetryBatch, topic: DeviceTopic, parsed: ParsedBatch
) -> ParsedBatch:
    """Keep the events of the topic's vehicle (naming it, or none); reject the others."""
    kept = ingest_pb2.TelemetryBatch(batch_id=batch.batch_id)
    positions: list[int] = []
    problems = list(parsed.problems)
    payloads = dict(parsed.payloads)
    for position, event in zip(parsed.positions, batch.events, strict=True):
        if not event.vehicle_id:
            event.vehicle_id = topic.vehicle_id
        if event.vehicle_id != topic.vehicle_id:
            problems.append(
                Rejection(
                    position,
                    MALFORMED,
                    "vehicle_id",
                    f"vehicle_id {event.vehicle_id[:64]!r} is not this topic's vehicle "
                    f"{topic.vehicle_id!r}",
                )
            )
            payloads[position] = event.SerializeToString()
            continue
        if event.fleet_id not in ("", topic.fleet_id):
            problems.append(
                Rejection(
                    position,
                    MALFORMED,
                    "fleet_id",
                    f"fleet_id {event.fleet_id[:64]!r} is not this topic's fleet "
                    f"{topic.fleet_id!r}",
                )
            )
            payloads[position] = event.SerializeToString()
            continue
        kept.events.append(event)
        positions.append(position)
    total = parsed.total or len(batch.events)
    return ParsedBatch(kept.SerializeToString(), positions, problems, payloads, total)
