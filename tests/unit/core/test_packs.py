"""The pack wire form: written by concatenation, read back by scanning, as protobuf parses it."""

from __future__ import annotations

import pytest

from fleetpipe.core.packs import PACK_HEADER, event_field, is_pack, scan, trace_field
from fleetpipe.core.tracing import TRACEPARENT, TRACESTATE
from fleetpipe.pb.v1 import pack_pb2, telemetry_pb2
from fleetpipe_loadtest import synthetic

pytestmark = pytest.mark.unit

PARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _events(n: int) -> list[bytes]:
    return [synthetic.telemetry(v, 1).SerializeToString() for v in range(n)]


def test_a_pack_written_by_concatenation_parses_as_a_telemetry_pack() -> None:
    events = _events(5)
    value = b"".join(event_field(e) for e in events[:2])
    value += trace_field(2, [(TRACEPARENT, PARENT), (TRACESTATE, b"k=v")])
    value += b"".join(event_field(e) for e in events[2:])
    parsed = pack_pb2.TelemetryPack.FromString(value)
    assert [e.SerializeToString() for e in parsed.events] == events
    assert [(t.index, t.traceparent, t.tracestate) for t in parsed.traces] == [
        (2, PARENT.decode(), "k=v")
    ]


def test_scanning_a_pack_gives_each_events_bytes_and_the_trace_of_sampled_ones() -> None:
    events = _events(300)
    pack = pack_pb2.TelemetryPack()
    for e in events:
        pack.events.append(telemetry_pb2.Telemetry.FromString(e))
    pack.traces.add(index=7, traceparent=PARENT.decode())
    value = pack.SerializeToString()
    found = scan(value)
    assert [value[a:b] for a, b in found.spans] == events
    assert found.traces == {7: [(TRACEPARENT, PARENT)]}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(event_field(b"x" * 40)[:-3], id="truncated-event"),
        pytest.param(b"\x0a", id="length-missing"),
        pytest.param(b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", id="endless-varint"),
        pytest.param(b"\x0f\x01", id="unknown-wire-type"),
    ],
)
def test_what_is_not_a_pack_is_refused(value: bytes) -> None:
    with pytest.raises(ValueError):
        scan(value)


def test_the_header_marks_a_pack() -> None:
    assert is_pack([(PACK_HEADER, b"1")])
    assert is_pack([(TRACEPARENT, PARENT), (PACK_HEADER, b"1")])
    assert not is_pack([(TRACEPARENT, PARENT)])
    assert not is_pack(None) and not is_pack([])
