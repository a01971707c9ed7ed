"""Where each event sits inside a serialised ``TelemetryBatch``, and how to stamp it in place.

Ingest forwards each event's bytes as the client sent them, with the fields ingest sets
(``ingest_time_us``, ``late``, a missing ``fleet_id``) appended. Protobuf defines that when a
scalar field appears more than once the last one wins, so appending is setting — and it costs a
slice and a concatenation instead of a parse-modify-serialise round trip per event, the largest
single cost on ingest's hot path. Fields ingest does not know (from newer clients) pass through.
"""

from __future__ import annotations

_EVENTS_TAG = 0x12  # TelemetryBatch.events: field 2, length-delimited
LATE_FIELD = b"\x80\x01\x01"  # Telemetry.late (field 16) = true


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def ingest_time_field(ingest_time_us: int) -> bytes:
    """``Telemetry.ingest_time_us`` (field 4, varint) as bytes to append to an event."""
    return b"\x20" + varint(ingest_time_us)


def fleet_field(fleet_id: str) -> bytes:
    """``Telemetry.fleet_id`` (field 5) as bytes to append to an event."""
    data = fleet_id.encode()
    return b"\x2a" + varint(len(data)) + data


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
            tag = batch[pos]
            pos += 1
            if tag == _EVENTS_TAG:
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
            # Any other field (batch_id, unknown ones): skip it by its wire type.
            if tag & 0x80:
                while batch[pos] & 0x80:
                    pos += 1
                pos += 1
            wire_type = tag & 0x07
            if wire_type == 0:
                while batch[pos] & 0x80:
                    pos += 1
                pos += 1
            elif wire_type == 1:
                pos += 8
            elif wire_type == 5:
                pos += 4
            elif wire_type == 2:
                n, shift = 0, 0
                while True:
                    b = batch[pos]
                    pos += 1
                    n |= (b & 0x7F) << shift
                    if not b & 0x80:
                        break
                    shift += 7
                pos += n
            else:
                return None
    except IndexError:
        return None
    return spans if pos == end else None
