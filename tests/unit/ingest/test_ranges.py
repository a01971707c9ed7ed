"""The range table: it covers the contract, the docs are generated from it, ingest applies it."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, cast

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetpipe.ingest.ranges import BOUNDS, CHECKED, DROPPED, markdown_table, value_at
from fleetpipe.ingest.validation import (
    VehicleIdCheck,
    Verdict,
    _within,
    batch_ranges,
    validate_batch,
    without_dropped,
)
from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2

pytestmark = pytest.mark.unit

README = Path(__file__).parents[3] / "README.md"
NOW = 1_800_000_000_000_000
MINUTE = 60_000_000
DAY = 1440 * MINUTE
_NUMERIC = {
    FieldDescriptor.TYPE_DOUBLE,
    FieldDescriptor.TYPE_FLOAT,
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
    # proto3 enums are open: any number parses, so they need a range like numbers do.
    FieldDescriptor.TYPE_ENUM,
}


def _described(descriptor: object) -> Descriptor:
    # The upb runtime's descriptors are typed apart from the pure-Python ones they mirror.
    assert descriptor is not None
    return cast(Descriptor, descriptor)


def _numeric_paths(descriptor: Descriptor, prefix: str = "") -> list[str]:
    paths = []
    for f in descriptor.fields:
        if f.type == FieldDescriptor.TYPE_MESSAGE and not _repeated(f):
            paths += _numeric_paths(_described(f.message_type), f"{prefix}{f.name}.")
        elif f.type in _NUMERIC:
            paths.append(prefix + f.name)
    return paths


def _repeated(f: FieldDescriptor) -> bool:
    return bool(f.is_repeated)


def _event(**fields: float) -> telemetry_pb2.Telemetry:
    e = telemetry_pb2.Telemetry(
        vehicle_id="v-1",
        fleet_id="fleet-a",
        seq=1,
        event_time_us=NOW - 1_000_000,
        location=telemetry_pb2.Location(lat=52.37, lon=4.89),
        perception=telemetry_pb2.Perception(nearest_object_distance_m=20.0),
    )
    for path, value in fields.items():
        *parents, name = path.split(".")
        target = e
        for p in parents:
            target = getattr(target, p)
        setattr(target, name, value)
    return e


def _check(
    *events: telemetry_pb2.Telemetry, now_us: int = NOW, in_range: list[bool] | None = None
) -> Verdict:
    return validate_batch(
        events,
        fleet_id="fleet-a",
        now_us=now_us,
        max_future_us=5 * MINUTE,
        late_after_us=5 * MINUTE,
        max_lateness_us=7 * DAY,
        ids=VehicleIdCheck(),
        in_range=in_range,
    )


def test_every_numeric_field_of_telemetry_has_a_declared_range() -> None:
    declared = [b.path for b in BOUNDS]
    assert sorted(declared) == sorted(
        _numeric_paths(_described(telemetry_pb2.Telemetry.DESCRIPTOR))
    )
    assert len(set(declared)) == len(declared)


def test_every_range_holds_zero_the_value_of_an_absent_field() -> None:
    assert [b.path for b in CHECKED if not b.low <= 0 <= b.high] == []


def test_the_readme_table_is_generated_from_the_ranges() -> None:
    found = re.search(
        r"<!-- ranges:begin[^>]*-->\n(.*?)<!-- ranges:end -->", README.read_text(), re.S
    )
    assert found is not None, "README.md lost its ranges markers"
    assert found.group(1) == markdown_table(), (
        "regenerate the README table: ranges.markdown_table()"
    )


def _outside(b_path: str, high: float, integer: bool) -> list[float]:
    if integer:
        return [high + 1]
    return [high * 1.5 + 1, math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("bound", CHECKED, ids=[b.path for b in CHECKED])
def test_a_value_outside_its_range_is_rejected_or_dropped_by_name(bound: object) -> None:
    from fleetpipe.ingest.ranges import Bound

    assert isinstance(bound, Bound)
    integer = bound.path in ("engine.rpm", "engine.gear", "perception.nearest_object_class")
    for value in _outside(bound.path, bound.high, integer):
        verdict = _check(_event(**{bound.path: value}))
        if bound.policy == "reject":
            assert [(r.field, r.code) for r in verdict.rejected] == [
                (bound.path, ingest_pb2.REJECT_CODE_OUT_OF_RANGE)
            ], value
            assert bound.path in verdict.rejected[0].reason
        else:
            assert verdict.accepted == [0]
            assert verdict.dropped == {0: (bound.drop_path,)}, value


def test_a_dropped_field_is_removed_and_listed_in_the_event() -> None:
    e = _event(**{"battery.voltage": math.nan, "perception.closing_speed_ms": math.inf})
    e.battery.pct = 50.0
    verdict = _check(e)
    without_dropped(e, verdict.dropped[0])
    assert list(e.dropped_fields) == ["battery.voltage", "perception"]
    assert not e.HasField("perception")
    assert (e.battery.voltage, e.battery.pct) == (0.0, 50.0)


@pytest.mark.parametrize(
    ("path", "value", "rejected"),
    [
        pytest.param("engine.gear", -2, True, id="gear-below-reverse"),
        pytest.param("engine.gear", 21, True, id="gear-above-twenty"),
        pytest.param("perception.nearest_object_class", 99, True, id="object-class-undeclared"),
        pytest.param("perception.nearest_object_class", -1, True, id="object-class-negative"),
    ],
)
def test_an_enumerated_value_outside_its_declared_set_is_caught_by_name(
    path: str, value: int, rejected: bool
) -> None:
    # proto3 parses any number into an enum field: the wire gives no such guarantee.
    wire = _event(**{path: value}).SerializeToString()
    verdict = _check(telemetry_pb2.Telemetry.FromString(wire))
    assert rejected
    assert [(r.field, r.code) for r in verdict.rejected] == [
        (path, ingest_pb2.REJECT_CODE_OUT_OF_RANGE)
    ]
    assert f"{path} {value} " in verdict.rejected[0].reason
    assert (verdict.accepted, verdict.dropped) == ([], {})
    assert (
        batch_ranges().within(
            ingest_pb2.TelemetryBatch(
                events=[telemetry_pb2.Telemetry.FromString(wire)] * 300
            ).SerializeToString()
        )
        == [False] * 300
    )


def test_an_undeclared_object_class_is_said_with_its_value_and_the_declared_range() -> None:
    e = _event(**{"perception.nearest_object_class": 7})
    [rejection] = _check(e).rejected
    assert rejection.reason == (
        "perception.nearest_object_class 7 is not a declared ObjectClass (0..4)"
    )


def test_every_declared_object_class_passes_with_its_perception() -> None:
    for number in telemetry_pb2.ObjectClass.values():
        e = _event(**{"perception.nearest_object_class": number})
        verdict = _check(e)
        assert (verdict.accepted, verdict.dropped) == ([0], {}), number


@pytest.mark.parametrize(
    ("event_time_us", "why"),
    [
        pytest.param(1, "later than the maximum lateness", id="clock-in-1970"),
        pytest.param(NOW - 8 * DAY, "later than the maximum lateness", id="eight-days-late"),
        pytest.param(NOW + 6 * MINUTE, "too far in the future", id="six-minutes-ahead"),
    ],
)
def test_an_event_outside_the_event_time_window_is_rejected(event_time_us: int, why: str) -> None:
    verdict = _check(_event(event_time_us=event_time_us))
    assert [r.field for r in verdict.rejected] == ["event_time_us"]
    assert why in verdict.rejected[0].reason


def test_an_event_within_the_lateness_bound_is_accepted_and_flagged_late() -> None:
    verdict = _check(_event(event_time_us=NOW - 6 * DAY))
    assert (verdict.accepted, verdict.late) == ([0], [0])


# --- properties over arbitrary messages -----------------------------------------------------

_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.floats(min_value=-1000, max_value=1000, width=32),
    st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf]),
)
_doubles = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-200, 200))


def _sub(message: type, **fields: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.one_of(st.none(), st.builds(message, **fields))


def _assemble(*parts: Any) -> telemetry_pb2.Telemetry:
    vid, seq, t, fleet, loc, motion, engine, battery, odo, perception = parts
    e = telemetry_pb2.Telemetry(vehicle_id=vid, seq=seq, event_time_us=t, fleet_id=fleet)
    e.odometer_km = odo
    for name, sub in (
        ("location", loc),
        ("motion", motion),
        ("engine", engine),
        ("battery", battery),
        ("perception", perception),
    ):
        if sub is not None:
            getattr(e, name).CopyFrom(sub)
    return e


_telemetry = st.builds(
    _assemble,
    st.one_of(st.just("v-1"), st.text(max_size=70)),
    st.integers(0, 2**64 - 1),
    st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(NOW - 9 * DAY, NOW + 10 * MINUTE)),
    st.sampled_from(["fleet-a", ""]),
    _sub(
        telemetry_pb2.Location,
        lat=_doubles,
        lon=_doubles,
        altitude_m=_floats,
        accuracy_m=_floats,
        heading_deg=_floats,
    ),
    _sub(
        telemetry_pb2.Motion,
        speed_kmh=_floats,
        accel_x_ms2=_floats,
        accel_y_ms2=_floats,
        accel_z_ms2=_floats,
    ),
    _sub(
        telemetry_pb2.Engine,
        rpm=st.integers(0, 2**32 - 1),
        gear=st.integers(-(2**31), 2**31 - 1),
        fuel_pct=_floats,
        coolant_temp_c=_floats,
    ),
    _sub(telemetry_pb2.Battery, pct=_floats, voltage=_floats),
    _doubles,
    _sub(telemetry_pb2.Perception, nearest_object_distance_m=_floats, closing_speed_ms=_floats),
)

_KNOWN_FIELDS = {b.path for b in BOUNDS} | {"vehicle_id", "location"}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_telemetry, max_size=8))
def test_ingest_validation_never_crashes_nor_accepts_a_non_finite_value(
    events: list[telemetry_pb2.Telemetry],
) -> None:
    verdict = _check(*events)
    rejected = {r.index for r in verdict.rejected}
    assert sorted([*verdict.accepted, *rejected]) == list(range(len(events)))
    for r in verdict.rejected:
        assert r.field in _KNOWN_FIELDS and r.field in r.reason
    for i in verdict.accepted:
        e = events[i]
        without_dropped(e, verdict.dropped.get(i, ()))
        for b in CHECKED:
            value = value_at(e, b.path)
            assert math.isfinite(value) and b.low <= value <= b.high, (b.path, value)
        assert NOW - 7 * DAY <= e.event_time_us <= NOW + 5 * MINUTE


@settings(max_examples=200, deadline=None)
@given(_telemetry)
def test_every_dropped_field_is_one_the_table_lets_drop(e: telemetry_pb2.Telemetry) -> None:
    verdict = _check(e)
    allowed = {b.drop_path for b in DROPPED}
    assert set(verdict.dropped.get(0, ())) <= allowed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_telemetry, min_size=1, max_size=12))
def test_the_columnar_check_of_a_batch_agrees_with_the_per_event_one(
    events: list[telemetry_pb2.Telemetry],
) -> None:
    raw = ingest_pb2.TelemetryBatch(events=events).SerializeToString()
    columnar = batch_ranges().within(raw)
    assert columnar is not None
    parsed = ingest_pb2.TelemetryBatch.FromString(raw).events
    per_event = _check(*parsed)
    assert _check(*parsed, in_range=columnar) == per_event
    assert columnar == [_within(e) for e in parsed]
