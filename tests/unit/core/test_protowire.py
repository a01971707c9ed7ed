"""Hand-written wire encoding agrees with the protobuf runtime, tags come from the descriptors."""

from __future__ import annotations

import struct

import pytest
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from fleetpipe.core.protowire import (
    I32,
    I64,
    LEN,
    VARINT,
    delimited,
    read_varint,
    skip_field,
    tag,
    tag_byte,
    tag_value,
    varint,
)
from fleetpipe.pb.v1 import enriched_pb2, ingest_pb2, state_pb2, telemetry_pb2

pytestmark = pytest.mark.unit

VALUES = [0, 1, 127, 128, 300, 16383, 16384, 2**49, 2**63, 2**64 - 1]


@pytest.mark.parametrize("value", VALUES)
def test_varint_is_what_protobuf_writes(value: int) -> None:
    batch = ingest_pb2.TelemetryBatch(batch_id=value).SerializeToString()
    assert batch == (tag(ingest_pb2.TelemetryBatch, "batch_id") + varint(value) if value else b"")


@pytest.mark.parametrize("value", VALUES)
def test_read_varint_reads_back_what_varint_wrote(value: int) -> None:
    data = b"\xff" + varint(value) + b"tail"
    assert read_varint(data, 1) == (value, len(data) - 4)


def test_a_truncated_varint_cannot_be_read() -> None:
    with pytest.raises(IndexError):
        read_varint(varint(300)[:1], 0)


@pytest.mark.parametrize(
    ("message", "name", "expected"),
    [
        pytest.param(ingest_pb2.TelemetryBatch, "batch_id", (1 << 3) | VARINT, id="uint64"),
        pytest.param(ingest_pb2.TelemetryBatch, "events", (2 << 3) | LEN, id="repeated-message"),
        pytest.param(enriched_pb2.EnrichedTelemetry, "telemetry", (1 << 3) | LEN, id="message"),
        pytest.param(telemetry_pb2.Telemetry, "dtc_codes", (12 << 3) | LEN, id="repeated-string"),
        pytest.param(telemetry_pb2.Telemetry, "late", (16 << 3) | VARINT, id="bool-field-16"),
        pytest.param(state_pb2.VehicleState, "lat", (8 << 3) | I64, id="double"),
        pytest.param(state_pb2.VehicleState, "speed_kmh", (10 << 3) | I32, id="float"),
        pytest.param(state_pb2.VehicleState, "input_partition", (5 << 3) | I32, id="sfixed32"),
        pytest.param(state_pb2.EpisodeState, "phase", (2 << 3) | VARINT, id="enum"),
    ],
)
def test_tags_follow_the_descriptor(message: type[Message], name: str, expected: int) -> None:
    assert tag_value(message, name) == expected
    descriptor = message.DESCRIPTOR
    assert isinstance(descriptor, Descriptor)  # upb's C descriptor passes as the Python one
    assert tag_value(descriptor, name) == expected
    assert tag(message, name) == varint(expected)


@pytest.mark.parametrize(
    ("field", "value", "encoded"),
    [
        pytest.param("ingest_time_us", 1_700_000_000_000_000, varint(1_700_000_000_000_000),
                     id="varint"),
        pytest.param("odometer_km", 12345.5, struct.pack("<d", 12345.5), id="fixed64"),
        pytest.param("late", True, b"\x01", id="two-byte-tag"),
    ],
)  # fmt: skip
def test_a_field_written_by_hand_is_what_protobuf_writes(
    field: str, value: object, encoded: bytes
) -> None:
    one = telemetry_pb2.Telemetry()
    setattr(one, field, value)
    written = one.SerializeToString()
    assert written == tag(telemetry_pb2.Telemetry, field) + encoded


@pytest.mark.parametrize("size", [0, 5, 127, 128, 70_000])
def test_delimited_is_what_protobuf_writes(size: int) -> None:
    text = "x" * size
    expected = telemetry_pb2.Telemetry(vehicle_id=text).SerializeToString()
    assert delimited(tag(telemetry_pb2.Telemetry, "vehicle_id"), text.encode()) == (
        expected if size else tag(telemetry_pb2.Telemetry, "vehicle_id") + b"\x00"
    )


def test_skipping_each_field_of_a_message_lands_on_its_end() -> None:
    t = telemetry_pb2.Telemetry(
        vehicle_id="v-1",
        seq=300,
        odometer_km=1.5,
        engine=telemetry_pb2.Engine(fuel_pct=50.0),
        dtc_codes=["P0217", "P0300"],
    )
    data = t.SerializeToString()
    pos, seen = 0, []
    while pos < len(data):
        key, pos = read_varint(data, pos)
        seen.append(key >> 3)
        pos = skip_field(data, pos, key & 0x07)
    assert pos == len(data)
    assert seen == [1, 2, 8, 11, 12, 12]


def test_groups_are_not_skipped() -> None:
    with pytest.raises(ValueError, match="wire type 3"):
        skip_field(b"\x0c", 0, 3)


def test_a_tag_that_takes_two_bytes_is_refused_where_one_byte_is_needed() -> None:
    assert tag_byte(telemetry_pb2.Telemetry, "alarms") == (13 << 3) | LEN
    with pytest.raises(ValueError, match="two bytes"):
        tag_byte(telemetry_pb2.Telemetry, "late")


def test_an_unknown_field_has_no_tag() -> None:
    with pytest.raises(ValueError, match="no field 'nope'"):
        tag_value(telemetry_pb2.Telemetry, "nope")
