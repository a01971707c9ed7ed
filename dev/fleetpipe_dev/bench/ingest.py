"""Ingest's benchmark: CPU µs per event by batch size, and sustained events/s fed by the simulator.

Ingest runs as its own process, as in production, against the local broker. The client (this
process) sends pre-encoded batches of simulated telemetry over several gRPC streams as fast as
ingest acknowledges them; the clock and ingest's CPU counter (user + system, librdkafka's
threads included) run from the first measured batch until the last acknowledgement, after a
warm-up that connects the streams and the producer. The client's own CPU is not counted — but
it shares the machine's two cores with ingest and the broker.

The sustained figure feeds ingest from the live simulator (generation, encoding and sending in
this process) as fast as ingest takes it, over a fixed wall-clock window.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.core.topics import TopicSpec
from fleetpipe_dev.bench.harness import RunResult, Summary, markdown_table
from fleetpipe_dev.bench.session import BenchSession
from fleetpipe_dev.stack.devstack import DevStack
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_dev.testing import ServiceProcess, end_offsets, service_env, wait_for
from fleetpipe_loadtest.fleet import Fleet
from fleetpipe_loadtest.sender import Sender
from fleetpipe_loadtest.wire import Batcher, encode_tick

TOKEN = secrets.token_urlsafe(24)  # a throw-away token for the benchmark's own ingest
FLEET = "fleet-bench"
BATCH_SIZES = (1, 10, 100, 500)
STREAMS = 4


def events_for(batch_size: int, events: int) -> int:
    """Fewer events for tiny batches: a batch of one costs a whole RPC."""
    return {1: events // 15, 10: events // 3}.get(batch_size, events)


@dataclass(frozen=True)
class BenchConfig:
    events: int
    runs: int
    partitions: int
    sustained_s: float
    vehicles: int
    report: Path


def encode_batches(batch_size: int, events: int, vehicles: int = 5000) -> list[list[bytes]]:
    """Batch bodies per stream, from simulated ticks ending now (so none is late or early)."""
    ticks = -(-events // vehicles)
    start = time.time_ns() // 1000 - ticks * 1_000_000
    fleet = Fleet(vehicles, seed=11, fleet_id=FLEET, start_time_us=start)
    firsts = [1 + s * vehicles // STREAMS for s in range(STREAMS)] + [vehicles + 1]
    batchers = [Batcher(batch_size) for _ in range(STREAMS)]
    out: list[list[bytes]] = [[] for _ in range(STREAMS)]
    total = 0
    for _ in range(ticks):
        tick = fleet.tick()
        cuts = np.searchsorted(tick.vehicle, firsts).tolist()
        for s in range(STREAMS):
            for body, n in batchers[s].feed(encode_tick(tick, slice(cuts[s], cuts[s + 1]))):
                out[s].append(body)
                total += n
        if total >= events:
            break
    return out


def start_ingest(
    kafka: KafkaSettings,
    topics: Topics,
    log: Path,
    extra: dict[str, str] | None = None,
    *,
    token: str = TOKEN,
    fleet: str = FLEET,
) -> tuple[ServiceProcess, str]:
    """Ingest as its own process on ``kafka``, serving gRPC on a free loopback port to
    ``token`` (fleet ``fleet``); returned once ready, with the address it serves on."""
    port = free_port()
    env = service_env(
        kafka,
        topics,
        {
            "FLEET_GRPC_HOST": "127.0.0.1",
            "FLEET_GRPC_PORT": str(port),
            "FLEET_AUTH__TOKENS": json.dumps({token: fleet}),
            **(extra or {}),
        },
    )
    proc = ServiceProcess("fleetpipe.ingest", env, log).start()

    def ready() -> bool:
        proc.check_alive()
        return proc.ready()

    try:
        wait_for(ready, timeout=60, interval=0.05, what="ingest to be ready")
    except BaseException:
        proc.kill()
        raise
    return proc, f"127.0.0.1:{port}"


async def _send_all(
    address: str, bodies: list[list[bytes]], batch_size: int, proc: ServiceProcess
) -> RunResult:
    # per stream: connect, fetch metadata, get a producer id
    warm = max(1, min(2000 // batch_size, min(len(b) for b in bodies) // 10))
    async with Sender(address, token=TOKEN, streams=STREAMS, window=16) as sender:
        for s in range(STREAMS):
            for body in bodies[s][:warm]:
                await sender.send(s, body, batch_size)
        await wait_acked(sender)
        acked0, t0, cpu0 = sender.stats.acked, time.monotonic(), proc.cpu_seconds()
        senders = [
            asyncio.create_task(_feed(sender, s, bodies[s][warm:], batch_size))
            for s in range(STREAMS)
        ]
        await asyncio.gather(*senders)
        await wait_acked(sender)
        t1, cpu1 = time.monotonic(), proc.cpu_seconds()
        acked = sender.stats.acked - acked0
        if sender.stats.rejected or sender.stats.errors:
            raise RuntimeError(f"the benchmark's events were refused: {sender.stats}")
        await sender.drain(timeout=60)
    return RunResult(f"batch {batch_size}", acked, t1 - t0, cpu1 - cpu0)


async def _feed(sender: Sender, stream: int, bodies: list[bytes], batch_size: int) -> None:
    for body in bodies:
        await sender.send(stream, body, batch_size)


async def wait_acked(sender: Sender, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while sender.unacked():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{sender.unacked()} events still unacknowledged")
        await asyncio.sleep(0.002)


async def _sustained(
    address: str, proc: ServiceProcess, vehicles: int, seconds: float, warmup_s: float = 10.0
) -> tuple[RunResult, float]:
    """Simulator → ingest as fast as ingest acknowledges; returns the run and client µs/event."""
    # The simulated clock may run ahead of the wall clock: start it in the past.
    fleet = Fleet(
        vehicles, seed=12, fleet_id=FLEET, start_time_us=time.time_ns() // 1000 - 240_000_000
    )
    firsts = [1 + s * vehicles // STREAMS for s in range(STREAMS)] + [vehicles + 1]
    batchers = [Batcher(500) for _ in range(STREAMS)]
    async with Sender(address, token=TOKEN, streams=STREAMS, window=16) as sender:
        begin = time.monotonic()
        mark: tuple[float, int, float, float] | None = None
        while True:
            now = time.monotonic()
            if mark is None and now - begin >= warmup_s:
                mark = (now, sender.stats.acked, proc.cpu_seconds(), time.process_time())
            if mark is not None and now - mark[0] >= seconds:
                break
            tick = fleet.tick()
            cuts = np.searchsorted(tick.vehicle, firsts).tolist()
            for s in range(STREAMS):
                for body, n in batchers[s].feed(encode_tick(tick, slice(cuts[s], cuts[s + 1]))):
                    await sender.send(s, body, n)
            await asyncio.sleep(0)
        t1, acked1, cpu1, own1 = (
            time.monotonic(),
            sender.stats.acked,
            proc.cpu_seconds(),
            time.process_time(),
        )
        if sender.stats.rejected:
            raise RuntimeError(f"the simulator's events were refused: {sender.stats}")
    t0, acked0, cpu0, own0 = mark
    events = acked1 - acked0
    result = RunResult(f"sustained, {vehicles:,} vehicles", events, t1 - t0, cpu1 - cpu0)
    return result, (own1 - own0) / max(events, 1) * 1e6


def run_ingest_bench(stack: DevStack, config: BenchConfig, console: Console) -> list[Summary]:
    session = BenchSession.start(
        stack, name="bench", partitions=config.partitions, report=config.report, console=console
    )
    kafka = session.kafka
    topics = session.topics()
    results: dict[str, list[RunResult]] = {}
    client_us: list[float] = []
    load = [os.getloadavg()[0]]
    with session:
        session.create_topics(
            [TopicSpec(topics.raw, config.partitions), TopicSpec(topics.deadletter, 1)]
        )
        logs = session.logs()
        for run in range(1, config.runs + 1):
            # Alternating the batch sizes spreads the machine's drift over all of them.
            for size in BATCH_SIZES:
                bodies = encode_batches(size, events_for(size, config.events))
                proc, address = start_ingest(kafka, topics, logs / f"ingest-{size}-{run}.log")
                try:
                    result = asyncio.run(_send_all(address, bodies, size, proc))
                finally:
                    proc.stop()
                results.setdefault(result.label, []).append(result)
                console.print(
                    f"run {run}/{config.runs} {result.label:>10} {result.events_per_s:>10,.0f} "
                    f"events/s {result.cpu_us_per_event:6.2f} µs CPU/event "
                    f"(load {os.getloadavg()[0]:.1f})"
                )
            if config.sustained_s > 0:
                proc, address = start_ingest(kafka, topics, logs / f"ingest-sustained-{run}.log")
                try:
                    result, own = asyncio.run(
                        _sustained(address, proc, config.vehicles, config.sustained_s)
                    )
                finally:
                    proc.stop()
                results.setdefault(result.label, []).append(result)
                client_us.append(own)
                console.print(
                    f"run {run}/{config.runs} sustained {result.events_per_s:>10,.0f} events/s "
                    f"{result.cpu_us_per_event:6.2f} µs CPU/event in ingest, {own:.2f} µs in the "
                    f"simulator (load {os.getloadavg()[0]:.1f})"
                )
            load.append(os.getloadavg()[0])
        stored = sum(end_offsets(kafka, topics.raw).values())
    summaries = [Summary.of(label, rs) for label, rs in results.items()]
    _write_report(session, config, summaries, results, client_us, load, stored)
    session.finish(summaries)
    return summaries


def _write_report(
    session: BenchSession,
    config: BenchConfig,
    summaries: list[Summary],
    results: dict[str, list[RunResult]],
    client_us: list[float],
    load: list[float],
    stored: int,
) -> None:
    sample = Fleet(100, seed=1).tick().message(0).ByteSize()
    md = [
        *session.heading("Ingest: CPU per event and sustained throughput"),
        "One ingest process (`fleetpipe.ingest`) on the local broker (one node, raw topic of "
        f"{config.partitions} partitions, lz4, acks=all, idempotent producer); telemetry from "
        f"the simulator, ~{sample} bytes per event. The client sends pre-encoded batches over "
        f"{STREAMS} gRPC streams (16 batches in flight each) as fast as ingest acknowledges; "
        "CPU is ingest's own (user + system, librdkafka's threads included), from the first "
        "measured batch to the last acknowledgement — an acknowledgement means Kafka confirmed "
        "every event of the batch. Per batch size "
        + ", ".join(f"{s}: {events_for(s, config.events):,} events" for s in BATCH_SIZES)
        + f" per run. The sustained row feeds ingest from the live simulator ({config.vehicles:,}"
        f" vehicles, batches of 500, generated in the client process) for "
        f"{config.sustained_s:.0f} s after a 10 s warm-up.",
        "",
        markdown_table(summaries),
        "",
        f"The simulator itself (generating, encoding and sending) used "
        f"{_median(client_us):.2f} µs CPU per event (median) in the client process."
        if client_us
        else "",
        "",
        "The machine is shared: the 1-minute load average was "
        + ", ".join(f"{x:.1f}" for x in load)
        + " at the start and after each round; medians over the runs are quoted. The raw "
        f"topic held {stored:,} Kafka records at the end (packs of up to 500 events; every "
        "run's events, warm-ups included).",
        "",
    ]
    session.write_report(
        md,
        results,
        fields={
            "load_average": load,
            "events": {str(s): events_for(s, config.events) for s in BATCH_SIZES},
            "partitions": config.partitions,
            "streams": STREAMS,
            "sustained_vehicles": config.vehicles,
            "sustained_s": config.sustained_s,
            "simulator_cpu_us_per_event": client_us,
        },
        digits=2,
    )


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else 0.0
