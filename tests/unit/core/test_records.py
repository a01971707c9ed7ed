from __future__ import annotations

import pytest

from fleetpipe.core.kafka import Headers
from fleetpipe.core.records import dead_letter_record
from fleetpipe.pb.v1 import deadletter_pb2
from support.builders import output
from support.fakes import RecordingProducer

pytestmark = pytest.mark.unit


def test_dead_letter_carries_reason_and_source_in_headers_and_value() -> None:
    value, headers = dead_letter_record(
        reason="undecodable",
        error="cannot decode",
        service="enrichment",
        key=b"veh-1",
        payload=b"\xff",
        source_topic="fleet.telemetry.raw.v1",
        source_partition=2,
        source_offset=1234,
    )
    h = dict(headers)
    assert h["fp-reason"] == b"undecodable"
    assert h["fp-source-topic"] == b"fleet.telemetry.raw.v1"
    assert h["fp-source-partition"] == b"2"
    assert h["fp-source-offset"] == b"1234"
    assert h["fp-service"] == b"enrichment"
    letter = deadletter_pb2.DeadLetter.FromString(value)
    assert (letter.payload, letter.key, letter.source_offset) == (b"\xff", b"veh-1", 1234)
    assert letter.time_us > 0


@pytest.mark.parametrize(
    "traced",
    [
        pytest.param({}, id="none"),
        pytest.param({0: [("traceparent", b"a")]}, id="first"),
        pytest.param({4: [("traceparent", b"e")]}, id="last"),
        pytest.param({1: [("traceparent", b"b")], 3: [("traceparent", b"d")]}, id="two"),
    ],
)
def test_send_many_keeps_order_and_puts_headers_on_the_traced_records_only(
    traced: dict[int, Headers],
) -> None:
    producer = RecordingProducer()
    out = output(producer)
    items: list[tuple[bytes | str | None, bytes | None]] = [
        (f"k{i}", f"v{i}".encode()) for i in range(5)
    ]
    out.send_many("topic", items, traced)
    assert [(p.key, p.value) for p in producer.sent] == items
    assert {i: p.headers for i, p in enumerate(producer.sent) if p.headers} == traced
