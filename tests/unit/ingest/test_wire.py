"""Locating events inside a serialised batch and stamping them by appending fields."""

from __future__ import annotations

import pytest

from fleetpipe.core.protowire import varint
from fleetpipe.ingest.wire import LATE_FIELD, event_spans, fleet_field, ingest_time_field
from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2

pytestmark = pytest.mark.unit


def events(n: int) -> list[telemetry_pb2.Telemetry]:
    return [
        telemetry_pb2.Telemetry(
            vehicle_id=f"v-{i}", seq=i + 1, event_time_us=10**15, dtc_codes=["P0217"] * (i * 20)
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(ingest_pb2.TelemetryBatch(batch_id=7, events=events(3)).SerializeToString(),
                     id="canonical"),
        pytest.param(b"".join(b"\x12" + varint(len(e.SerializeToString())) + e.SerializeToString()
                              for e in events(2)) + b"\x08\x07", id="batch-id-last"),
        pytest.param(ingest_pb2.TelemetryBatch(events=events(12)).SerializeToString(),
                     id="long-events"),
        pytest.param(b"\xf8\x07\x01" + ingest_pb2.TelemetryBatch(events=events(2))
                     .SerializeToString(), id="unknown-field"),
        pytest.param(b"", id="empty"),
    ],
)  # fmt: skip
def test_spans_are_exactly_the_events_of_the_batch(raw: bytes) -> None:
    parsed = ingest_pb2.TelemetryBatch.FromString(raw)
    spans = event_spans(raw)
    assert spans is not None
    assert [raw[a:b] for a, b in spans] == [e.SerializeToString() for e in parsed.events]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\x12\x05abc", id="truncated"),
        pytest.param(b"\x0b\x0c", id="group"),
    ],
)
def test_a_batch_the_scanner_cannot_follow_gives_none(raw: bytes) -> None:
    assert event_spans(raw) is None


def test_appended_fields_win_over_what_the_client_sent() -> None:
    sent = telemetry_pb2.Telemetry(vehicle_id="v-1", seq=3, ingest_time_us=5, late=False)
    stamped = sent.SerializeToString() + ingest_time_field(1_800_000_000_000_123)
    stamped += LATE_FIELD + fleet_field("fleet-a")
    got = telemetry_pb2.Telemetry.FromString(stamped)
    assert (got.ingest_time_us, got.late, got.fleet_id) == (1_800_000_000_000_123, True, "fleet-a")
    assert (got.vehicle_id, got.seq) == ("v-1", 3)
    # and written canonically again it is exactly the message with those fields set
    expected = telemetry_pb2.Telemetry(
        vehicle_id="v-1", seq=3, ingest_time_us=1_800_000_000_000_123, late=True, fleet_id="fleet-a"
    )
    assert got == expected
