"""Protobuf wire encoding of whole ticks, without building a message per event.

A load generator that builds one ``Telemetry`` message per event spends ~6 µs per event in
Python; at 100K events/s that alone is more than a core. Here every event of a tick is written
by numpy into a structured array whose layout *is* the protobuf encoding of a
``TelemetryBatch.events`` entry (tag, length, then the event's fields), so a batch's bytes are a
slice of that array behind a two-byte header.

The bytes are standard protobuf: fields in field-number order, every scalar written even when it
is zero (proto3 parsers read explicit default values as the defaults; ingest re-serialises each
event canonically anyway). Rows with variable-length extras (diagnostic codes, driving events)
take the slow path through the generated message class. Each layout is cached per combination of
varint widths, perception presence and id length.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from google.protobuf.message import Message

from fleetpipe.core.protowire import tag, varint
from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2
from fleetpipe_loadtest.fleet import Tick

_T_EVENTS = tag(ingest_pb2.TelemetryBatch, "events")
_T_BATCH_ID = tag(ingest_pb2.TelemetryBatch, "batch_id")


# The smallest value of each varint width from 2 bytes up: one search per value gives its width.
_WIDTH_STARTS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)


def _varint_width(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    return np.searchsorted(_WIDTH_STARTS, values, side="right").astype(np.int64) + 1


@dataclass(frozen=True)
class _Layout:
    dtype: np.dtype[np.void]
    template: bytes


@dataclass
class _Message:
    """A message's encoding with every value at a fixed offset: constants filled in, variables
    zeroed, to be written in place by numpy."""

    message: type[Message]
    body: bytearray = field(default_factory=bytearray)
    names: list[str] = field(default_factory=list)
    formats: list[str | tuple[str, int]] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)

    def const(self, name: str, value: bytes) -> None:
        """Field ``name`` with a value fixed for the layout (its encoding, without the tag)."""
        self.body += tag(self.message, name) + value

    def var(
        self,
        name: str,
        column: str,
        fmt: str | tuple[str, int],
        size: int,
        *,
        delimited: bool = False,
    ) -> None:
        """Field ``name`` with a ``size``-byte value per row, written from ``column``."""
        self.body += tag(self.message, name)
        if delimited:
            self.body += varint(size)
        self.names.append(column)
        self.formats.append(fmt)
        self.offsets.append(len(self.body))
        self.body += bytes(size)

    def nested(self, name: str, sub: _Message) -> None:
        """Field ``name``: the sub-message ``sub``, whose length is fixed by its layout."""
        self.body += tag(self.message, name) + varint(len(sub.body))
        self.names += sub.names
        self.formats += sub.formats
        self.offsets += [len(self.body) + o for o in sub.offsets]
        self.body += sub.body


@lru_cache(maxsize=256)
def _layout(id_len: int, fleet: bytes, seq_w: int, rpm_w: int, perception: bool) -> _Layout:
    """The record layout: [events tag, length] + Telemetry fields, with fixed varint widths."""
    pb = telemetry_pb2
    location = _Message(pb.Location)
    location.var("lat", "lat", "<f8", 8)
    location.var("lon", "lon", "<f8", 8)
    location.var("altitude_m", "alt", "<f4", 4)
    location.var("accuracy_m", "acc", "<f4", 4)
    location.var("heading_deg", "hdg", "<f4", 4)
    motion = _Message(pb.Motion)
    motion.var("speed_kmh", "speed", "<f4", 4)
    motion.var("accel_x_ms2", "ax", "<f4", 4)
    motion.var("accel_y_ms2", "ay", "<f4", 4)
    motion.var("accel_z_ms2", "az", "<f4", 4)
    engine = _Message(pb.Engine)
    engine.var("rpm", "rpm", ("u1", rpm_w), rpm_w)
    engine.var("gear", "gear", "u1", 1)
    engine.var("fuel_pct", "fuel", "<f4", 4)
    engine.var("coolant_temp_c", "cool", "<f4", 4)
    engine.var("ignition", "ign", "u1", 1)
    battery = _Message(pb.Battery)
    battery.var("pct", "pct", "<f4", 4)
    battery.var("voltage", "volt", "<f4", 4)
    battery.var("charging", "chg", "u1", 1)
    alarms = _Message(pb.DeviceAlarms)
    alarms.var("sos", "sos", "u1", 1)
    alarms.var("crash", "crash", "u1", 1)
    alarms.const("tamper", varint(0))  # tamper and power_cut: never raised by the simulator
    alarms.const("power_cut", varint(0))

    t = _Message(pb.Telemetry)
    t.var("vehicle_id", "id", f"S{id_len}", id_len, delimited=True)
    t.var("seq", "seq", ("u1", seq_w), seq_w)
    # An 8-byte varint for times between 1987 and 2284.
    t.var("event_time_us", "time", ("u1", 8), 8)
    t.const("fleet_id", varint(len(fleet)) + fleet)
    t.nested("location", location)
    t.nested("motion", motion)
    t.nested("engine", engine)
    t.nested("battery", battery)
    t.var("odometer_km", "odo", "<f8", 8)
    t.nested("alarms", alarms)
    if perception:
        seen = _Message(pb.Perception)
        seen.var("nearest_object_class", "pcls", "u1", 1)
        seen.var("nearest_object_distance_m", "pdist", "<f4", 4)
        seen.var("closing_speed_ms", "pclos", "<f4", 4)
        t.nested("perception", seen)
    header = _T_EVENTS + varint(len(t.body))
    dtype = np.dtype(
        {
            "names": t.names,
            "formats": t.formats,
            "offsets": [o + len(header) for o in t.offsets],
            "itemsize": len(header) + len(t.body),
        }
    )
    return _Layout(dtype, header + bytes(t.body))


def _put_varint(out: npt.NDArray[np.uint8], values: npt.NDArray[np.uint64], width: int) -> None:
    # Every byte of every value in one pass: seven bits each, the continuation bit on all but
    # the last (a few numpy calls per field instead of a few per byte).
    shifts = np.arange(0, 7 * width, 7, dtype=np.uint64)
    groups = (values[:, None] >> shifts) & np.uint64(0x7F)
    groups[:, :-1] |= np.uint64(0x80)
    out[:] = groups


Buffer = bytes | memoryview


@dataclass
class EncodedTick:
    """A tick's events as framed ``TelemetryBatch.events`` records, ready to be batched.

    Each chunk holds the records of one layout, in row order; ``chunk_rows`` and
    ``single_rows`` say which tick row each record is, so :meth:`rows` can cut a range of rows
    out of a tick encoded once.
    """

    chunks: list[tuple[Buffer, int, int]] = field(default_factory=list)  # buffer, size, count
    singles: list[bytes] = field(default_factory=list)  # one framed record each
    chunk_rows: list[npt.NDArray[np.int64]] = field(default_factory=list)  # ascending, per chunk
    single_rows: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(c for _, _, c in self.chunks) + len(self.singles)

    def rows(self, start: int, stop: int) -> EncodedTick:
        """The records of tick rows ``start``..``stop - 1``, as views of these buffers.

        Encoding a whole tick at once and cutting it per send slot and stream costs one
        vectorised pass per tick instead of one per cut: the per-call cost of a pass (a few
        dozen numpy operations) dominated the load driver at small cuts.
        """
        out = EncodedTick()
        for (buf, size, _), rows in zip(self.chunks, self.chunk_rows, strict=True):
            lo, hi = np.searchsorted(rows, (start, stop)).tolist()
            if hi > lo:
                out.chunks.append((memoryview(buf)[lo * size : hi * size], size, hi - lo))
                out.chunk_rows.append(rows[lo:hi])
        for record, row in zip(self.singles, self.single_rows, strict=True):
            if start <= row < stop:
                out.singles.append(record)
                out.single_rows.append(row)
        return out


def encode_tick(tick: Tick, rows: slice | None = None) -> EncodedTick:
    """Encode a tick (or a contiguous slice of its rows)."""
    sl = rows or slice(0, len(tick))
    start = sl.start or 0
    n = len(range(*sl.indices(len(tick))))
    out = EncodedTick()
    if n == 0:
        return out
    fleet = tick.fleet_id.encode()
    seq = tick.seq[sl]
    rpm = np.maximum(tick.rpm[sl], 0).astype(np.uint64)
    times = tick.event_time_us[sl].astype(np.uint64)
    if (times < np.uint64(1 << 49)).any() or (times >= np.uint64(1 << 56)).any():
        raise ValueError("event_time_us outside 1987..2284 cannot use the 8-byte layout")
    if (tick.gear[sl] < 0).any() or (tick.gear[sl] > 127).any():
        raise ValueError("gear must be 0..127 for the one-byte layout")
    id_len = tick.id_bytes.dtype.itemsize
    special = np.zeros(n, dtype=bool)
    for row in tick.extras:
        if start <= row < start + n:
            special[row - start] = True
    key = (
        _varint_width(seq) * 100
        + np.minimum(_varint_width(rpm), 2) * 10
        + tick.perception[sl].astype(np.int64)
    )
    key[special] = -1
    for k in np.unique(key).tolist():
        if k < 0:
            continue
        idx = np.flatnonzero(key == k)
        seq_w, rpm_w, perc = k // 100, (k // 10) % 10, bool(k % 10)
        layout = _layout(id_len, fleet, seq_w, rpm_w, perc)
        buf = bytearray(layout.template * len(idx))
        rec = np.frombuffer(buf, dtype=layout.dtype)
        take = idx + start
        rec["id"] = tick.id_bytes[take]
        _put_varint(rec["seq"], seq[idx], seq_w)
        _put_varint(rec["time"], times[idx], 8)
        rec["lat"] = tick.lat[take]
        rec["lon"] = tick.lon[take]
        rec["alt"] = tick.altitude[take]
        rec["acc"] = tick.accuracy[take]
        rec["hdg"] = tick.heading[take]
        rec["speed"] = tick.speed_kmh[take]
        rec["ax"] = tick.accel_x[take]
        rec["ay"] = tick.accel_y[take]
        rec["az"] = tick.accel_z[take]
        _put_varint(rec["rpm"], rpm[idx], rpm_w)
        rec["gear"] = tick.gear[take]
        rec["fuel"] = tick.fuel[take]
        rec["cool"] = tick.coolant[take]
        rec["ign"] = tick.ignition[take]
        rec["pct"] = tick.battery_pct[take]
        rec["volt"] = tick.battery_v[take]
        rec["chg"] = tick.charging[take]
        rec["odo"] = tick.odometer[take]
        rec["sos"] = tick.sos[take]
        rec["crash"] = tick.crash[take]
        if perc:
            rec["pcls"] = tick.p_class[take]
            rec["pdist"] = tick.p_distance[take]
            rec["pclos"] = tick.p_closing[take]
        # A view, not a copy: nothing writes to the buffer once it is encoded.
        out.chunks.append((memoryview(buf), layout.dtype.itemsize, len(idx)))
        out.chunk_rows.append(take)
    for j in np.flatnonzero(special).tolist():
        event = tick.message(start + j).SerializeToString()
        out.singles.append(_T_EVENTS + varint(len(event)) + event)
        out.single_rows.append(start + j)
    return out


def batch_header(batch_id: int) -> bytes:
    return _T_BATCH_ID + varint(batch_id)


class Batcher:
    """Cuts encoded ticks into batch bodies of ``batch_size`` events (the last may be short).

    Records are kept in the order they were fed, so one vehicle's events stay in tick order.
    A body plus :func:`batch_header` is a serialised ``TelemetryBatch``.
    """

    def __init__(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be ≥ 1")
        self.batch_size = batch_size
        self._parts: list[Buffer] = []
        self._count = 0

    def feed(self, encoded: EncodedTick) -> Iterator[tuple[bytes, int]]:
        """Complete batches (body, events) made with this tick's records."""
        for buf, size, count in encoded.chunks:
            pos = 0
            while pos < count:
                take = min(count - pos, self.batch_size - self._count)
                self._parts.append(buf[pos * size : (pos + take) * size])
                self._count += take
                pos += take
                if self._count == self.batch_size:
                    yield self._cut()
        for record in encoded.singles:
            self._parts.append(record)
            self._count += 1
            if self._count == self.batch_size:
                yield self._cut()

    def flush(self) -> Iterator[tuple[bytes, int]]:
        if self._count:
            yield self._cut()

    def _cut(self) -> tuple[bytes, int]:
        body, count = b"".join(self._parts), self._count
        self._parts, self._count = [], 0
        return body, count
