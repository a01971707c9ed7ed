"""The main job: bring up the local stack and push simulated telemetry through the pipeline.

Today the pipeline is the core loop (a passthrough worker in exactly-once mode); each service
joins it as it lands. Ctrl-C stops every process this command started.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from fleetpipe.core.kafka import Admin, Producer, TopicSpec
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.devstack.stack import DevStack
from fleetpipe.pb.v1 import telemetry_pb2
from fleetpipe.testing import (
    ServiceProcess,
    commit_to_end,
    committed_total,
    service_env,
)
from fleetpipe_loadtest import synthetic

PASSTHROUGH_TOPIC = "fleet.passthrough.v1"


def run_demo(
    stack: DevStack,
    *,
    vehicles: int,
    events: int,
    partitions: int,
    keep_running: bool,
    console: Console,
) -> int:
    topics = Topics()
    console.rule("[bold]FleetPipe demo")
    stack.up(topics=topics, partitions=partitions, say=console.print)
    kafka = stack.kafka_settings
    Admin(kafka).ensure_topics([TopicSpec(PASSTHROUGH_TOPIC, partitions)])
    group = "fleetpipe-demo-passthrough"
    # The demo shows this run's events only: its group starts at the topic's current end.
    start_done = commit_to_end(kafka, group, topics.raw)
    logs = stack.settings.home / "logs"
    worker = ServiceProcess(
        "fleetpipe.passthrough",
        service_env(
            kafka,
            topics,
            {
                "FLEET_INPUT_TOPIC": topics.raw,
                "FLEET_OUTPUT_TOPIC": PASSTHROUGH_TOPIC,
                "FLEET_GROUP_ID": group,
                "FLEET_MODE": "exactly-once",
                "FLEET_INSTANCE_ID": "demo",
            },
        ),
        logs / "passthrough.log",
    )
    started = time.monotonic()
    produced = 0
    try:
        worker.start()
        console.print(f"simulating {vehicles:,} vehicles, {events:,} events → {topics.raw}")
        chunk = max(1000, vehicles)
        producer = Producer(kafka, client_id="fleetpipe-demo")
        with Live(console=console, refresh_per_second=4) as live:
            for offset in range(0, events, chunk):
                n = min(chunk, events - offset)
                for e in _slice(vehicles, start=offset, count=n):
                    producer.produce(topics.raw, e.SerializeToString(), e.vehicle_id)
                producer.poll(0)
                produced += n
                live.update(
                    _progress(produced, events, _done(kafka, group, topics, start_done), started)
                )
                worker.check_alive()
            producer.flush()
            while (done := _done(kafka, group, topics, start_done)) < produced:
                worker.check_alive()
                live.update(_progress(produced, events, done, started))
                time.sleep(0.25)
            live.update(_progress(produced, events, done, started))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping what the demo started[/]")
        return 130
    finally:
        worker.stop()
        if not keep_running:
            stack.down(say=console.print)
    elapsed = time.monotonic() - started
    _summary(console, stack, produced, done, elapsed, logs)
    return 0


def _slice(vehicles: int, *, start: int, count: int) -> list[telemetry_pb2.Telemetry]:
    return [
        synthetic.telemetry(i % vehicles, i // vehicles + 1) for i in range(start, start + count)
    ]


def _done(kafka: KafkaSettings, group: str, topics: Topics, start: int) -> int:
    return committed_total(kafka, group, topics.raw) - start


def _progress(produced: int, total: int, done: int, started: float) -> Table:
    elapsed = max(time.monotonic() - started, 1e-6)
    table = Table.grid(padding=(0, 2))
    table.add_row(
        f"sent {produced:,}/{total:,}",
        f"processed {done:,}",
        f"lag {max(0, produced - done):,}",
        f"{done / elapsed:,.0f} events/s",
        f"{elapsed:.0f}s",
    )
    return table


def _summary(
    console: Console, stack: DevStack, produced: int, done: int, elapsed: float, logs: Path
) -> None:
    table = Table(title="summary", show_header=False)
    table.add_row("events sent", f"{produced:,}")
    table.add_row("events processed (exactly once)", f"{done:,}")
    table.add_row("elapsed", f"{elapsed:.1f}s")
    table.add_row("throughput", f"{done / elapsed:,.0f} events/s" if elapsed else "-")
    table.add_row("kafka", stack.kafka_settings.bootstrap_servers)
    table.add_row("postgresql", stack.postgres_dsn)
    table.add_row("logs", str(logs))
    console.print(table)
