"""Telemetry, alert episodes, trips and scores land in PostgreSQL, idempotently."""

from __future__ import annotations

import pytest

from fleetpipe.core.db import load_migrations
from fleetpipe.pb.v1 import alert_pb2, trip_pb2
from fleetpipe_loadtest import records

from .conftest import WriterRig

pytestmark = pytest.mark.integration


def test_every_kind_of_record_is_stored(rig: WriterRig) -> None:
    telemetry = list(records.enriched_stream(50, 5000))
    rig.produce(rig.topics.enriched, telemetry)
    start = records.now_us() - 600 * 10**6
    opened = records.alert("fleet-1-veh-000001", "speeding", episode_start_us=start)
    resolved = records.alert(
        "fleet-1-veh-000001",
        "speeding",
        episode_start_us=start,
        state=alert_pb2.ALERT_STATE_RESOLVED,
        at_us=start + 60 * 10**6,
    )
    rig.produce(rig.topics.alerts, [opened, resolved, opened])  # a late replay of OPEN last
    trip_started = records.trip("fleet-1-veh-000002", start, state=trip_pb2.TRIP_STATE_STARTED)
    trip_ended = records.trip("fleet-1-veh-000002", start)
    rig.produce(rig.topics.trips, [trip_started, trip_ended])
    rig.produce(
        rig.topics.scores,
        [records.driver_score("drv-1", "fleet-1-veh-000001", start)],
        key="vehicle_id",
    )

    proc = rig.start()
    rig.wait_consumed(
        proc, [rig.topics.enriched, rig.topics.alerts, rig.topics.trips, rig.topics.scores]
    )

    assert rig.sql("SELECT count(*), count(DISTINCT (vehicle_id, seq)) FROM telemetry") == [
        (5000, 5000)
    ]
    assert rig.sql("SELECT state, episode_end IS NOT NULL FROM alerts") == [("RESOLVED", True)]
    assert rig.sql("SELECT state, distance_km FROM trips") == [("ENDED", 12.5)]
    assert rig.scalar("SELECT score FROM driver_scores") == 87.5
    assert rig.scalar("SELECT count(*) FROM vehicle_latest") == 50
    assert rig.scalar("SELECT min(seq) FROM vehicle_latest") == 100, "the latest is the last"
    assert rig.scalar(
        "SELECT array_agg(version ORDER BY version) FROM schema_migrations "
        "WHERE component = 'storage'"
    ) == [m.version for m in load_migrations("fleetpipe.storage_writer")]
    partitions = rig.scalar(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'telemetry'::regclass"
    )
    assert partitions >= 6, "the hot window's days (3 back, 2 ahead) exist"
    # Append-only day partitions: no insert-triggered vacuum rescanning them every minute.
    options = rig.sql(
        "SELECT c.reloptions FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'telemetry'::regclass"
    )
    assert options and all(o == ["autovacuum_vacuum_insert_threshold=-1"] for (o,) in options), (
        options
    )
    assert proc.stop() == 0
