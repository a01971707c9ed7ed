"""The load driver's batches — each tick encoded once, cut per send slot and stream — are
accepted by a real ingest, and the raw topic holds every event once, valid and advancing per
vehicle."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import time
from collections import defaultdict
from typing import Any

import pytest

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import telemetry_pb2
from fleetpipe_dev.testing import read_events
from fleetpipe_loadtest.loadrun import LoadPlan, drive_shard
from fleetpipe_loadtest.report import Step
from support.ingest import StartIngest
from support.messages import decoded

pytestmark = pytest.mark.integration

VEHICLES, SECONDS, RATE_HZ = 300, 3, 4.0


def test_the_drivers_batches_are_accepted_and_every_vehicle_advances_once_per_event(
    start_ingest: StartIngest, topics: Topics, kafka_settings: KafkaSettings
) -> None:
    ingest = start_ingest(topics)
    plan = LoadPlan(
        target=ingest.address,
        token=ingest.token_a,
        fleet_id="fleet-a",
        run_id="rtest",
        steps=(Step(VEHICLES, SECONDS),),
        rate_hz=RATE_HZ,
        streams=3,
        # Batches smaller than a slot's cut of a stream: bodies span several cuts and layouts.
        batch_size=17,
        slots=5,
        scenarios="all=30",  # frequent episodes
        start_time_us=time.time_ns() // 1000,
    )
    ctx = multiprocessing.get_context("spawn")
    updates: multiprocessing.Queue[tuple[int, dict[str, Any]]] = ctx.Queue()
    asyncio.run(drive_shard(plan, 0, updates, ctx.Event()))
    final: dict[str, Any] = {}
    while not final:
        _, msg = updates.get(timeout=10)
        assert not msg.get("error"), msg
        if msg.get("final"):
            final = msg
    sends = final["sends"]
    planned = VEHICLES * round(SECONDS * RATE_HZ)
    assert (sends.sent, sends.accepted, sends.rejected) == (planned, planned, 0)
    assert sum(final["counts"]) == planned

    by_vehicle: dict[str, list[telemetry_pb2.Telemetry]] = defaultdict(list)
    for event in read_events(kafka_settings, topics.raw, idle_s=3, timeout=120):
        e = decoded(event, telemetry_pb2.Telemetry)
        by_vehicle[e.vehicle_id].append(e)
    expected_ids = {f"fleet-a-rtest-veh-{n:06d}" for n in range(1, VEHICLES + 1)}
    assert set(by_vehicle) == expected_ids
    sent = {
        f"fleet-a-rtest-veh-{int(n):06d}": int(c)
        for n, c in zip(final["numbers"], final["counts"], strict=True)
    }
    layouts: set[tuple[bool, bool]] = set()
    moved = 0
    for vid, events in by_vehicle.items():
        # In the topic's order (one vehicle, one partition): seq 1, 2, 3, … once each, and the
        # event time whole periods later each time (more than one across an offline episode).
        assert [e.seq for e in events] == list(range(1, sent[vid] + 1)), vid
        times = [e.event_time_us for e in events]
        period = round(1e6 / RATE_HZ)
        steps = [b - a for a, b in itertools.pairwise(times)]
        assert all(d > 0 and d % period == 0 for d in steps), (vid, steps)
        for e in events:
            assert e.fleet_id == "fleet-a" and e.ingest_time_us > 0 and not e.late
            assert -90 <= e.location.lat <= 90 and -180 <= e.location.lon <= 180
            assert e.location.lat != 0 and e.location.lon != 0
            layouts.add((e.HasField("perception"), e.engine.rpm > 127))
        positions = {(e.location.lat, e.location.lon) for e in events}
        odometer = [e.odometer_km for e in events]
        assert odometer == sorted(odometer), vid  # never backwards
        moved += len(positions) > 1
    assert moved > 0, "some vehicles drove: positions advance with the events"
    # Records of several encoding layouts (perception or not, one- or two-byte rpm) were cut
    # into the same batches.
    assert len(layouts) >= 2, layouts
