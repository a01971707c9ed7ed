"""The vectorised wire encoding parses back to exactly the simulator's messages."""

from __future__ import annotations

import itertools

import pytest

from fleetpipe.core.protowire import varint
from fleetpipe.pb.v1 import ingest_pb2, telemetry_pb2
from fleetpipe_loadtest.fleet import Fleet
from fleetpipe_loadtest.scenarios import ScenarioMix
from fleetpipe_loadtest.wire import Batcher, batch_header, encode_tick

pytestmark = pytest.mark.unit


def _key(m: telemetry_pb2.Telemetry) -> tuple[str, int]:
    return (m.vehicle_id, m.seq)


@pytest.mark.parametrize("batch_size", [1, 7, 500])
def test_encoded_batches_parse_to_the_same_events_in_vehicle_order(batch_size: int) -> None:
    fleet = Fleet(
        60,
        seed=5,
        scenarios=ScenarioMix.parse("all=4"),
        mix={"robotaxi": 0.3, "van": 0.4, "ev": 0.3},
    )
    batcher = Batcher(batch_size)
    sent: list[ingest_pb2.TelemetryBatch] = []
    expected = []
    for tick in fleet.run(1800):
        expected.extend(tick.messages())
        for n, (body, count) in enumerate(batcher.feed(encode_tick(tick))):
            batch = ingest_pb2.TelemetryBatch.FromString(batch_header(n) + body)
            assert batch.batch_id == n and len(batch.events) == count == batch_size
            sent.append(batch)
    for body, _count in batcher.flush():
        sent.append(ingest_pb2.TelemetryBatch.FromString(batch_header(0) + body))
    events = [e for b in sent for e in b.events]
    assert sorted(events, key=_key) == sorted(expected, key=_key)
    assert any(e.dtc_codes or e.driving_events for e in events)  # the slow path was taken
    # per vehicle, the order of sending is the order of seq
    last: dict[str, int] = {}
    for e in events:
        assert e.seq > last.get(e.vehicle_id, 0)
        last[e.vehicle_id] = e.seq


def test_a_slice_of_rows_encodes_just_those_rows() -> None:
    tick = Fleet(10, seed=1).tick()
    enc = encode_tick(tick, slice(3, 7))
    assert len(enc) == 4
    body = b"".join(buf for buf, _, _ in enc.chunks)
    ids = [e.vehicle_id for e in ingest_pb2.TelemetryBatch.FromString(body).events]
    assert ids == [f"fleet-1-veh-{n:06d}" for n in (4, 5, 6, 7)]


def test_rows_of_a_tick_encoded_once_are_the_rows_encoded_alone() -> None:
    fleet = Fleet(
        60, seed=5, scenarios=ScenarioMix.parse("all=4"), mix={"robotaxi": 0.5, "ev": 0.5}
    )
    cuts = [0, 7, 8, 30, 31, 60]
    singles = 0
    for tick in fleet.run(900):
        whole = encode_tick(tick)
        singles += len(whole.singles)
        for a, b in itertools.pairwise(cuts):
            part, alone = whole.rows(a, b), encode_tick(tick, slice(a, b))
            assert len(part) == len(alone) == len(range(a, min(b, len(tick))))
            assert [bytes(buf) for buf, _, _ in part.chunks] == [
                bytes(buf) for buf, _, _ in alone.chunks
            ]
            assert part.singles == alone.singles
    assert singles > 0  # rows of the slow path (DTCs, driving events) were cut too


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16383, 16384, 2**49, 2**63])
def test_varint_matches_protobuf(value: int) -> None:
    encoded = ingest_pb2.TelemetryBatch(batch_id=value).SerializeToString()
    assert encoded == (b"\x08" + varint(value) if value else b"")
