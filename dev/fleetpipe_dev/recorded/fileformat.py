"""The recording's file: the raw topic's events, their own bytes, in topic order per partition.

A gzip stream of entries, each three varints and the event: the partition, the offset of the
Kafka record (pack) the event came in, the event's length, then its ``Telemetry`` bytes exactly
as the raw topic held them. Events of one record share its offset, so the packs ingest wrote
can be written again with the same boundaries; read in file order, each partition's events are
in topic order. Gzip is written without a name or time stamp, so the same events give the same
file bytes.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from fleetpipe.core.protowire import read_varint, varint
from fleetpipe.pb.v1 import telemetry_pb2


class RecordingError(ValueError):
    """A recording file that cannot be read: where and why."""


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One event of the raw topic: where it was and its bytes."""

    partition: int
    record: int  # the offset of the Kafka record (pack) that held it
    value: bytes  # a serialised fleetpipe.v1.Telemetry


def write_recording(path: Path, events: Iterable[RecordedEvent]) -> int:
    """Write ``events`` (in topic order per partition) to ``path``; returns how many."""
    n = 0
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        for e in events:
            out.write(varint(e.partition) + varint(e.record) + varint(len(e.value)) + e.value)
            n += 1
    return n


def read_recording(path: Path) -> list[RecordedEvent]:
    """Every event of a recording, in file order."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise RecordingError(f"{path}: not a gzip'd recording: {exc}") from exc
    out: list[RecordedEvent] = []
    pos, end = 0, len(data)
    try:
        while pos < end:
            start = pos
            partition, pos = read_varint(data, pos)
            record, pos = read_varint(data, pos)
            size, pos = read_varint(data, pos)
            if pos + size > end:
                raise RecordingError(f"{path}: the event at byte {start} runs past the end")
            out.append(RecordedEvent(partition, record, data[pos : pos + size]))
            pos += size
    except IndexError:
        raise RecordingError(f"{path}: truncated at byte {pos}") from None
    return out


def packs_of(events: Iterable[RecordedEvent]) -> Iterator[tuple[int, list[bytes]]]:
    """(partition, events) per recorded record, in file order: the packs as ingest wrote them."""
    for (partition, _), group in groupby(events, key=lambda e: (e.partition, e.record)):
        yield partition, [e.value for e in group]


def keyed(events: Iterable[RecordedEvent]) -> Iterator[tuple[str, bytes]]:
    """(vehicle id, event) in file order: the events as one record each, keyed by vehicle."""
    for e in events:
        yield telemetry_pb2.Telemetry.FromString(e.value).vehicle_id, e.value
