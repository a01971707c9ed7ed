"""Device protocols against each other: events/s and CPU µs per event for gRPC, MQTT and HTTP.

For each protocol, the way in runs as its own process, as in production — ingest for gRPC and
HTTP (its HTTP listener on), the MQTT bridge with the dev stack's Mosquitto for MQTT — and this
process sends the same pre-encoded simulated events through the load driver's sender for that
protocol (``fleetpipe_loadtest.transport``) as fast as they are acknowledged. A run's clock
starts at its first measured send, after a warm-up, and stops when the way in counts every
event as confirmed by Kafka (its ``fleetpipe_ingest_confirmed_events_total``, read every 50 ms;
for MQTT the broker's PUBACK comes before Kafka has the event, so the acknowledgements alone
would flatter it). CPU is counted per component over the same window: the way in (ingest
or the bridge), the broker (Mosquitto, MQTT only) and the client (this process: encoding JSON
for HTTP, one publish per event for MQTT). Every figure is also given as a ratio to gRPC's in
the same run. Protocols alternate within each run, so the machine's drift spreads over all.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import psutil
from rich.console import Console

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.core.topics import TopicSpec
from fleetpipe.registry import Vehicle
from fleetpipe_dev.bench.harness import RunResult, Summary
from fleetpipe_dev.bench.ingest import STREAMS, encode_batches
from fleetpipe_dev.bench.session import BenchSession
from fleetpipe_dev.stack.devstack import DevStack
from fleetpipe_dev.stack.procs import StartError, free_port
from fleetpipe_dev.testing import ServiceProcess, service_env, wait_for
from fleetpipe_loadtest.transport import BatchSender, Transport, make_sender

TOKEN = secrets.token_urlsafe(24)  # a throw-away token for the benchmark's own fleet
FLEET = "fleet-bench"
VEHICLES = 5000
BATCH = 500


def confirmed_events(proc: ServiceProcess) -> int:
    """The events a way-in process has seen Kafka confirm, from its metrics (0 before it serves)."""
    found = _CONFIRMED.search(proc.get("/metrics")[1])
    return int(float(found.group(1))) if found else 0


_CONFIRMED = re.compile(r"^fleetpipe_ingest_confirmed_events_total (\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class ProtocolBenchConfig:
    events: int
    runs: int
    partitions: int
    protocols: tuple[Transport, ...]
    report: Path


@dataclass(frozen=True)
class ProtocolRun:
    """One protocol's run: events over the window and CPU seconds by component."""

    protocol: Transport
    events: int
    wall_s: float
    cpu_s: dict[str, float]

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s if self.wall_s else 0.0

    def us_per_event(self, component: str) -> float:
        return self.cpu_s.get(component, 0.0) / self.events * 1e6 if self.events else 0.0

    @property
    def total_us_per_event(self) -> float:
        return sum(self.cpu_s.values()) / self.events * 1e6 if self.events else 0.0


def _way_in(
    protocol: Transport, kafka: KafkaSettings, topics: Topics, stack: DevStack, log: Path
) -> tuple[ServiceProcess, str]:
    """Start ingest (gRPC, HTTP) or the MQTT bridge; the process and the sender's target."""
    if protocol is Transport.MQTT:
        broker = stack.mosquitto
        env = service_env(
            kafka,
            topics,
            {
                "FLEET_MQTT__HOST": "127.0.0.1",
                "FLEET_MQTT__PORT": str(broker.port),
                "FLEET_MQTT__PASSWORD": broker.bridge_password,
                "FLEET_MQTT__SHARE_GROUP": f"bench-{topics.raw}",
                "FLEET_MQTT__CLIENT_ID": f"bench-{log.stem}",
                # A run's bridge never comes back: its session (and whatever the broker would
                # queue for it) goes a minute after it leaves, not a day.
                "FLEET_MQTT__SESSION_EXPIRY_S": "60",
            },
        )
        proc = ServiceProcess("fleetpipe.ingest.mqtt", env, log).start()
        target = broker.address
    else:
        grpc_port, http_port = free_port(), free_port()
        env = service_env(
            kafka,
            topics,
            {
                "FLEET_GRPC_HOST": "127.0.0.1",
                "FLEET_GRPC_PORT": str(grpc_port),
                "FLEET_HTTP__HOST": "127.0.0.1",
                "FLEET_HTTP__PORT": str(http_port),
                "FLEET_AUTH__TOKENS": json.dumps({TOKEN: FLEET}),
            },
        )
        proc = ServiceProcess("fleetpipe.ingest", env, log).start()
        port = http_port if protocol is Transport.HTTP else grpc_port
        target = f"127.0.0.1:{port}"

    def ready() -> bool:
        proc.check_alive()
        return proc.ready()

    try:
        wait_for(ready, timeout=60, interval=0.05, what=f"the {protocol.value} way in")
    except BaseException:
        proc.kill()
        raise
    return proc, target


async def _run(
    protocol: Transport,
    target: str,
    bodies: list[list[bytes]],
    proc: ServiceProcess,
    broker_pid: int | None,
) -> ProtocolRun:
    def cpu() -> dict[str, float]:
        out = {"way in": proc.cpu_seconds(), "client": time.process_time()}
        if broker_pid is not None:
            times = psutil.Process(broker_pid).cpu_times()
            out["mqtt broker"] = times.user + times.system
        return out

    sender: BatchSender = make_sender(
        protocol,
        target,
        token=TOKEN,
        fleet_id=FLEET,
        streams=STREAMS,
        window=16,
        batch_size=BATCH,
        client_tag=f"bench-{os.getpid()}",
    )

    async def raw_holds(count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while confirmed_events(proc) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Kafka confirmed {confirmed_events(proc)} of {count} events")
            await asyncio.sleep(0.05)

    # Connections, metadata and producer ids first: the warm-up is not measured.
    warm = max(1, min(len(b) for b in bodies) // 10)
    async with sender:
        for s in range(STREAMS):
            for body in bodies[s][:warm]:
                await sender.send(s, body, BATCH)
        await raw_holds(warm * BATCH * STREAMS, 120)
        start_raw, t0, cpu0 = confirmed_events(proc), time.monotonic(), cpu()
        events = 0
        for s in range(STREAMS):
            for body in bodies[s][warm:]:
                await sender.send(s, body, BATCH)
                events += BATCH
        await raw_holds(start_raw + events, 300)
        t1, cpu1 = time.monotonic(), cpu()
    spent = {k: cpu1[k] - cpu0[k] for k in cpu0}
    return ProtocolRun(protocol, events, t1 - t0, spent)


def run_protocol_bench(
    stack: DevStack, config: ProtocolBenchConfig, console: Console
) -> list[ProtocolRun]:
    session = BenchSession.start(
        stack, name="protocols", partitions=config.partitions, report=config.report,
        console=console,
    )  # fmt: skip
    kafka = session.kafka
    broker_pid: int | None = None
    if Transport.MQTT in config.protocols:
        broker_pid = stack.mosquitto_pid()
        if broker_pid is None:
            raise StartError(
                "the MQTT runs need the dev stack's Mosquitto (apt-get install mosquitto)"
            )
        vehicles = [Vehicle(f"{FLEET}-veh-{n:06d}", FLEET) for n in range(1, VEHICLES + 1)]
        stack.mosquitto.write_auth(vehicles, {TOKEN: FLEET})
        stack.mosquitto.reload(broker_pid)
    runs: list[ProtocolRun] = []
    with session:
        logs = session.logs()
        for run in range(1, config.runs + 1):
            bodies = encode_batches(BATCH, config.events, VEHICLES)
            for protocol in config.protocols:
                topics = session.topics(f"{protocol.value}{run}")
                session.create_topics(
                    [TopicSpec(topics.raw, config.partitions), TopicSpec(topics.deadletter, 1)]
                )
                proc, target = _way_in(
                    protocol, kafka, topics, stack, logs / f"{protocol.value}-{run}.log"
                )

                try:
                    result = asyncio.run(
                        _run(
                            protocol,
                            target,
                            bodies,
                            proc,
                            broker_pid if protocol is Transport.MQTT else None,
                        )
                    )
                finally:
                    proc.stop()
                runs.append(result)
                console.print(
                    f"run {run}/{config.runs} {protocol.value:>5} "
                    f"{result.events_per_s:>9,.0f} events/s "
                    + ", ".join(f"{k} {result.us_per_event(k):.1f}" for k in sorted(result.cpu_s))
                    + f" µs CPU/event (load {os.getloadavg()[0]:.1f})"
                )
            session.delete_topics()
    _write_report(session, config, runs)
    return runs


def _write_report(
    session: BenchSession, config: ProtocolBenchConfig, runs: list[ProtocolRun]
) -> None:
    def med(protocol: Transport, value: Callable[[ProtocolRun], float]) -> float:
        return float(median(value(r) for r in runs if r.protocol is protocol))

    grpc = Transport.GRPC
    components = sorted({k for r in runs for k in r.cpu_s})
    md = session.heading("Device protocols: gRPC, MQTT and HTTP into the raw topic")
    md += [
        f"{config.events:,} simulated events per protocol and run ({VEHICLES:,} vehicles, "
        f"batches of {BATCH}, {STREAMS} streams or connections), {config.runs} runs, medians; "
        f"raw topic of {config.partitions} partitions. A run ends when the raw topic holds "
        "every event.",
        "",
        "| protocol | events/s | × gRPC | "
        + " | ".join(f"{c} µs/event" for c in components)
        + " | total µs/event | × gRPC |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in components) + " | ---: | ---: |",
    ]
    have_grpc = any(r.protocol is grpc for r in runs)
    for protocol in config.protocols:
        rate = med(protocol, lambda r: r.events_per_s)
        total = med(protocol, lambda r: r.total_us_per_event)
        per = [
            float(median(r.us_per_event(c) for r in runs if r.protocol is protocol))
            for c in components
        ]
        base_rate = med(grpc, lambda r: r.events_per_s) if have_grpc else float("nan")
        base_total = med(grpc, lambda r: r.total_us_per_event) if have_grpc else float("nan")
        md.append(
            f"| {protocol.value} | {rate:,.0f} | {rate / base_rate:.2f} | "
            + " | ".join(f"{p:.1f}" for p in per)
            + f" | {total:.1f} | {total / base_total:.2f} |"
        )
    results: dict[str, list[RunResult]] = {}
    for r in runs:
        results.setdefault(r.protocol.value, []).append(
            RunResult(r.protocol.value, r.events, r.wall_s, sum(r.cpu_s.values()))
        )
    session.write_report(
        md,
        results,
        fields={
            "runs_by_component": [
                {"protocol": r.protocol.value, "events": r.events, "wall_s": r.wall_s, **r.cpu_s}
                for r in runs
            ]
        },
    )
    session.finish([Summary.of(p, rs) for p, rs in results.items()])
