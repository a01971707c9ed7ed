"""The pack wire form: written by concatenation, read back by scanning, as protobuf parses it."""

from __future__ import annotations

import pytest

from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.core.metrics import Metrics
from fleetpipe.core.packs import (
    PACK_HEADER,
    PackLimits,
    event_field,
    is_pack,
    scan,
    send_packed,
    trace_field,
)
from fleetpipe.core.placement import Placement
from fleetpipe.core.records import Output
from fleetpipe.core.tracing import TRACEPARENT, TRACESTATE
from fleetpipe.pb.v1 import pack_pb2, telemetry_pb2
from fleetpipe_loadtest import synthetic
from support.fakes import RecordingProducer

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


def test_a_stage_sends_its_batch_as_packs_one_per_partition_with_the_sampled_traces() -> None:
    groups = KeyGroups()
    producer = RecordingProducer()
    out = Output(
        producer,
        service="test",
        deadletter_topic="dl",
        metrics=Metrics("test"),
        placement=Placement(groups, lambda _topic, _timeout: 4, refresh_s=30),
    )
    events = _events(40)
    items: list[tuple[bytes | str | None, bytes | None]] = [
        (f"veh-{i % 10}", e) for i, e in enumerate(events)
    ]
    send_packed(out, "enriched", items, PackLimits(15, 1 << 20, 0.0), {3: [(TRACEPARENT, PARENT)]})
    sent = producer.sent
    got: dict[int, list[bytes]] = {}
    for record in sent:
        assert record.headers == [(PACK_HEADER, b"1")] and record.key is None
        assert record.value is not None
        found = scan(record.value)
        assert len(found.spans) <= 15, "closed at the count bound"
        got.setdefault(record.partition, []).extend(record.value[a:b] for a, b in found.spans)
        for index, headers in found.traces.items():
            assert record.value[slice(*found.spans[index])] == events[3]
            assert headers == [(TRACEPARENT, PARENT)]
    expected: dict[int, list[bytes]] = {}
    for key, value in items:
        assert isinstance(key, str) and value is not None
        expected.setdefault(groups.partition(key, 4), []).append(value)
    assert got == expected, "every event once, on its vehicle's partition, in order"
