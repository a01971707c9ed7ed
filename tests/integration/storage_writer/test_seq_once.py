"""One row per (vehicle, seq) in PostgreSQL whatever the event's day: a seq re-sent with a clock
on another day is stored once (the first), through the real writer on real Kafka."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleetpipe.pb.v1 import enriched_pb2
from fleetpipe_dev.testing import committed_total, end_offsets, wait_for
from fleetpipe_loadtest import records

from .conftest import WriterRig

pytestmark = pytest.mark.integration

US = 1_000_000


def _midnight_us() -> int:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(today.timestamp()) * US


def _event(vehicle: int, seq: int, at_us: int, speed: float) -> enriched_pb2.EnrichedTelemetry:
    e = records.enriched(vehicle, seq, event_time_us=at_us)
    e.telemetry.motion.speed_kmh = speed
    return e


def _stored(rig: WriterRig, vehicle: int, seq: int) -> list[tuple[object, ...]]:
    return rig.sql(
        "SELECT event_day, speed_kmh FROM telemetry WHERE vehicle_id = %s AND seq = %s",
        f"fleet-1-veh-{vehicle:06d}",
        seq,
    )


def _consumed(rig: WriterRig, group: str) -> None:
    total = sum(end_offsets(rig.kafka, rig.topics.enriched).values())
    wait_for(
        lambda: committed_total(rig.kafka, group, rig.topics.enriched) >= total,
        timeout=120,
        interval=0.5,
        what=f"group {group} to consume {total} records",
    )


def test_a_seq_resent_on_another_day_is_stored_once_and_replays_stay_idempotent(
    rig: WriterRig,
) -> None:
    midnight = _midnight_us()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    # Vehicle 1's seq 7 at 23:59:59.9 yesterday; vehicles 2-4 and vehicle 1's other seqs
    # around midnight on both days.
    first = [_event(1, 7, midnight - US // 10, 10.0)]
    others = [
        _event(v, s, midnight + (s - 10) * US, 30.0)
        for v in (1, 2, 3, 4)
        for s in range(1, 20)
        if (v, s) != (1, 7)
    ]
    rig.produce(rig.topics.enriched, first + others)
    writer = rig.start("w1")
    rig.wait_consumed(writer)
    assert _stored(rig, 1, 7) == [(yesterday, 10.0)]

    # The same seq re-sent 0.2 s later by the device's clock: 00:00:00.1 today. The writer has
    # seen the vehicle (warm marks); in one batch with a fresh seq of another vehicle.
    resent = _event(1, 7, midnight + US // 10, 20.0)
    fresh = _event(5, 1, midnight + US // 10, 40.0)
    rig.produce(rig.topics.enriched, [resent, fresh])
    rig.wait_consumed(writer)
    assert _stored(rig, 1, 7) == [(yesterday, 10.0)], "the first stored wins"
    assert _stored(rig, 5, 1) == [(yesterday + timedelta(days=1), 40.0)]
    assert writer.stop() == 0

    # A writer that has never seen the vehicle (its marks read from the database), a re-send on
    # yet another day, and one batch repeating a seq across two days.
    second = rig.start("w2")
    rig.produce(
        rig.topics.enriched,
        [
            _event(1, 7, midnight + 86_400 * US + US, 50.0),
            _event(6, 3, midnight - US, 60.0),
            _event(6, 3, midnight + US, 61.0),
        ],
    )
    rig.wait_consumed(second)
    assert _stored(rig, 1, 7) == [(yesterday, 10.0)]
    assert _stored(rig, 6, 3) == [(yesterday, 60.0)], "the batch's first copy wins"
    assert second.stop() == 0
    assert "de-duplicated on (vehicle, seq)" in second.log()

    keys = rig.sql("SELECT vehicle_id, seq FROM telemetry ORDER BY 1, 2")
    expected = sorted(
        {(e.telemetry.vehicle_id, e.telemetry.seq) for e in first + others}
        | {("fleet-1-veh-000005", 1), ("fleet-1-veh-000006", 3)}
    )
    assert keys == expected, "other vehicles and seqs stored, each once"
    snapshot = rig.sql("SELECT vehicle_id, seq, event_day, speed_kmh FROM telemetry ORDER BY 1, 2")

    # The whole topic read again by a new group (a replay of every batch): nothing changes.
    replay_group = f"{rig.group}-replay"
    third = rig.start("w3", FLEET_GROUP_ID=replay_group)
    _consumed(rig, replay_group)
    assert third.stop() == 0
    assert (
        rig.sql("SELECT vehicle_id, seq, event_day, speed_kmh FROM telemetry ORDER BY 1, 2")
        == snapshot
    )
