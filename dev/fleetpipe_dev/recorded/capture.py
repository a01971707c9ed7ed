"""Recording the raw topic of a real run: the load driver into a real ingest and Kafka.

How the recording in ``tests/data/recorded-input`` was made, and how to make one again
(``fleetpipe dev record-input``). A broker of its own, ingest as its own process, and the
simulated fleet sent over several gRPC streams at a speed-up of the simulated clock; then the
raw topic is read back and its events stored with their partition and record, exactly as ingest
wrote them. The file is what arrived, not what the simulator meant to send: the interleaving of
the streams in each partition and the pack boundaries are the run's own.

A real input is not as tidy as a simulator's output, so the run adds what networks and devices
do to it:

- a *lagging stream*: one stream's batches leave ``lag_s`` of simulated time late (a backhaul
  that queues), so in each partition its vehicles' events arrive behind the others' (out of
  order across streams, in order per vehicle);
- a *re-sent batch*: a batch already acknowledged is sent again ``resend_after_s`` later, as a
  client does when the acknowledgement was lost — the raw topic holds its events twice;
- a *gap*: one stream's batches between ``gap_s`` are never sent (a gateway that lost its
  buffer), so its vehicles' seqs and times jump.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import tempfile
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.console import Console

from fleetpipe.core.kafka import build_admin
from fleetpipe.core.packs import events_of
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.core.topics import TopicSpec
from fleetpipe.pb.v1 import telemetry_pb2
from fleetpipe_dev.bench.ingest import start_ingest
from fleetpipe_dev.recorded.fileformat import RecordedEvent, write_recording
from fleetpipe_dev.stack.kafka import KafkaBroker, kafka_libs
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import ServiceProcess, read_all
from fleetpipe_loadtest.fleet import Fleet
from fleetpipe_loadtest.scenarios import ScenarioMix
from fleetpipe_loadtest.sender import Sender
from fleetpipe_loadtest.wire import Batcher, encode_tick

FLEET = "fleet-rec"
EVENTS_FILE = "telemetry.bin.gz"
REGISTRY_FILE = "vehicles.csv"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class CaptureOptions:
    """The run a recording comes from (stored in its manifest)."""

    vehicles: int = 200
    seconds: float = 900.0
    rate_hz: float = 0.5
    seed: int = 2026
    scenarios: str = "all=0.25"
    partitions: int = 6
    streams: int = 4
    batch_size: int = 100
    window: int = 8
    speedup: float = 24.0  # simulated seconds per real second
    lag_stream: int = 3
    lag_s: float = 90.0
    resend_stream: int = 1
    resend_at_s: float = 300.0
    resend_after_s: float = 20.0
    gap_stream: int = 2
    # Longer than detection's offline threshold (10 min): the gap shows as offline episodes.
    gap_s: tuple[float, float] = (150.0, 780.0)

    def __post_init__(self) -> None:
        chosen = (self.lag_stream, self.resend_stream, self.gap_stream)
        if len(set(chosen)) != 3 or not all(0 <= s < self.streams for s in chosen):
            raise ValueError(f"lag, resend and gap need three different streams of {self.streams}")
        if not 0 <= self.gap_s[0] < self.gap_s[1] <= self.seconds:
            raise ValueError(f"the gap {self.gap_s} must lie within the run's {self.seconds} s")


@dataclass
class _Irregularities:
    resent_events: int = 0
    dropped_events: int = 0
    dropped_vehicles: int = 0
    lagged_events: int = 0


def capture(out: Path, options: CaptureOptions, console: Console) -> dict[str, object]:
    """Run the fleet into a broker and ingest of its own; write the recording into ``out``."""
    work = Path(tempfile.mkdtemp(prefix="fleetpipe-record-"))
    broker = KafkaBroker(
        home=work / "kafka", port=free_port(), controller_port=free_port(), libs=kafka_libs()
    )
    pid = broker.start()
    try:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap)
        topics = Topics.with_suffix("recording")
        build_admin(kafka).ensure_topics(
            [TopicSpec(topics.raw, options.partitions), TopicSpec(topics.deadletter, 1)]
        )
        token = secrets.token_urlsafe(24)
        ingest, address = start_ingest(kafka, topics, work / "ingest.log", token=token, fleet=FLEET)
        try:
            fleet = Fleet(
                options.vehicles,
                seed=options.seed,
                fleet_id=FLEET,
                # Ending now: no event is from the future, and none older than the lag.
                start_time_us=time.time_ns() // 1000 - round(options.seconds * 1e6),
                rate_hz=options.rate_hz,
                scenarios=ScenarioMix.parse(options.scenarios),
            )
            odd = asyncio.run(_drive(address, token, fleet, options, console))
        finally:
            _stop(ingest)
        events = _read_back(kafka, topics.raw)
        deadletters = len(read_all(kafka, topics.deadletter, idle_s=0.5))
    finally:
        broker.stop(pid)
        shutil.rmtree(work, ignore_errors=True)
    if deadletters:
        raise RuntimeError(f"ingest dead-lettered {deadletters} events of the recording run")
    out.mkdir(parents=True, exist_ok=True)
    write_recording(out / EVENTS_FILE, events)
    fleet.write_registry(out / REGISTRY_FILE)
    manifest = _manifest(options, events, odd, fleet)
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    console.print(
        f"{len(events):,} events in {manifest['records']:,} records over {options.partitions} "
        f"partitions: {out / EVENTS_FILE} ({(out / EVENTS_FILE).stat().st_size:,} bytes)"
    )
    return manifest


def _stop(proc: ServiceProcess) -> None:
    if proc.alive():
        proc.stop()


async def _drive(
    address: str, token: str, fleet: Fleet, options: CaptureOptions, console: Console
) -> _Irregularities:
    streams = options.streams
    vehicles = options.vehicles
    firsts = [1 + s * vehicles // streams for s in range(streams)] + [vehicles + 1]
    batchers = [Batcher(options.batch_size) for _ in range(streams)]
    ticks = round(options.seconds * options.rate_hz)
    tick_wall = 1.0 / options.rate_hz / options.speedup
    lag_ticks = round(options.lag_s * options.rate_hz)
    resend_ticks = round(options.resend_after_s * options.rate_hz)
    held: deque[tuple[int, bytes, int]] = deque()  # the lagging stream's (due tick, batch)
    resend: tuple[int, bytes, int] | None = None
    odd = _Irregularities()
    gap_vehicles: set[int] = set()
    t0 = time.monotonic()
    async with Sender(address, token=token, streams=streams, window=options.window) as sender:
        for k in range(ticks + lag_ticks + 1):
            delay = t0 + k * tick_wall - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now_s = k / options.rate_hz
            ready: list[tuple[int, bytes, int]] = []
            if k < ticks:
                tick = fleet.tick()
                cuts = np.searchsorted(tick.vehicle, firsts).tolist()
                whole = encode_tick(tick)
                for s in range(streams):
                    if s == options.gap_stream and options.gap_s[0] <= now_s < options.gap_s[1]:
                        gap_vehicles.update(tick.vehicle[cuts[s] : cuts[s + 1]].tolist())
                    batcher = batchers[s]
                    # A tick's events leave within the tick, as a live fleet's do.
                    cut = [*batcher.feed(whole.rows(cuts[s], cuts[s + 1])), *batcher.flush()]
                    ready += [(s, body, n) for body, n in cut]
            for s, body, n in ready:
                if s == options.gap_stream and options.gap_s[0] <= now_s < options.gap_s[1]:
                    odd.dropped_events += n
                elif s == options.lag_stream:
                    held.append((k + lag_ticks, body, n))
                    odd.lagged_events += n
                else:
                    await sender.send(s, body, n)
                    due = now_s >= options.resend_at_s
                    if s == options.resend_stream and resend is None and due:
                        resend = (k + resend_ticks, body, n)
            while held and held[0][0] <= k:
                _, body, n = held.popleft()
                await sender.send(options.lag_stream, body, n)
            if resend is not None and resend[0] == k:
                await sender.send(options.resend_stream, resend[1], resend[2])
                odd.resent_events = resend[2]
        if not await sender.drain(timeout=120):
            raise TimeoutError(f"{sender.unacked()} events of the recording run unacknowledged")
        stats = sender.stats
    if stats.rejected or not odd.resent_events:
        raise RuntimeError(f"the recording run did not go as planned: {stats}, {odd}")
    odd.dropped_vehicles = len(gap_vehicles)
    console.print(
        f"sent {stats.sent:,}, acknowledged {stats.acked:,} ({stats.late:,} flagged late) in "
        f"{time.monotonic() - t0:.0f} s; resent {odd.resent_events}, "
        f"dropped {odd.dropped_events} of {odd.dropped_vehicles} vehicles"
    )
    return odd


def _read_back(kafka: KafkaSettings, topic: str) -> list[RecordedEvent]:
    """The raw topic's events, each partition's in topic order (offset, then place in a pack)."""
    out: list[RecordedEvent] = []
    for msg in read_all(kafka, topic, idle_s=1.0, timeout=120):
        partition, offset = msg.partition(), msg.offset()
        assert partition is not None and offset is not None
        for event in events_of(msg):
            value = event.value()
            assert value is not None, f"a tombstone on {topic} [{partition}] @ {offset}"
            out.append(RecordedEvent(partition, offset, value))
    # Stable: the events of one pack keep their order.
    out.sort(key=lambda e: (e.partition, e.record))
    return out


def _manifest(
    options: CaptureOptions, events: list[RecordedEvent], odd: _Irregularities, fleet: Fleet
) -> dict[str, object]:
    seen: Counter[tuple[str, int]] = Counter()
    for e in events:
        t = telemetry_pb2.Telemetry.FromString(e.value)
        seen[(t.vehicle_id, t.seq)] += 1
    return {
        "what": "the raw topic of a real run: load driver -> ingest -> Kafka (see "
        "fleetpipe_dev.recorded.capture); kept fixed on purpose",
        "recorded_on": time.strftime("%Y-%m-%d", time.gmtime()),
        "fleet_id": FLEET,
        "options": asdict(options),
        "events": len(events),
        "records": len({(e.partition, e.record) for e in events}),
        "partitions": options.partitions,
        "key_groups": KafkaSettings().key_groups,
        "duplicated_events": sum(n - 1 for n in seen.values() if n > 1),
        "lagged_events": odd.lagged_events,
        "dropped_events": odd.dropped_events,
        "dropped_vehicles": odd.dropped_vehicles,
        "injected_episodes": len(fleet.ground_truth(include_active=True)),
    }
