"""Records → flat Arrow tables: the rows of the hot store's tables and of the Parquet lake.

Pure: bytes or messages in, Arrow out. Enriched telemetry is decoded a whole batch at a time by
ptars (protobuf → Arrow in Rust); every further step is a vectorized Arrow or numpy operation,
so no Python runs per row. Alerts, trips and driver scores are few: they are read from their
decoded messages.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from ptars import HandlerPool

from fleetpipe.pb.v1 import alert_pb2, enriched_pb2, trip_pb2
from fleetpipe.storage_writer.pgcopy import CopyColumn

US_PER_DAY = 86_400_000_000
MAX_INT64 = (1 << 63) - 1
UTC_US = pa.timestamp("us", tz="UTC")

# The telemetry table's columns, in the table's order, with their Arrow types.
TELEMETRY: tuple[tuple[str, str, pa.DataType], ...] = (
    ("vehicle_id", "text", pa.string()),
    ("seq", "int8", pa.int64()),
    ("event_day", "date", pa.date32()),
    ("event_time", "timestamptz", UTC_US),
    ("ingest_time", "timestamptz", UTC_US),
    ("fleet_id", "text", pa.string()),
    ("vehicle_type", "text", pa.string()),
    ("driver_id", "text", pa.string()),
    ("known", "bool", pa.bool_()),
    ("lat", "float8", pa.float64()),
    ("lon", "float8", pa.float64()),
    ("altitude_m", "float4", pa.float32()),
    ("accuracy_m", "float4", pa.float32()),
    ("heading_deg", "float4", pa.float32()),
    ("speed_kmh", "float4", pa.float32()),
    ("accel_x_ms2", "float4", pa.float32()),
    ("accel_y_ms2", "float4", pa.float32()),
    ("accel_z_ms2", "float4", pa.float32()),
    ("rpm", "int8", pa.int64()),
    ("gear", "int4", pa.int32()),
    ("fuel_pct", "float4", pa.float32()),
    ("coolant_temp_c", "float4", pa.float32()),
    ("ignition", "bool", pa.bool_()),
    ("battery_pct", "float4", pa.float32()),
    ("battery_voltage", "float4", pa.float32()),
    ("charging", "bool", pa.bool_()),
    ("odometer_km", "float8", pa.float64()),
    ("geohash6", "text", pa.string()),
    ("speed_limit_kmh", "float4", pa.float32()),
    ("expected_gear", "int4", pa.int32()),
    ("sos", "bool", pa.bool_()),
    ("crash", "bool", pa.bool_()),
    ("tamper", "bool", pa.bool_()),
    ("power_cut", "bool", pa.bool_()),
    ("object_class", "int2", pa.int16()),
    ("object_distance_m", "float4", pa.float32()),
    ("closing_speed_ms", "float4", pa.float32()),
    ("interventions", "int2", pa.int16()),
    ("disengagements", "int2", pa.int16()),
    ("dtc_codes", "text", pa.string()),
    ("trip_hint", "text", pa.string()),
    ("late", "bool", pa.bool_()),
)
TELEMETRY_COPY = tuple(CopyColumn(name, pg) for name, pg, _ in TELEMETRY)
TELEMETRY_SCHEMA = pa.schema([pa.field(name, t) for name, _, t in TELEMETRY])

LATEST = (
    "vehicle_id",
    "seq",
    "event_time",
    "fleet_id",
    "driver_id",
    "lat",
    "lon",
    "geohash6",
    "speed_kmh",
    "heading_deg",
    "ignition",
    "fuel_pct",
    "battery_pct",
    "odometer_km",
)
LATEST_COPY = tuple(c for c in TELEMETRY_COPY if c.name in LATEST)


class TelemetryDecoder:
    """Serialized ``EnrichedTelemetry`` → rows of the telemetry table, a batch at a time."""

    def __init__(self) -> None:
        pool = HandlerPool([enriched_pb2.DESCRIPTOR])
        self._handler = pool.get_for_message(enriched_pb2.EnrichedTelemetry.DESCRIPTOR)

    def decode(self, payloads: Sequence[bytes]) -> pa.RecordBatch:
        """Raises ValueError when any payload is not a valid message (find it with upb)."""
        batch: pa.RecordBatch = self._handler.list_to_record_batch(list(payloads))
        return batch


@dataclass(frozen=True)
class TelemetryRows:
    table: pa.Table  # TELEMETRY_SCHEMA, valid rows only
    kept: npt.NDArray[np.int64]  # for each row of table, its index in the decoded batch
    invalid: list[tuple[int, str]]  # (index in the batch, why), for the dead-letter topic


def bronze_rows(batch: pa.RecordBatch, rows: TelemetryRows) -> pa.Table:
    """The lake's raw rows: every field of the stored events as they arrived, nested as in the
    message (vehicle model, driver, electric flag, driving-event reasons...), with the event
    time beside them to file them by date and hour."""
    kept = batch if len(rows.kept) == batch.num_rows else batch.take(pa.array(rows.kept))
    return pa.Table.from_batches([kept]).append_column(
        "event_time", rows.table.column("event_time")
    )


def telemetry_rows(batch: pa.RecordBatch) -> TelemetryRows:
    """Flatten a decoded batch into table rows; rows that cannot be stored are set aside."""
    n = batch.num_rows
    tel = batch.column("telemetry")
    # flatten() applies a struct's own nulls (an absent sub-message) to its children.
    t = dict(zip(tel.type.names, tel.flatten(), strict=True))
    loc = _children(t["location"])
    motion = _children(t["motion"])
    engine = _children(t["engine"])
    battery = _children(t["battery"])
    alarms = _children(t["alarms"])
    perception = _children(t["perception"])
    vehicle = _children(batch.column("vehicle"))

    seq_u = _np(t["seq"], np.uint64)
    event_us = _np(t["event_time_us"], np.int64)
    vehicle_id = t["vehicle_id"]
    reasons = np.full(n, "", dtype=object)
    missing_id = _np(pc.equal(pc.fill_null(pc.utf8_length(vehicle_id), 0), 0), np.bool_)
    reasons[missing_id] = "vehicle_id is empty"
    bad_seq = (seq_u == 0) | (seq_u > MAX_INT64)
    reasons[bad_seq & ~missing_id] = "seq must be between 1 and 2^63-1"
    bad_time = event_us <= 0
    reasons[bad_time & ~missing_id & ~bad_seq] = "event_time_us must be positive"
    bad = missing_id | bad_seq | bad_time

    ingest_us = _np(t["ingest_time_us"], np.int64)
    kinds, parents = _driving_event_kinds(t["driving_events"])
    columns: dict[str, Any] = {
        "vehicle_id": vehicle_id,
        "seq": pa.array(seq_u.astype(np.int64)),
        "event_day": pa.array((event_us // US_PER_DAY).astype(np.int32), pa.int32()).cast(
            pa.date32()
        ),
        "event_time": pa.array(event_us, pa.int64()).cast(UTC_US),
        "ingest_time": pa.array(ingest_us, pa.int64(), mask=ingest_us == 0).cast(UTC_US),
        "fleet_id": t["fleet_id"],
        "vehicle_type": _empty_as_null(vehicle["vehicle_type"]),
        "driver_id": _empty_as_null(vehicle["driver_id"]),
        "known": batch.column("known"),
        "lat": loc["lat"],
        "lon": loc["lon"],
        "altitude_m": loc["altitude_m"],
        "accuracy_m": loc["accuracy_m"],
        "heading_deg": loc["heading_deg"],
        "speed_kmh": motion["speed_kmh"],
        "accel_x_ms2": motion["accel_x_ms2"],
        "accel_y_ms2": motion["accel_y_ms2"],
        "accel_z_ms2": motion["accel_z_ms2"],
        "rpm": engine["rpm"],
        "gear": engine["gear"],
        "fuel_pct": engine["fuel_pct"],
        "coolant_temp_c": engine["coolant_temp_c"],
        "ignition": engine["ignition"],
        "battery_pct": battery["pct"],
        "battery_voltage": battery["voltage"],
        "charging": battery["charging"],
        "odometer_km": t["odometer_km"],
        "geohash6": _empty_as_null(batch.column("geohash6")),
        "speed_limit_kmh": batch.column("speed_limit_kmh"),
        "expected_gear": batch.column("expected_gear"),
        "sos": alarms["sos"],
        "crash": alarms["crash"],
        "tamper": alarms["tamper"],
        "power_cut": alarms["power_cut"],
        "object_class": perception["nearest_object_class"],
        "object_distance_m": perception["nearest_object_distance_m"],
        "closing_speed_ms": perception["closing_speed_ms"],
        "interventions": pa.array(_count(kinds == 1, parents, n).astype(np.int16)),
        "disengagements": pa.array(_count(kinds == 2, parents, n).astype(np.int16)),
        "dtc_codes": _empty_as_null(
            pc.binary_join(t["dtc_codes"].cast(pa.list_(pa.string())), ",")
        ),
        "trip_hint": _empty_as_null(t["trip_hint"]),
        "late": t["late"],
    }
    arrays = []
    for name, _pg, typ in TELEMETRY:
        array = columns[name]
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if array.type != typ:
            array = array.cast(typ)
        if pa.types.is_string(typ):
            array = without_nul(array)
        if name not in _NULLABLE and array.null_count:
            # An absent sub-message (no location, no alarms…) reads as its proto3 defaults.
            array = array.fill_null(_ZERO.get(typ.id, False))
        arrays.append(array)
    table = pa.Table.from_arrays(arrays, schema=TELEMETRY_SCHEMA)
    invalid = [(int(i), str(reasons[i])) for i in np.flatnonzero(bad)]
    kept = np.flatnonzero(~bad)
    if invalid:
        table = table.filter(pa.array(~bad))
    return TelemetryRows(table, kept.astype(np.int64), invalid)


_NULLABLE = frozenset(
    {
        "ingest_time",
        "vehicle_type",
        "driver_id",
        "geohash6",
        "object_class",
        "object_distance_m",
        "closing_speed_ms",
        "dtc_codes",
        "trip_hint",
    }
)
_ZERO: dict[int, Any] = {
    pa.float64().id: 0.0,
    pa.float32().id: 0.0,
    pa.int64().id: 0,
    pa.int32().id: 0,
    pa.int16().id: 0,
}


def without_nul(array: pa.Array) -> pa.Array:
    """PostgreSQL text cannot hold NUL, which a protobuf string may: drop it rather than let
    one record fail its batch forever."""
    if not pc.any(pc.match_substring(array, "\x00")).as_py():
        return array
    return pc.replace_substring(array, "\x00", "")


def _strings_without_nul(table: pa.Table) -> pa.Table:
    for i, f in enumerate(table.schema):
        if pa.types.is_string(f.type):
            table = table.set_column(i, f, without_nul(table.column(i).combine_chunks()))
    return table


def _children(struct: pa.Array) -> dict[str, pa.Array]:
    return dict(zip(struct.type.names, struct.flatten(), strict=True))


def _np(array: pa.Array, dtype: Any) -> npt.NDArray[Any]:
    if array.null_count:
        array = array.fill_null(0)
    out: npt.NDArray[Any] = array.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    return out


def _empty_as_null(array: pa.Array) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    empty = pc.equal(pc.utf8_length(array), 0)
    if not pc.any(empty).as_py():
        return array
    return pc.if_else(empty, pa.scalar(None, pa.string()), array)


def _driving_event_kinds(
    events: pa.Array,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
    flat = pc.list_flatten(events)
    if len(flat) == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int64)
    kinds = _np(flat.field("kind"), np.int32)
    parents = _np(pc.list_parent_indices(events), np.int64)
    return kinds, parents


def _count(
    mask: npt.NDArray[np.bool_], parents: npt.NDArray[np.int64], n: int
) -> npt.NDArray[np.int64]:
    if not len(parents):
        return np.zeros(n, np.int64)
    return np.bincount(parents[mask], minlength=n).astype(np.int64)


def latest_rows(table: pa.Table) -> pa.Table:
    """The last row of each vehicle in ``table`` (records of a vehicle arrive in order)."""
    if table.num_rows == 0:
        return table.select(list(LATEST))
    codes = _np(pc.dictionary_encode(table.column("vehicle_id")).combine_chunks().indices, np.int64)
    reversed_codes = codes[::-1]
    _, first_in_reversed = np.unique(reversed_codes, return_index=True)
    last = len(codes) - 1 - first_in_reversed
    return table.select(list(LATEST)).take(pa.array(np.sort(last)))


# -- alerts, trips, scores ------------------------------------------------------------------

_SEVERITY = {
    alert_pb2.SEVERITY_INFO: "info",
    alert_pb2.SEVERITY_WARNING: "warning",
    alert_pb2.SEVERITY_CRITICAL: "critical",
}
_ALERT_STATE = {
    alert_pb2.ALERT_STATE_OPEN: ("OPEN", 1),
    alert_pb2.ALERT_STATE_UPDATE: ("UPDATE", 2),
    alert_pb2.ALERT_STATE_RESOLVED: ("RESOLVED", 3),
}
_TRIP_STATE = {trip_pb2.TRIP_STATE_STARTED: ("STARTED", 1), trip_pb2.TRIP_STATE_ENDED: ("ENDED", 2)}


def _ts(us: int) -> int | None:
    return us if us > 0 else None


ALERT_SCHEMA = pa.schema(
    [
        ("alert_id", pa.string()),
        ("vehicle_id", pa.string()),
        ("fleet_id", pa.string()),
        ("driver_id", pa.string()),
        ("rule", pa.string()),
        ("severity", pa.string()),
        ("state", pa.string()),
        ("state_rank", pa.int16()),
        ("episode_start", UTC_US),
        ("episode_end", UTC_US),
        ("event_time", UTC_US),
        ("ingest_time", UTC_US),
        ("detected_time", UTC_US),
        ("seq", pa.int64()),
        ("lat", pa.float64()),
        ("lon", pa.float64()),
        ("geohash6", pa.string()),
        ("message", pa.string()),
        ("trigger_values", pa.string()),
    ]
)
TRIP_SCHEMA = pa.schema(
    [
        ("trip_id", pa.string()),
        ("vehicle_id", pa.string()),
        ("fleet_id", pa.string()),
        ("driver_id", pa.string()),
        ("state", pa.string()),
        ("state_rank", pa.int16()),
        ("start_time", UTC_US),
        ("end_time", UTC_US),
        ("start_lat", pa.float64()),
        ("start_lon", pa.float64()),
        ("end_lat", pa.float64()),
        ("end_lon", pa.float64()),
        ("distance_km", pa.float64()),
        ("duration_s", pa.float64()),
        ("idle_s", pa.float64()),
        ("max_speed_kmh", pa.float32()),
        ("avg_speed_kmh", pa.float32()),
        ("harsh_brakes", pa.int32()),
        ("harsh_accels", pa.int32()),
        ("speeding_s", pa.float64()),
        ("start_seq", pa.int64()),
        ("end_seq", pa.int64()),
    ]
)
SCORE_SCHEMA = pa.schema(
    [
        ("driver_id", pa.string()),
        ("vehicle_id", pa.string()),
        ("window_end", UTC_US),
        ("window_start", UTC_US),
        ("fleet_id", pa.string()),
        ("score", pa.float64()),
        ("distance_km", pa.float64()),
        ("driving_s", pa.float64()),
        ("speeding_s", pa.float64()),
        ("harsh_brakes", pa.int32()),
        ("harsh_accels", pa.int32()),
        ("idle_s", pa.float64()),
        ("computed_time", UTC_US),
    ]
)


def alert_problem(a: alert_pb2.Alert) -> str:
    """Why an alert cannot be stored, or "" when it can."""
    if not a.alert_id:
        return "alert_id is empty"
    if not a.vehicle_id:
        return "vehicle_id is empty"
    if a.state not in _ALERT_STATE:
        return f"state {a.state} is not OPEN, UPDATE or RESOLVED"
    if a.episode_start_us <= 0:
        return "episode_start_us must be positive"
    return ""


def alert_table(alerts: Sequence[alert_pb2.Alert]) -> pa.Table:
    rows = []
    for a in alerts:
        state, rank = _ALERT_STATE[a.state]
        has_loc = a.HasField("location")
        rows.append(
            {
                "alert_id": a.alert_id,
                "vehicle_id": a.vehicle_id,
                "fleet_id": a.fleet_id,
                "driver_id": a.driver_id or None,
                "rule": a.rule,
                "severity": _SEVERITY.get(a.severity, "unspecified"),
                "state": state,
                "state_rank": rank,
                "episode_start": a.episode_start_us,
                "episode_end": _ts(a.episode_end_us),
                "event_time": a.event_time_us or a.episode_start_us,
                "ingest_time": _ts(a.ingest_time_us),
                "detected_time": a.detected_time_us or a.event_time_us or a.episode_start_us,
                "seq": min(a.seq, MAX_INT64),
                "lat": a.location.lat if has_loc else None,
                "lon": a.location.lon if has_loc else None,
                "geohash6": a.geohash6 or None,
                "message": a.message or None,
                "trigger_values": _json_values(a.values),
            }
        )
    return _strings_without_nul(pa.Table.from_pylist(rows, schema=ALERT_SCHEMA))


def _json_values(values: Mapping[str, float]) -> str:
    """The alert's values as JSON; a non-finite one (an infinite time to collision) is null,
    since JSON, and PostgreSQL's jsonb, have no Infinity or NaN."""
    return json.dumps(
        {k: v if math.isfinite(v) else None for k, v in values.items()}, sort_keys=True
    )


def trip_problem(t: trip_pb2.Trip) -> str:
    if not t.trip_id:
        return "trip_id is empty"
    if not t.vehicle_id:
        return "vehicle_id is empty"
    if t.state not in _TRIP_STATE:
        return f"state {t.state} is not STARTED or ENDED"
    if t.start_time_us <= 0:
        return "start_time_us must be positive"
    return ""


def trip_table(trips: Sequence[trip_pb2.Trip]) -> pa.Table:
    rows = []
    for t in trips:
        state, rank = _TRIP_STATE[t.state]
        has_end = t.HasField("end_location")
        rows.append(
            {
                "trip_id": t.trip_id,
                "vehicle_id": t.vehicle_id,
                "fleet_id": t.fleet_id,
                "driver_id": t.driver_id or None,
                "state": state,
                "state_rank": rank,
                "start_time": t.start_time_us,
                "end_time": _ts(t.end_time_us),
                "start_lat": t.start_location.lat if t.HasField("start_location") else None,
                "start_lon": t.start_location.lon if t.HasField("start_location") else None,
                "end_lat": t.end_location.lat if has_end else None,
                "end_lon": t.end_location.lon if has_end else None,
                "distance_km": t.distance_km,
                "duration_s": t.duration_s,
                "idle_s": t.idle_s,
                "max_speed_kmh": t.max_speed_kmh,
                "avg_speed_kmh": t.avg_speed_kmh,
                "harsh_brakes": t.harsh_brakes,
                "harsh_accels": t.harsh_accels,
                "speeding_s": t.speeding_s,
                "start_seq": min(t.start_seq, MAX_INT64),
                "end_seq": min(t.end_seq, MAX_INT64) or None,
            }
        )
    return _strings_without_nul(pa.Table.from_pylist(rows, schema=TRIP_SCHEMA))


def score_problem(s: trip_pb2.DriverScore) -> str:
    if not s.driver_id:
        return "driver_id is empty"
    if s.window_end_us <= 0:
        return "window_end_us must be positive"
    return ""


def score_table(scores: Sequence[trip_pb2.DriverScore]) -> pa.Table:
    rows = [
        {
            "driver_id": s.driver_id,
            "vehicle_id": s.vehicle_id,
            "window_end": s.window_end_us,
            "window_start": s.window_start_us or s.window_end_us,
            "fleet_id": s.fleet_id,
            "score": s.score,
            "distance_km": s.distance_km,
            "driving_s": s.driving_s,
            "speeding_s": s.speeding_s,
            "harsh_brakes": s.harsh_brakes,
            "harsh_accels": s.harsh_accels,
            "idle_s": s.idle_s,
            "computed_time": s.computed_time_us or s.window_end_us,
        }
        for s in scores
    ]
    return _strings_without_nul(pa.Table.from_pylist(rows, schema=SCORE_SCHEMA))
