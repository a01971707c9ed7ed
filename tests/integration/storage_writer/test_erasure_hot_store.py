"""An erasure while the vehicle's records are still in Kafka, and more of them arriving after it:
the storage writer leaves every row from before the erasure out of PostgreSQL (telemetry,
latest position, alerts, trips, scores), keeps every other vehicle's rows, and stores the
vehicle's new data — received and dated after the erasure — as the erasure's rule says."""

from __future__ import annotations

from collections import Counter

import pytest

from fleetpipe.pb.v1 import enriched_pb2
from fleetpipe.storage_writer.erased import MARGIN_S
from fleetpipe_loadtest import records
from fleetpipe_loadtest.records import now_us
from support.lakes import LakeLocations, events

from .conftest import WriterRig
from .test_erasure import _erase

pytestmark = pytest.mark.integration

HOUR_US = 3_600_000_000


def _from_seq(
    made: list[enriched_pb2.EnrichedTelemetry], first: int
) -> list[enriched_pb2.EnrichedTelemetry]:
    for e in made:
        e.telemetry.seq += first
    return made


def _telemetry(rig: WriterRig) -> Counter[str]:
    return Counter(v for (v,) in rig.sql("SELECT vehicle_id FROM telemetry"))


def test_rows_of_an_erased_vehicle_consumed_after_its_erasure_stay_out_of_postgres(
    rig: WriterRig, lake_locations: LakeLocations
) -> None:
    url = lake_locations.new()
    stored = events(4, 20, start_us=now_us() - 2 * HOUR_US)
    vehicles = sorted({e.telemetry.vehicle_id for e in stored})
    target = vehicles[1]
    rig.produce(rig.topics.enriched, stored)
    proc = rig.start("w1", FLEET_LAKE__URL=url)
    rig.wait_consumed(proc)
    assert proc.stop() == 0
    assert _telemetry(rig)[target] == 20

    # Still in Kafka when the erasure runs: the writer is down.
    waiting = _from_seq(events(4, 10, start_us=now_us() - HOUR_US), 100)
    rig.produce(rig.topics.enriched, waiting)
    started_us = now_us() - HOUR_US
    rig.produce(
        rig.topics.alerts, [records.alert(v, episode_start_us=started_us) for v in vehicles]
    )
    rig.produce(rig.topics.trips, [records.trip(v, started_us) for v in vehicles])
    rig.produce(
        rig.topics.scores,
        [records.driver_score(f"drv-{i:06d}", v, now_us()) for i, v in enumerate(vehicles)],
    )
    done = _erase(rig, url, "--vehicle", target, "--reason", "erasure request 77")
    assert done.returncode == 0, done.stderr.decode()
    assert _telemetry(rig)[target] == 0

    # Sent after it: a backlog about the time before the erasure, and new data from well after.
    backlog = _from_seq(events(4, 5, start_us=now_us() - 30 * 60_000_000), 200)
    later_us = now_us() + int((MARGIN_S + 60) * 1e6)
    new = _from_seq(events(4, 5, start_us=later_us), 300)
    rig.produce(rig.topics.enriched, backlog + new)
    proc = rig.start("w2", FLEET_LAKE__URL=url)
    rig.wait_consumed(
        proc, [rig.topics.enriched, rig.topics.alerts, rig.topics.trips, rig.topics.scores]
    )
    assert proc.stop() == 0

    counts = _telemetry(rig)
    assert counts == {v: 20 + 10 + 5 + 5 for v in vehicles if v != target} | {target: 5}
    seqs = [s for (s,) in rig.sql("SELECT seq FROM telemetry WHERE vehicle_id = %s", target)]
    assert sorted(seqs) == [301, 302, 303, 304, 305], "only the data sent after the erasure"
    for table in ("alerts", "trips", "driver_scores"):
        found = Counter(v for (v,) in rig.sql(f"SELECT vehicle_id FROM {table}"))
        assert found == {v: 1 for v in vehicles if v != target}, table
    ((latest_seq,),) = rig.sql("SELECT seq FROM vehicle_latest WHERE vehicle_id = %s", target)
    assert latest_seq == 305
    said = [
        line
        for line in (rig.workdir / "w2.log").read_text().splitlines()
        if "of erased subjects out of PostgreSQL" in line
    ]
    assert said, "the writer says what it left out"
    assert not any(target in line for line in said), "by counts, naming no subject"
