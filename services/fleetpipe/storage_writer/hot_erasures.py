"""Keeping erased subjects' rows that arrive after their erasure out of PostgreSQL (pure).

Rows of a subject may still be in Kafka when its erasure runs, or arrive later (a device's
backlog). The hot store applies the rule the lake's spools apply (see :mod:`.erased`): a row is
left out when its data is from before the erasure, that is when the platform received it before
the erasure started (give or take ``MARGIN_S`` for the clocks of two hosts) or when it is about
a time before it. The subject's new data, received and dated after the erasure, is kept: an
erasure takes what was known of the subject until it ran, it does not silence the vehicle.

The write that applies this holds the audit's lock shared (see :mod:`fleetpipe.erasure.audit`),
so every erasure that could miss its rows is one it sees; an erasure recorded later deletes
what the write committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from fleetpipe.erasure.audit import Erasure
from fleetpipe.erasure.subject import SubjectKind
from fleetpipe.storage_writer.erased import MARGIN_S, erased_rows


@dataclass(frozen=True)
class RowTimes:
    """Which columns of a table say when its data is from: its own time (an event's, a trip's
    start, a score window's start) and, when it has one, when the platform received it."""

    own: str
    received: str = ""


# Per table of a write batch (WriteBatch's fields).
HOT_TABLES: dict[str, RowTimes] = {
    "telemetry": RowTimes("event_time", "ingest_time"),
    "latest": RowTimes("event_time"),
    "alerts": RowTimes("event_time", "ingest_time"),
    "trips": RowTimes("start_time"),
    # A score's window holds every event since its start.
    "scores": RowTimes("window_start"),
    "dead_letters": RowTimes("time"),
}


def _seconds(table: pa.Table, column: str) -> np.ndarray[Any, Any]:
    micros = table.column(column).cast(pa.int64()).to_numpy(zero_copy_only=False)
    return np.asarray(micros, dtype=np.float64) / 1e6


def data_moments(table: pa.Table, times: RowTimes) -> np.ndarray[Any, Any]:
    """Per row, in seconds since the epoch, the moment an erasure must start after for the row
    to be kept (NaN: the row has no time, and is kept only by its receipt)."""
    moments = _seconds(table, times.own)
    if times.received and times.received in table.column_names:
        # fmin: a row without a receipt time (null, NaN here) goes by its own time.
        moments = np.fmin(moments, _seconds(table, times.received) - MARGIN_S)
    return moments


def _keyed_by_vehicle(table: pa.Table, erasures: Sequence[Erasure]) -> pa.Table:
    """A dead letter names its vehicle by its record's key: shown to the filter as vehicle_id."""
    if "record_key" not in table.column_names or "vehicle_id" in table.column_names:
        return table
    if not any(e.subject.kind is SubjectKind.VEHICLE for e in erasures):
        return table
    return table.append_column("vehicle_id", table.column("record_key"))


@dataclass(frozen=True)
class LeftOut:
    table: pa.Table | None
    rows: int


def without_erased(table: pa.Table | None, name: str, erasures: Sequence[Erasure]) -> LeftOut:
    """``table`` (one of ``HOT_TABLES``) without the rows the erasures cover."""
    if table is None or not table.num_rows or not erasures:
        return LeftOut(table, 0)
    probe = _keyed_by_vehicle(table, erasures)
    moments = data_moments(probe, HOT_TABLES[name])
    if np.isnan(moments).all():
        return LeftOut(table, 0)
    # Only erasures after the batch's oldest row can concern it: the audit's old erasures
    # (their rows long gone from the hot store) cost nothing per batch.
    oldest = float(np.nanmin(moments))
    concerned = [e for e in erasures if e.erased_at.timestamp() >= oldest]
    drop = erased_rows(probe, moments, concerned)
    if drop is None or not drop.any():
        return LeftOut(table, 0)
    return LeftOut(table.filter(pa.array(~drop)), int(drop.sum()))
