"""The storage writer's throughput into PostgreSQL and its CPU per row, against baseline B.

Enriched telemetry is pre-loaded into a topic; each run starts one writer process on a fresh
schema and lake folder, and the harness measures from the moment it is ready (migrations done,
partitions assigned) until its group has committed every record — and the writer commits
offsets only after the database commit, so that is the rate of rows stored. Baseline B (the
passthrough, at-least-once) reads the same records in the same session. A third variant stores
the same input with erasures on record for other vehicles: the hot store's erasure check at
work (see :mod:`.storage_erasures`).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console

from fleetpipe.core.settings import DeliveryMode
from fleetpipe.core.topics import TopicSpec
from fleetpipe_dev.bench.harness import RunResult, Summary, markdown_table, measure_service
from fleetpipe_dev.bench.session import BenchSession
from fleetpipe_dev.bench.storage_erasures import (
    erasure_cost,
    erasures_label,
    other_vehicles,
    record_erasures,
)
from fleetpipe_dev.cliopts import Report
from fleetpipe_dev.stack.devstack import DevStack, DevStackSettings
from fleetpipe_dev.testing import produce_all, service_env
from fleetpipe_loadtest import records

WITH_LAKE = "storage-writer (PostgreSQL + Parquet)"
VARIANTS = {
    WITH_LAKE: {"FLEET_LAKE__ENABLED": "true"},
    "storage-writer (PostgreSQL only)": {"FLEET_LAKE__ENABLED": "false"},
}
BASELINE = "baseline B (passthrough, at-least-once)"


@dataclass(frozen=True)
class Variant:
    label: str
    env: dict[str, str]
    # Erasures recorded in the run's schema before the writer starts (of other vehicles).
    erasures: int = 0


def variants(erasures: int) -> list[Variant]:
    """The writer's variants of a run: with and without the lake, and with ``erasures`` on
    record (the lake's variant; left out when 0)."""
    found = [Variant(label, env) for label, env in VARIANTS.items()]
    if erasures:
        found.append(Variant(erasures_label(erasures), VARIANTS[WITH_LAKE], erasures))
    return found


def run_storage_bench(
    stack: DevStack,
    *,
    events: int,
    vehicles: int,
    runs: int,
    partitions: int,
    report: Path,
    console: Console,
    erasures: int = 0,
) -> list[Summary]:
    session = BenchSession.start(
        stack, name="bench", partitions=partitions, report=report, console=console
    )
    kafka = session.kafka
    topics = session.topics()
    suffix = session.suffix
    plan = variants(erasures)
    results: dict[str, list[RunResult]] = {v.label: [] for v in plan}
    results[BASELINE] = []
    server_cpu: dict[str, list[float]] = {v.label: [] for v in plan}
    logs = session.logs()
    lake_root = Path(tempfile.mkdtemp(prefix="fleetpipe-bench-lake-"))
    try:
        names = [topics.enriched, topics.alerts, topics.trips, topics.scores, topics.raw]
        session.create_topics(
            [TopicSpec(n, partitions) for n in names] + [TopicSpec(topics.deadletter, 1)]
        )
        console.print(f"pre-loading {events:,} enriched records ({vehicles:,} vehicles)")
        produce_all(
            kafka,
            topics.enriched,
            (
                (e.telemetry.vehicle_id, e.SerializeToString())
                for e in records.enriched_stream(vehicles, events)
            ),
        )
        for run in range(1, runs + 1):
            # Alternating the variants spreads the machine's drift over all of them.
            for variant, planned in enumerate(plan):
                label = planned.label
                schema = f"bench_{suffix}_{run}_{variant}"
                group = f"storage-{schema}"
                if planned.erasures:
                    record_erasures(
                        stack.postgres_dsn, schema, other_vehicles(vehicles, planned.erasures)
                    )
                env = service_env(
                    kafka,
                    topics,
                    {
                        "FLEET_GROUP_ID": group,
                        "FLEET_INSTANCE_ID": f"bench-{run}",
                        "FLEET_POSTGRES__DSN": stack.postgres_dsn,
                        "FLEET_POSTGRES__SCHEMA_NAME": schema,
                        "FLEET_LAKE__PATH": str(lake_root / schema),
                        "FLEET_INPUTS": '["enriched"]',
                        **planned.env,
                    },
                )
                server_cpu0 = server_cpu_s(stack)
                result = measure_service(
                    label=label,
                    module="fleetpipe.storage_writer",
                    env=env,
                    kafka=kafka,
                    group_id=group,
                    input_topic=topics.enriched,
                    total=events,
                    log_file=logs / f"storage-{run}-{variant}.log",
                )
                server_cpu[label].append((server_cpu_s(stack) - server_cpu0) / events * 1e6)
                stored = _count_and_drop(stack.postgres_dsn, schema)
                if stored != events:
                    raise RuntimeError(f"{label}: stored {stored} rows of {events}")
                shutil.rmtree(lake_root / schema, ignore_errors=True)
                results[label].append(result)
                _say(console, run, runs, result)
            group = f"baseline-{suffix}-{run}"
            result = measure_service(
                label=BASELINE,
                module="fleetpipe.passthrough",
                env=service_env(
                    kafka,
                    topics,
                    {
                        "FLEET_INPUT_TOPIC": topics.enriched,
                        "FLEET_OUTPUT_TOPIC": topics.raw,
                        "FLEET_GROUP_ID": group,
                        "FLEET_MODE": DeliveryMode.AT_LEAST_ONCE.value,
                        "FLEET_INSTANCE_ID": f"bench-{run}",
                    },
                ),
                kafka=kafka,
                group_id=group,
                input_topic=topics.enriched,
                total=events,
                log_file=logs / f"baseline-{run}.log",
            )
            results[BASELINE].append(result)
            _say(console, run, runs, result)
    finally:
        session.delete_topics()
        shutil.rmtree(lake_root, ignore_errors=True)
    summaries = [Summary.of(label, rs) for label, rs in results.items()]
    _write_report(
        session,
        summaries,
        results,
        server_cpu,
        events=events,
        vehicles=vehicles,
        partitions=partitions,
        erasures=erasures,
    )
    session.finish(summaries)
    return summaries


def _say(console: Console, run: int, runs: int, r: RunResult) -> None:
    console.print(
        f"run {run}/{runs} {r.label:<40} {r.events_per_s:>10,.0f} rows/s "
        f"{r.cpu_us_per_event:6.1f} µs CPU/row"
    )


def server_cpu_s(stack: DevStack) -> float:
    """CPU used so far by the dev stack's PostgreSQL: the postmaster, its live children (the
    WAL writer, the checkpointer, a backend) and its children that have exited."""
    root = int(stack.state.processes["postgres"]["pid"])
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == root:
            # Backends that have exited (the writer's, once it stops) are counted in the
            # postmaster's children's times.
            total += sum(int(f) for f in fields[11:15])
        elif int(fields[1]) == root:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def _count_and_drop(dsn: str, schema: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".telemetry').fetchone()  # noqa: S608
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return int(row[0]) if row else 0


def _write_report(
    session: BenchSession,
    summaries: list[Summary],
    results: dict[str, list[RunResult]],
    server_cpu: dict[str, list[float]],
    *,
    events: int,
    vehicles: int,
    partitions: int,
    erasures: int,
) -> None:
    by_label = {s.label: s for s in summaries}
    base = by_label[BASELINE].events_per_s[1]
    md = [
        *session.heading("Storage writer: rows/s into PostgreSQL and CPU per row"),
        f"One `fleetpipe.storage_writer` process consumes {events:,} enriched telemetry records "
        f"({vehicles:,} vehicles, protobuf) from a topic of {partitions} partitions and stores "
        "each as a row of the day-partitioned `telemetry` table (batches of 10,000: ptars "
        "decode, numpy-built binary COPY, one transaction each; the latest-position table "
        "refreshed every 5 s), and in the first variant also spools them to Parquet (fsync per "
        "batch, zstd files). Kafka and PostgreSQL 15 run on the same machine. The clock and the "
        "process's CPU counter (user + system, librdkafka's threads included; PostgreSQL's own "
        "CPU is not the client's and is not counted) run from the moment the writer is ready "
        "until its group has committed every record — it commits only after the database "
        "commit, so this is the rate of rows stored. Every run starts on an empty schema and "
        "is checked to have stored every row. Baseline B, the core loop's bare passthrough of "
        "the same records, is measured in the same session.",
        "",
        markdown_table(summaries),
        "",
        "Ratio to baseline B (median rows/s): "
        + ", ".join(
            f"{s.label}: {s.events_per_s[1] / base:.2f}" for s in summaries if s.label != BASELINE
        )
        + ".",
        "",
        "PostgreSQL's own CPU per row (the server processes' user + system time over the whole "
        "run, the writer's start-up queries included), median of the runs: "
        + ", ".join(
            f"{label}: {statistics.median(v):.1f} µs" for label, v in server_cpu.items() if v
        )
        + ".",
        "",
    ]
    if erasures:
        checked = by_label[erasures_label(erasures)]
        md += [erasure_cost(checked, by_label[WITH_LAKE], server_cpu, erasures=erasures), ""]
    session.write_report(
        md,
        results,
        fields={
            "events": events,
            "vehicles": vehicles,
            "partitions": partitions,
            "postgres_cpu_us_per_row": server_cpu,
            "erasures_on_record": erasures,
        },
    )


def command(
    events: Annotated[int, typer.Option(min=10_000, help="records per run")] = 500_000,
    vehicles: Annotated[int, typer.Option(min=1, help="distinct vehicles")] = 10_000,
    runs: Annotated[int, typer.Option(min=1, max=20, help="runs; medians are reported")] = 5,
    partitions: Annotated[int, typer.Option(min=1, help="partitions of the input topic")] = 6,
    erasures: Annotated[
        int,
        typer.Option(
            min=0,
            max=10_000,
            help="erasures on record, of vehicles outside the input, in a variant that "
            "measures the hot store's erasure check (0 leaves it out)",
        ),
    ] = 20,
    report: Report = Path("benchmarks/reports/storage-writer.md"),
) -> None:
    """The storage writer: rows/s into PostgreSQL and CPU µs per row, with baseline B."""
    run_storage_bench(
        DevStack(DevStackSettings()),
        events=events,
        vehicles=vehicles,
        runs=runs,
        partitions=partitions,
        report=report,
        console=Console(),
        erasures=erasures,
    )
