"""The contracts: generated code matches protos/, and v1 only ever grows."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from google.protobuf import descriptor_pb2

from fleetpipe_dev.devtools import protogen

pytestmark = pytest.mark.unit

Mutation = Callable[[descriptor_pb2.FileDescriptorSet], None]


def _field(
    fds: descriptor_pb2.FileDescriptorSet, message: str, name: str
) -> descriptor_pb2.FieldDescriptorProto:
    for f in fds.file:
        for m in f.message_type:
            if m.name == message:
                for fld in m.field:
                    if fld.name == name:
                        return fld
    raise KeyError(f"{message}.{name}")


def _remove(fds: descriptor_pb2.FileDescriptorSet) -> None:
    for f in fds.file:
        for m in f.message_type:
            if m.name == "Telemetry":
                keep = [x for x in m.field if x.name != "seq"]
                del m.field[:]
                m.field.extend(keep)


def _renumber(fds: descriptor_pb2.FileDescriptorSet) -> None:
    _field(fds, "Telemetry", "seq").number = 99


def _retype(fds: descriptor_pb2.FileDescriptorSet) -> None:
    _field(fds, "Alert", "alert_id").type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES


def _relabel(fds: descriptor_pb2.FileDescriptorSet) -> None:
    _field(fds, "Telemetry", "dtc_codes").label = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL


def _drop_enum_value(fds: descriptor_pb2.FileDescriptorSet) -> None:
    for f in fds.file:
        for e in f.enum_type:
            if e.name == "AlertState":
                del e.value[-1]


def _add_field(fds: descriptor_pb2.FileDescriptorSet) -> None:
    for f in fds.file:
        for m in f.message_type:
            if m.name == "Telemetry":
                m.field.add(name="new_sensor", number=500, type=2, label=1)


@pytest.fixture(scope="module")
def current() -> descriptor_pb2.FileDescriptorSet:
    return protogen.current_descriptors()


def test_generated_code_matches_a_fresh_generation() -> None:
    assert protogen.check_drift() == []


def test_current_contracts_are_compatible_with_the_released_descriptors(
    current: descriptor_pb2.FileDescriptorSet,
) -> None:
    released = protogen.load_descriptors(protogen.RELEASED_DESCRIPTORS)
    assert protogen.compatibility_errors(released, current) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(_remove, "Telemetry.seq (field 2) was removed", id="field-removed"),
        pytest.param(_renumber, "Telemetry.seq was renumbered 2 -> 99", id="field-renumbered"),
        pytest.param(_retype, "Alert.alert_id (field 1) changed type", id="field-retyped"),
        pytest.param(
            _relabel, "Telemetry.dtc_codes (field 12) changed type or label", id="relabel"
        ),
        pytest.param(_drop_enum_value, "AlertState.ALERT_STATE_RESOLVED", id="enum-value-removed"),
    ],
)
def test_breaking_changes_are_reported(
    current: descriptor_pb2.FileDescriptorSet, mutate: Mutation, expected: str
) -> None:
    changed = descriptor_pb2.FileDescriptorSet()
    changed.CopyFrom(current)
    mutate(changed)
    errors = protogen.compatibility_errors(current, changed)
    assert any(expected in e for e in errors), errors


def test_an_added_field_is_compatible(current: descriptor_pb2.FileDescriptorSet) -> None:
    changed = descriptor_pb2.FileDescriptorSet()
    changed.CopyFrom(current)
    _add_field(changed)
    assert protogen.compatibility_errors(current, changed) == []
