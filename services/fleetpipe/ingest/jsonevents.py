"""Telemetry as JSON, for devices that cannot send protobuf (HTTP and MQTT ingest).

The field names are the protobuf ones (``vehicle_id``) or their JSON spelling (``vehicleId``),
64-bit integers as numbers or strings, as protobuf's JSON mapping defines. A body is a JSON
array of events, one event object, ``{"events": [...]}`` (a ``TelemetryBatch``), or NDJSON: one
event per line. Each event is parsed on its own, so one that does not parse is rejected with
its index and reason while the others go on; the parsed ones become one serialised
``TelemetryBatch`` for :class:`~fleetpipe.ingest.intake.Intake`, whose ack speaks of the batch's
positions and is mapped back to the body's here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from google.protobuf import json_format

from fleetpipe.ingest.validation import MALFORMED, Rejection
from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2


class BodyError(ValueError):
    """The body as a whole is not JSON telemetry; the message says why."""


@dataclass
class ParsedBatch:
    """The events that parsed, as one serialised batch, and those that did not (JSON from HTTP
    or MQTT, protobuf from MQTT)."""

    raw: bytes
    positions: list[int]  # batch index -> index in the body
    problems: list[Rejection] = field(default_factory=list)
    payloads: dict[int, bytes] = field(default_factory=dict)  # body index -> its text, rejected
    total: int = 0

    def ack(self, batch_ack: ingest_pb2.PublishAck) -> ingest_pb2.PublishAck:
        """The batch's ack in the body's positions, with the events that did not parse."""
        out = ingest_pb2.PublishAck(
            batch_id=batch_ack.batch_id, accepted=batch_ack.accepted, late=batch_ack.late
        )
        rejected = [
            (self.positions[r.index], r.code, r.field, r.reason) for r in batch_ack.rejected
        ]
        rejected += [(p.index, p.code, p.field, p.reason) for p in self.problems]
        for index, code, name, reason in sorted(rejected):
            out.rejected.add(index=index, code=code, field=name, reason=reason)
        return out


def _items(body: bytes, *, ndjson: bool) -> Iterator[object]:
    if ndjson:
        for n, line in enumerate(body.splitlines()):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    yield BodyError(f"line {n + 1} is not JSON: {exc.msg}")
        return
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BodyError(f"the body is not JSON: {exc}") from None
    if isinstance(doc, dict) and isinstance(doc.get("events"), list):
        doc = doc["events"]
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise BodyError('expected a JSON array of events, an event, or {"events": [...]}')
    yield from doc


def parse_events(body: bytes, *, ndjson: bool = False, batch_id: int = 0) -> ParsedBatch:
    """Parse a JSON (or NDJSON) body of telemetry events."""
    batch = ingest_pb2.TelemetryBatch(batch_id=batch_id)
    out = ParsedBatch(b"", [])
    for index, item in enumerate(_items(body, ndjson=ndjson)):
        out.total += 1
        problem = item if isinstance(item, BodyError) else _parse_one(item, batch)
        if problem is None:
            out.positions.append(index)
            continue
        # The parser's first line names the field; the rest lists every field there is.
        reason = str(problem).splitlines()[0][:300]
        out.problems.append(Rejection(index, MALFORMED, "", reason))
        out.payloads[index] = json.dumps(item, default=str).encode()
    out.raw = batch.SerializeToString()
    return out


def _parse_one(item: object, batch: ingest_pb2.TelemetryBatch) -> Exception | None:
    if not isinstance(item, dict):
        return BodyError("an event must be a JSON object")
    event = telemetry_pb2.Telemetry()
    try:
        json_format.ParseDict(item, event)
    except json_format.ParseError as exc:
        return exc
    batch.events.append(event)
    return None
