from __future__ import annotations

import pytest

from fleetpipe.core.records import dead_letter_record
from fleetpipe.pb.v1 import deadletter_pb2

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
