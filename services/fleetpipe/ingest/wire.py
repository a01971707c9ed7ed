"""Where each event sits inside a serialised ``TelemetryBatch``, and how to stamp it in place.

Ingest forwards each event's bytes as the client sent them, with the fields ingest sets
(``ingest_time_us``, ``late``, a missing ``fleet_id``) appended. Protobuf defines that when a
scalar field appears more than once the last one wins, so appending is setting — and it costs a
slice and a concatenation instead of a parse-modify-serialise round trip per event, the largest
single cost on ingest's hot path. Fields ingest does not know (from newer clients) pass through.
"""

from __future__ import annotations

from fleetpipe.core.protowire import delimited, read_varint, skip_field, tag, tag_byte, varint
from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2

_EVENTS_TAG = tag_byte(ingest_pb2.TelemetryBatch, "events")
_INGEST_TIME_TAG = tag(telemetry_pb2.Telemetry, "ingest_time_us")
_FLEET_TAG = tag(telemetry_pb2.Telemetry, "fleet_id")
LATE_FIELD = tag(telemetry_pb2.Telemetry, "late") + varint(True)


def ingest_time_field(ingest_time_us: int) -> bytes:
    """``Telemetry.ingest_time_us`` as bytes to append to an event."""
    return _INGEST_TIME_TAG + varint(ingest_time_us)


def fleet_field(fleet_id: str) -> bytes:
    """``Telemetry.fleet_id`` as bytes to append to an event."""
    return delimited(_FLEET_TAG, fleet_id.encode())


def event_spans(batch: bytes) -> list[tuple[int, int]] | None:
    """(start, end) of every ``events`` entry of a serialised batch, in order.

    ``None`` when the batch holds something this scanner does not expect (a deprecated group,
    a truncated field): the caller then serialises the parsed events instead. Meant for bytes
    that already parsed as a ``TelemetryBatch``.
    """
    spans: list[tuple[int, int]] = []
    append = spans.append
    pos, end = 0, len(batch)
    try:
        while pos < end:
            key = batch[pos]
            pos += 1
            if key == _EVENTS_TAG:
                # Once per event: the length is read inline, a call costs more than the loop.
                n = batch[pos]
                pos += 1
                if n & 0x80:
                    n &= 0x7F
                    shift = 7
                    while True:
                        b = batch[pos]
                        pos += 1
                        n |= (b & 0x7F) << shift
                        if not b & 0x80:
                            break
                        shift += 7
                append((pos, pos + n))
                pos += n
                continue
            # Any other field (batch_id, unknown ones): skip it by its wire type, which is in
            # the low bits of the tag's first byte.
            if key & 0x80:
                pos = read_varint(batch, pos - 1)[1]
            pos = skip_field(batch, pos, key & 0x07)
    except (IndexError, ValueError):
        return None
    return spans if pos == end else None
