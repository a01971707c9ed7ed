"""The storage writer's bronze, and silver and gold compacted from it, on a local folder and on
an S3-compatible server: every field kept and traceable to its Kafka record, a handover's
repeated batch once in silver, gold equal to PostgreSQL's own aggregates."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from google.protobuf.message import Message

from fleetpipe.lake.compaction import Compactor
from fleetpipe.lake.store import LakeStore
from fleetpipe.pb.v1 import enriched_pb2, telemetry_pb2
from fleetpipe_dev.testing import read_all, wait_for
from fleetpipe_loadtest.records import now_us
from support.lakes import LakeLocations, events

from .conftest import WriterRig

pytestmark = pytest.mark.integration

HOUR_US = 3_600_000_000


def _same(row: Any, message: Message, where: str = "") -> None:
    """Assert a bronze row holds every field of ``message``, nested as in the message."""
    for field in message.DESCRIPTOR.fields:
        name = f"{where}{field.name}"
        value = row[field.name]
        expected = getattr(message, field.name)
        if field.message_type is not None and not _repeated(field):
            if message.HasField(field.name) or value is not None:
                # An absent sub-message may be stored as null or as its defaults.
                _same(value, expected, f"{name}.")
        elif field.message_type is not None:
            assert len(value) == len(expected), name
            for i, (item, sub) in enumerate(zip(value, expected, strict=True)):
                _same(item, sub, f"{name}[{i}].")
        elif _repeated(field):
            assert list(value) == list(expected), name
        elif isinstance(expected, float):
            assert math.isclose(value, expected, rel_tol=1e-6), name
        else:
            assert value == expected, name


def _repeated(field: Any) -> bool:
    return bool(field.is_repeated)


def test_bronze_keeps_every_field_and_each_row_leads_back_to_its_record(
    rig: WriterRig, lake_locations: LakeLocations
) -> None:
    url = lake_locations.new()
    made = events(6, 20, start_us=now_us() - HOUR_US)
    for i, e in enumerate(made[::5]):
        e.vehicle.electric = i % 2 == 0
        e.vehicle.model = f"Model {i}"
        e.telemetry.driving_events.add(
            kind=telemetry_pb2.DRIVING_EVENT_KIND_INTERVENTION, reason=f"reason {i}"
        )
    rig.produce(rig.topics.enriched, made)
    proc = rig.start("w1", FLEET_LAKE__URL=url)
    rig.wait_consumed(proc)
    assert proc.stop() == 0

    store = LakeStore.from_url(url)
    files = [p for p, _ in store.files("bronze/telemetry")]
    assert {p.rsplit("/", 1)[0] for p in files} == {
        "bronze/telemetry/" + time.strftime("dt=%Y-%m-%d/hour=%H", time.gmtime(t))
        for t in {e.telemetry.event_time_us // 10**6 for e in made}
    }
    assert not list(rig.lake.rglob("*.parquet")), "the files are in the lake's location only"
    bronze = store.dataset(files).to_table().to_pylist()
    assert len(bronze) == len(made)
    sent = {
        (m.partition(), m.offset()): enriched_pb2.EnrichedTelemetry.FromString(m.value() or b"")
        for m in read_all(rig.kafka, rig.topics.enriched, read_committed=False, idle_s=1)
    }
    for row in bronze:
        assert row["_kafka_topic"] == rig.topics.enriched
        _same(row, sent[(row["_kafka_partition"], row["_kafka_offset"])])
    assert {r["vehicle"]["model"] for r in bronze} >= {"Model 0", "Model 3"}
    assert sum(len(r["telemetry"]["driving_events"]) for r in bronze) == len(made[::5])


VEHICLE_HOUR_SQL = """
SELECT fleet_id, vehicle_id,
    extract(epoch FROM date_trunc('hour', event_time AT TIME ZONE 'UTC'))::bigint,
    count(*), avg(battery_pct), min(battery_pct), max(speed_kmh),
    count(DISTINCT floor(extract(epoch FROM event_time))) FILTER (WHERE ignition),
    count(DISTINCT geohash6)
FROM telemetry GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""

FLEET_DAY_SQL = """
SELECT fleet_id, (event_time AT TIME ZONE 'UTC')::date,
    count(*), count(DISTINCT vehicle_id), avg(battery_pct), min(battery_pct), max(speed_kmh),
    count(DISTINCT (vehicle_id, floor(extract(epoch FROM event_time)))) FILTER (WHERE ignition),
    count(DISTINCT geohash6)
FROM telemetry GROUP BY 1, 2 ORDER BY 1, 2
"""


def _rows(table: Any, key: str) -> list[tuple[Any, ...]]:
    out = []
    for r in table.to_pylist():
        when = int(r[key].timestamp()) if key == "hour" else r[key]
        head = (r["fleet_id"], r["vehicle_id"], when) if key == "hour" else (r["fleet_id"], when)
        tail = (r["events"],) + ((r["vehicles"],) if key == "day" else ())
        out.append(
            (
                *head,
                *tail,
                pytest.approx(r["battery_avg_pct"], rel=1e-6),
                pytest.approx(r["battery_min_pct"]),
                pytest.approx(r["speed_max_kmh"]),
                r["seconds_in_use"],
                r["distinct_locations"],
            )
        )
    return out


def test_a_batch_stored_twice_across_a_handover_is_once_in_silver_and_gold_equals_sql(
    rig: WriterRig, lake_locations: LakeLocations
) -> None:
    url = lake_locations.new()
    # Across an hour boundary, an hour ago.
    boundary = now_us() // HOUR_US * HOUR_US - HOUR_US
    made = events(30, 200, start_us=boundary - 100_000_000)
    sent = {(e.telemetry.vehicle_id, e.telemetry.seq) for e in made}
    rig.produce(rig.topics.enriched, made)
    lake = {"FLEET_LAKE__URL": url, "FLEET_MAX_BATCH": "500"}

    # w1 holds each batch after storing it, before its offsets are committed; it dies there.
    first = rig.start("w1", FLEET_HOLD_MS="1000", **lake)

    def stored_but_not_committed() -> bool:
        first.check_alive()
        stored = rig.scalar("SELECT count(*) FROM telemetry") if _has_telemetry(rig) else 0
        return bool(stored >= 1000 and stored > rig.committed() + 400)

    wait_for(stored_but_not_committed, timeout=120, interval=0.1, what="a batch not committed")
    first.kill()
    # Another instance takes the partitions over and repeats the uncommitted batch...
    second = rig.start("w2", **lake)
    rig.wait_consumed(second)
    assert second.stop() == 0
    # ...and w1, back, rolls the spools it left: bronze now holds that batch twice.
    back = rig.start("w1", **lake)

    def spools_rolled() -> bool:
        back.check_alive()
        return not list((rig.lake / "_spool" / "w1").rglob("*.arrows"))

    wait_for(
        spools_rolled,
        timeout=60,
        interval=0.2,
        what="w1 to roll the spools it left",
    )
    assert back.stop() == 0

    store = LakeStore.from_url(url)
    bronze = store.dataset([p for p, _ in store.files("bronze/telemetry")]).to_table()
    keys = list(
        zip(
            bronze["telemetry"].combine_chunks().field("vehicle_id").to_pylist(),
            bronze["telemetry"].combine_chunks().field("seq").to_pylist(),
            strict=True,
        )
    )
    assert set(keys) == sent
    assert len(keys) > len(sent), "the handover repeated a batch in bronze"

    report = Compactor(store).run()
    assert sum(d.duplicates for d in report.compacted) == len(keys) - len(sent)
    silver = store.dataset([p for p, _ in store.files("silver/telemetry")]).to_table()
    silver_keys = list(
        zip(silver["vehicle_id"].to_pylist(), silver["seq"].to_pylist(), strict=True)
    )
    assert sorted(silver_keys) == sorted(sent), "each event exactly once in silver"

    vehicle_hour = store.dataset([p for p, _ in store.files("gold/vehicle_hour")]).to_table()
    fleet_day = store.dataset([p for p, _ in store.files("gold/fleet_day")]).to_table()
    assert rig.scalar("SELECT count(*) FROM telemetry") == len(sent)
    ordered = vehicle_hour.sort_by([("vehicle_id", "ascending"), ("hour", "ascending")])
    assert _rows(ordered, "hour") == [tuple(r) for r in rig.sql(VEHICLE_HOUR_SQL)]
    assert _rows(fleet_day, "day") == [tuple(r) for r in rig.sql(FLEET_DAY_SQL)]
    assert len(vehicle_hour) == 60, "30 vehicles, each on both sides of the hour"


def _has_telemetry(rig: WriterRig) -> bool:
    return bool(rig.scalar("SELECT to_regclass('telemetry') IS NOT NULL"))
