"""The recorded input's file: what is written is read back, packs keep their boundaries, and
a damaged file is refused with where it broke."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from fleetpipe.pb.v1 import telemetry_pb2
from fleetpipe_dev.recorded.fileformat import (
    RecordedEvent,
    RecordingError,
    keyed,
    packs_of,
    read_recording,
    write_recording,
)

pytestmark = pytest.mark.unit


def _event(vehicle: str, seq: int) -> bytes:
    return telemetry_pb2.Telemetry(vehicle_id=vehicle, seq=seq).SerializeToString()


EVENTS = [
    RecordedEvent(0, 0, _event("veh-1", 1)),
    RecordedEvent(0, 0, _event("veh-2", 1)),
    RecordedEvent(0, 1, _event("veh-1", 2)),
    RecordedEvent(3, 0, _event("veh-3", 300)),
    RecordedEvent(3, 0, _event("veh-3", 300)),  # a re-sent event: kept as it was
]


def test_a_written_recording_reads_back_event_for_event(tmp_path: Path) -> None:
    path = tmp_path / "r.bin.gz"
    assert write_recording(path, EVENTS) == len(EVENTS)
    assert read_recording(path) == EVENTS


def test_the_same_events_give_the_same_file_bytes(tmp_path: Path) -> None:
    write_recording(tmp_path / "a.gz", EVENTS)
    write_recording(tmp_path / "b.gz", EVENTS)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_packs_keep_the_recorded_records_and_their_order() -> None:
    assert list(packs_of(EVENTS)) == [
        (0, [EVENTS[0].value, EVENTS[1].value]),
        (0, [EVENTS[2].value]),
        (3, [EVENTS[3].value, EVENTS[4].value]),
    ]


def test_per_event_form_is_keyed_by_vehicle() -> None:
    assert [k for k, _ in keyed(EVENTS)] == ["veh-1", "veh-2", "veh-1", "veh-3", "veh-3"]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:-3], id="an event cut short"),
        pytest.param(lambda data: data + b"\x01", id="an entry cut after its partition"),
    ],
)
def test_a_damaged_recording_is_refused(tmp_path: Path, damage: Callable[[bytes], bytes]) -> None:
    path = tmp_path / "r.bin.gz"
    write_recording(path, EVENTS)
    path.write_bytes(gzip.compress(damage(gzip.decompress(path.read_bytes()))))
    with pytest.raises(RecordingError, match=str(path)):
        read_recording(path)


def test_a_file_that_is_not_gzip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.bin.gz"
    path.write_bytes(b"not a recording")
    with pytest.raises(RecordingError, match="not a gzip'd recording"):
        read_recording(path)
