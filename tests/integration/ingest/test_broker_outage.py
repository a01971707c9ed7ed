"""The broker stops mid-stream: clients get UNAVAILABLE, retry, and no event is lost."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import numpy as np
import pytest

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import telemetry_pb2
from fleetpipe_dev.testing import read_events
from fleetpipe_loadtest.fleet import Fleet
from fleetpipe_loadtest.sender import Sender
from fleetpipe_loadtest.wire import Batcher, encode_tick
from support.ingest import StartIngest
from support.messages import decoded
from support.servers import BrokerHandle

pytestmark = pytest.mark.integration

VEHICLES, STREAMS, TICKS = 60, 3, 400


def test_with_the_broker_stopped_mid_stream_clients_retry_and_the_raw_topic_has_every_seq(
    kafka: BrokerHandle,
    start_ingest: StartIngest,
    topics: Topics,
    kafka_settings: KafkaSettings,
) -> None:
    ingest = start_ingest(topics, FLEET_ACK_TIMEOUT_S="3")
    fleet = Fleet(
        VEHICLES, seed=4, fleet_id="fleet-a", start_time_us=time.time_ns() // 1000 - 3600 * 10**6
    )
    firsts = [1 + s * VEHICLES // STREAMS for s in range(STREAMS)] + [VEHICLES + 1]
    outage: dict[str, float] = {}

    async def chaos(sender: Sender) -> None:
        # Stop the broker once traffic flows, bring it back once a client saw UNAVAILABLE.
        while sender.stats.accepted < 3000:
            await asyncio.sleep(0.05)
        outage["stopped_at_acked"] = sender.stats.accepted
        await asyncio.to_thread(kafka.stop)
        try:
            deadline = time.monotonic() + 90
            while not sender.stats.errors["UNAVAILABLE"] and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        finally:
            await asyncio.to_thread(kafka.start)

    async def run() -> Sender:
        async with Sender(
            ingest.address, token=ingest.token_a, streams=STREAMS, window=4, backoff_s=(0.1, 2.0)
        ) as sender:
            trouble = asyncio.create_task(chaos(sender))
            batchers = [Batcher(60) for _ in range(STREAMS)]
            try:
                for _ in range(TICKS):
                    tick = fleet.tick()
                    cuts = np.searchsorted(tick.vehicle, firsts).tolist()
                    for s in range(STREAMS):
                        for body, n in batchers[s].feed(
                            encode_tick(tick, slice(cuts[s], cuts[s + 1]))
                        ):
                            await sender.send(s, body, n)
                    await asyncio.sleep(0.005)  # the load's pace: the scenario, not a wait
                for s in range(STREAMS):
                    for body, n in batchers[s].flush():
                        await sender.send(s, body, n)
                await trouble
                assert await sender.drain(timeout=240), "every batch is acknowledged in the end"
            finally:
                if not trouble.done():
                    trouble.cancel()
                    await asyncio.to_thread(kafka.start)
        return sender

    try:
        sender = asyncio.run(run())
    finally:
        kafka.start()  # the session broker is shared: it must be up whatever happened
    stats = sender.stats
    assert stats.errors["UNAVAILABLE"] >= 1, "the client was told the broker was unavailable"
    assert stats.resent_batches >= 1
    assert stats.accepted >= VEHICLES * TICKS

    seen: dict[str, set[int]] = defaultdict(set)
    copies = 0
    # After a restart the group coordinator takes a while to load: wait longer for records.
    records = read_events(kafka_settings, topics.raw, idle_s=15, timeout=240)
    assert len(records) >= stats.accepted
    for msg in records:
        e = decoded(msg, telemetry_pb2.Telemetry)
        copies += 1
        seen[e.vehicle_id].add(e.seq)
    expected = {
        f"fleet-a-veh-{int(n):06d}": set(range(1, int(s) + 1))
        for n, s in zip(fleet.numbers, fleet.seq, strict=True)
    }
    missing = {v: sorted(expected[v] - seen.get(v, set()))[:5] for v in expected}
    assert {v: m for v, m in missing.items() if m} == {}, "every seq of every vehicle is there"
    assert set(seen) == set(expected)
    assert copies >= sum(len(s) for s in expected.values())  # duplicates allowed, never gaps
