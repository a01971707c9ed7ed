"""A batch of enriched telemetry, decoded into columns: every field the detector reads, read once.

Two decoders fill a :class:`Batch`, both driven by one table (:data:`FIELDS`): serialized
records go through ptars (protobuf → Arrow in Rust, no Python per event) when the batch is large
enough to repay its fixed cost, decoded messages (and small batches) through the protobuf
runtime. They must agree byte for byte on everything the detector does with a batch, so neither
names a field of its own: a field the rules need is added to the table once.

The per-event loop takes Python lists (a Batch attribute per :attr:`Field.listed`); the rules
take numpy columns (:class:`Columns`, per :attr:`Field.column`). The few events that raise an
alert are decoded again, on their own, by :meth:`Batch.message`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError
from ptars import HandlerPool

from fleetpipe.detection.geo import FenceIndex
from fleetpipe.detection.readings import BOOL_FIELDS, FLOAT_FIELDS, Columns
from fleetpipe.pb.v1 import enriched_pb2

# Batches of at least this many records are decoded by ptars (see BatchDecoder.decode).
COLUMNAR_FROM = 128


@dataclass(frozen=True, slots=True)
class Field:
    """One field of ``EnrichedTelemetry`` the detector reads, and where it goes."""

    path: str  # dotted, from EnrichedTelemetry; ending at a sub-message: whether it is present
    column: str = ""  # its Columns field, for the rules
    listed: str = ""  # its Batch attribute, a Python list for the per-event loop


FIELDS = (
    Field("telemetry.vehicle_id", listed="vehicle_ids"),
    Field("telemetry.seq", listed="seqs"),
    Field("telemetry.event_time_us", listed="times"),
    Field("telemetry.ingest_time_us", listed="ingest_times"),
    Field("telemetry.trip_hint", listed="hints"),
    Field("telemetry.location.lat", column="lat", listed="lats"),
    Field("telemetry.location.lon", column="lon", listed="lons"),
    Field("telemetry.motion.speed_kmh", column="speed", listed="speeds"),
    Field("telemetry.motion.accel_x_ms2", column="accel_x"),
    Field("telemetry.motion.accel_y_ms2", column="accel_y"),
    Field("telemetry.engine", column="has_engine", listed="has_engine"),
    Field("telemetry.engine.rpm", column="rpm"),
    Field("telemetry.engine.gear", column="gear"),
    Field("telemetry.engine.fuel_pct", column="fuel"),
    Field("telemetry.engine.coolant_temp_c", column="coolant"),
    Field("telemetry.engine.ignition", column="ignition", listed="ignitions"),
    Field("telemetry.battery", column="has_battery"),
    Field("telemetry.battery.pct", column="battery"),
    Field("telemetry.battery.charging", column="charging"),
    Field("telemetry.alarms.sos", column="sos"),
    Field("telemetry.alarms.crash", column="crash_alarm"),
    Field("telemetry.alarms.tamper", column="tamper"),
    Field("telemetry.alarms.power_cut", column="power_cut"),
    # A repeated field: its length per event (how many codes are reported).
    Field("telemetry.dtc_codes", column="dtc_count"),
    Field("telemetry.odometer_km", column="odometer"),
    Field("vehicle.last_service_km", column="last_service"),
    Field("telemetry.perception", column="has_perception"),
    Field("telemetry.perception.nearest_object_distance_m", column="object_distance"),
    Field("telemetry.perception.closing_speed_ms", column="closing_speed"),
    Field("zone_limit_kmh", column="zone_limit"),
    Field("vehicle_limit_kmh", column="vehicle_limit"),
    Field("expected_gear", column="expected_gear"),
    Field("vehicle.electric", column="electric"),
    Field("vehicle.fleet_id", listed="fleet_ids"),
    Field("vehicle.driver_id", listed="driver_ids"),
)


def _kinds() -> tuple[dict[str, int], frozenset[str]]:
    """Per path of :data:`FIELDS`, its descriptor's type, and the repeated paths (read as
    their length): checks every path at import."""
    kinds = {}
    repeated = set()
    for f in FIELDS:
        descriptor: Any = enriched_pb2.EnrichedTelemetry.DESCRIPTOR
        field: Any = None
        for name in f.path.split("."):
            field = descriptor.fields_by_name[name]
            descriptor = field.message_type
        kinds[f.path] = field.type
        if field.is_repeated:
            repeated.add(f.path)
    return kinds, frozenset(repeated)


_KINDS, _REPEATED = _kinds()
_PRESENCE = FieldDescriptor.TYPE_MESSAGE
_STRING = FieldDescriptor.TYPE_STRING


class Batch:
    """A batch's events as columns (see the module docstring)."""

    __slots__ = (
        "_messages",
        "_payloads",
        "columns",
        "driver_ids",
        "fleet_ids",
        "has_engine",
        "hints",
        "ignitions",
        "ingest_times",
        "lats",
        "lons",
        "seqs",
        "size",
        "speeds",
        "times",
        "vehicle_ids",
    )
    columns: Columns
    driver_ids: list[str]
    fleet_ids: list[str]
    has_engine: list[bool]
    hints: list[str]
    ignitions: list[bool]
    ingest_times: list[int]
    lats: list[float]
    lons: list[float]
    seqs: list[int]
    size: int
    speeds: list[float]
    times: list[int]
    vehicle_ids: list[str]

    def __init__(
        self,
        payloads: Sequence[bytes] = (),
        messages: Sequence[enriched_pb2.EnrichedTelemetry] = (),
    ) -> None:
        self._payloads = payloads
        self._messages = messages

    def message(self, i: int) -> enriched_pb2.EnrichedTelemetry:
        """Event ``i`` as a message (for the alerts it raises)."""
        if self._messages:
            return self._messages[i]
        return enriched_pb2.EnrichedTelemetry.FromString(self._payloads[i])

    @classmethod
    def decode(cls, payloads: Sequence[bytes], wire: Any, *, fences: FenceIndex) -> Batch:
        """Serialized records, by ptars (``wire``: its handler for ``EnrichedTelemetry``)."""
        payloads = list(payloads)
        rb: pa.RecordBatch = wire.list_to_record_batch(payloads)
        arrays: dict[str, Any] = {}

        def array(path: str) -> Any:
            got = arrays.get(path)
            if got is None:
                parent, _, name = path.rpartition(".")
                got = arrays[path] = array(parent).field(name) if parent else rb.column(name)
            return got

        # An absent sub-message is a null struct whose children hold the defaults, as the
        # protobuf runtime reads them; .field() ignores the struct's own validity.
        values: dict[str, Any] = {}
        for f in FIELDS:
            kind = _KINDS[f.path]
            if f.path in _REPEATED:
                lengths = pc.list_value_length(array(f.path)).fill_null(0)
                values[f.path] = lengths.to_numpy(zero_copy_only=False)
            elif kind == _PRESENCE:
                values[f.path] = array(f.path).is_valid().to_numpy(zero_copy_only=False)
            elif kind == _STRING:
                values[f.path] = array(f.path).to_pylist()
            else:
                values[f.path] = array(f.path).to_numpy(zero_copy_only=False)
        batch = cls(payloads=payloads)
        batch._fill(len(payloads), values, fences)
        return batch

    @classmethod
    def read(cls, events: Sequence[enriched_pb2.EnrichedTelemetry], *, fences: FenceIndex) -> Batch:
        """Decoded messages, by the protobuf runtime."""
        objects: dict[str, list[Any]] = {"": list(events)}

        def at(path: str) -> list[Any]:
            got = objects.get(path)
            if got is None:
                parent, _, name = path.rpartition(".")
                got = objects[path] = list(map(attrgetter(name), at(parent)))
            return got

        values: dict[str, Any] = {}
        for f in FIELDS:
            if f.path in _REPEATED:
                values[f.path] = [len(codes) for codes in at(f.path)]
            elif _KINDS[f.path] == _PRESENCE:
                parent, _, name = f.path.rpartition(".")
                values[f.path] = [m.HasField(name) for m in at(parent)]
            else:
                values[f.path] = at(f.path)
        batch = cls(messages=events)
        batch._fill(len(events), values, fences)
        return batch

    def _fill(self, size: int, values: dict[str, Any], fences: FenceIndex) -> None:
        """Lists and columns from ``values`` (per path: a list or a numpy array)."""
        self.size = size
        for f in FIELDS:
            if f.listed:
                got = values[f.path]
                setattr(self, f.listed, got if isinstance(got, list) else got.tolist())
        by_column = {f.column: values[f.path] for f in FIELDS if f.column}
        self.columns = Columns(
            {name: by_column[name] for name in FLOAT_FIELDS},
            {name: by_column[name] for name in BOOL_FIELDS},
            fleet_ids=self.fleet_ids,
            inside=fences.inside(self.lats, self.lons) if fences else (),
        )


class BatchDecoder:
    """Decodes batches of serialized ``EnrichedTelemetry`` the cheaper way for their size."""

    def __init__(self, fences: FenceIndex) -> None:
        self.fences = fences
        self._wire = HandlerPool([enriched_pb2.DESCRIPTOR]).get_for_message(
            enriched_pb2.EnrichedTelemetry.DESCRIPTOR
        )

    def decode(self, payloads: Sequence[bytes]) -> Batch:
        """A batch of serialized ``EnrichedTelemetry``, decoded into columns.

        A large batch is decoded at once by ptars, whose fixed cost per call (~0.3 ms) a small
        one would not repay: below ``COLUMNAR_FROM`` records the protobuf runtime reads each.
        Raises ValueError when any payload is not a valid message: the caller finds it and
        sets it aside.
        """
        if len(payloads) >= COLUMNAR_FROM:
            return Batch.decode(payloads, self._wire, fences=self.fences)
        parse = enriched_pb2.EnrichedTelemetry.FromString
        try:
            messages = [parse(p) for p in payloads]
        except DecodeError as exc:
            raise ValueError(str(exc) or "undecodable EnrichedTelemetry") from exc
        return self.read(messages)

    def read(self, messages: Sequence[enriched_pb2.EnrichedTelemetry]) -> Batch:
        """Already decoded messages, as a batch."""
        return Batch.read(messages, fences=self.fences)
