"""Parquet files anyone can read, bad records dead-lettered, the hot window kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from fleetpipe.core.records import DL_REASON
from fleetpipe.pb.v1 import deadletter_pb2
from fleetpipe_dev.testing import read_all
from fleetpipe_loadtest import records
from support.messages import decoded, headers_of

from .conftest import WriterRig

pytestmark = pytest.mark.integration


def test_parquet_files_are_readable_by_pyarrow_and_duckdb(rig: WriterRig) -> None:
    now = datetime.now(UTC)
    two_hours_ago = int((now - timedelta(hours=2)).timestamp() * 1e6)
    events = list(records.enriched_stream(20, 2000))
    events += list(records.enriched_stream(20, 400, start_us=two_hours_ago, fleet="fleet-2"))
    rig.produce(rig.topics.enriched, events)
    rig.produce(rig.topics.alerts, [records.alert(f"fleet-1-veh-{i:06d}") for i in range(5)])
    proc = rig.start()
    rig.wait_consumed(proc, [rig.topics.enriched, rig.topics.alerts])
    assert proc.stop() == 0  # a graceful stop rolls every spool into Parquet

    bronze = rig.lake / "bronze" / "telemetry"
    files = sorted(bronze.rglob("*.parquet"))
    assert files, "telemetry files written"
    hours = {f.parent.relative_to(bronze).as_posix() for f in files}
    expected = {
        datetime.fromtimestamp(e.telemetry.event_time_us / 1e6, UTC).strftime("dt=%Y-%m-%d/hour=%H")
        for e in events
    }
    assert hours == expected, "partitioned by the events' date and hour"
    assert not list(rig.lake.rglob("*.tmp")), "no half-written file is left"
    assert not list((rig.lake / "_spool").rglob("*.arrows")), "no spool is left"

    table = ds.dataset(
        rig.lake / "bronze" / "telemetry", format="parquet", partitioning="hive"
    ).to_table()
    assert table.num_rows == len(events)
    assert pq.read_schema(files[0]).field("event_time").type.tz == "UTC"

    con = duckdb.connect()
    pattern = str(rig.lake / "bronze" / "telemetry" / "**" / "*.parquet")
    telemetry = con.execute(
        "SELECT count(*), count(DISTINCT telemetry.vehicle_id), "
        "count(DISTINCT telemetry.fleet_id), max(telemetry.seq) "
        f"FROM read_parquet('{pattern}', hive_partitioning = true)"
    ).fetchone()
    assert telemetry == (len(events), 40, 2, 100)
    alert_files = rig.lake / "bronze" / "alerts" / "**" / "*.parquet"
    alerts = con.execute(f"SELECT count(*) FROM read_parquet('{alert_files}')").fetchone()
    assert alerts == (5,)


def test_bad_records_are_dead_lettered_and_the_rest_stored(rig: WriterRig) -> None:
    good = list(records.enriched_stream(10, 100))
    no_vehicle = records.enriched(99, 1)
    no_vehicle.telemetry.vehicle_id = ""
    bad_alert = records.alert("fleet-1-veh-000001")
    bad_alert.alert_id = ""
    rig.produce(rig.topics.enriched, good[:50])
    rig.produce_raw(rig.topics.enriched, [("junk", b"\xff\xfe not protobuf")])
    rig.produce(rig.topics.enriched, [*good[50:], no_vehicle], key="none")
    rig.produce(rig.topics.alerts, [bad_alert, records.alert("fleet-1-veh-000002")])
    proc = rig.start()
    rig.wait_consumed(proc, [rig.topics.enriched, rig.topics.alerts])

    assert rig.scalar("SELECT count(*) FROM telemetry") == 100
    assert rig.scalar("SELECT count(*) FROM alerts") == 1
    letters = read_all(rig.kafka, rig.topics.deadletter, read_committed=False, idle_s=1)
    reasons = sorted(
        (
            headers_of(m)[DL_REASON].decode(),
            decoded(m, deadletter_pb2.DeadLetter).error,
        )
        for m in letters
    )
    assert [r for r, _ in reasons] == ["invalid", "invalid", "undecodable"]
    errors = " | ".join(e for _, e in reasons)
    assert "vehicle_id is empty" in errors and "alert_id is empty" in errors
    assert proc.stop() == 0


def test_rows_outside_the_hot_window_go_to_parquet_only(rig: WriterRig) -> None:
    old = int((datetime.now(UTC) - timedelta(days=10)).timestamp() * 1e6)
    stale = list(records.enriched_stream(5, 50, start_us=old))
    fresh = list(records.enriched_stream(5, 50, fleet="fleet-2"))
    rig.produce(rig.topics.enriched, stale + fresh)
    proc = rig.start()
    rig.wait_consumed(proc)
    assert proc.stop() == 0
    assert rig.sql("SELECT DISTINCT fleet_id FROM telemetry") == [("fleet-2",)]
    lake = ds.dataset(
        rig.lake / "bronze" / "telemetry", format="parquet", partitioning="hive"
    ).to_table()
    assert lake.num_rows == 100


def test_partitions_past_retention_are_dropped(rig: WriterRig) -> None:
    proc = rig.start()
    rig.produce(rig.topics.enriched, list(records.enriched_stream(5, 10)))
    rig.wait_consumed(proc)
    assert proc.stop() == 0
    old_day = (datetime.now(UTC) - timedelta(days=9)).date()
    rig.execute(
        f"CREATE TABLE telemetry_p{old_day:%Y%m%d} PARTITION OF telemetry "
        f"FOR VALUES FROM ('{old_day}') TO ('{old_day + timedelta(days=1)}')"
    )
    restarted = rig.start("w2", FLEET_HOT_RETENTION_DAYS="3")
    rig.produce(rig.topics.enriched, list(records.enriched_stream(5, 20))[10:])
    rig.wait_consumed(restarted)
    assert restarted.stop() == 0
    names = {
        n
        for (n,) in rig.sql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'telemetry'::regclass"
        )
    }
    assert f"telemetry_p{old_day:%Y%m%d}" not in names
    today = datetime.now(UTC).date()
    for ahead in range(3):
        assert f"telemetry_p{today + timedelta(days=ahead):%Y%m%d}" in names
