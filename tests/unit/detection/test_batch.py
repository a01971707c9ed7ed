"""One field table drives both batch decoders: it covers what the rules and the loop read."""

from __future__ import annotations

import pytest

from fleetpipe.detection.batch import COLUMNAR_FROM, FIELDS, Batch, BatchDecoder
from fleetpipe.detection.geo import FenceIndex
from fleetpipe.detection.readings import BOOL_FIELDS, FLOAT_FIELDS
from fleetpipe_dev.drills import Timeline

pytestmark = pytest.mark.unit


def test_the_table_feeds_every_column_the_rules_read_once() -> None:
    columns = [f.column for f in FIELDS if f.column]
    assert sorted(columns) == sorted([*FLOAT_FIELDS, *BOOL_FIELDS])


def test_the_table_feeds_every_list_the_batch_holds_once() -> None:
    listed = [f.listed for f in FIELDS if f.listed]
    slots = {s for s in Batch.__slots__ if not s.startswith("_")} - {"columns", "size"}
    assert sorted(listed) == sorted(slots)


@pytest.mark.parametrize("size", [1, COLUMNAR_FROM])
def test_both_decoders_read_every_field_alike(size: int) -> None:
    events = Timeline("v-1").emit(size, speed=42.5)
    for e in events[::2]:
        e.telemetry.ClearField("engine")
    for i, e in enumerate(events[::3]):
        e.telemetry.dtc_codes.extend(["P0217", "P0300"][: i % 3])
        e.telemetry.alarms.tamper = True
    decoder = BatchDecoder(FenceIndex([]))
    by_wire = decoder.decode([e.SerializeToString() for e in events])
    by_message = decoder.read(events)
    for f in FIELDS:
        if f.listed:
            assert getattr(by_wire, f.listed) == getattr(by_message, f.listed), f.path
        if f.column:
            wire_column = getattr(by_wire.columns, f.column).tolist()
            assert wire_column == getattr(by_message.columns, f.column).tolist(), f.path
    assert set(by_wire.columns.dtc_count.tolist()) <= {0.0, 1.0, 2.0}
    if size > 6:
        assert by_wire.columns.dtc_count.max() == 2.0 and by_wire.columns.tamper.any()
