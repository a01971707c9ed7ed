"""The ``fleetpipe`` command: the local stack, the demo pipeline, queries and benchmarks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fleetpipe.core.settings import Topics
from fleetpipe.devstack.kubecmd import bench_operator, kube_app
from fleetpipe.devstack.stack import DevStack, DevStackSettings
from fleetpipe.storage_writer.query_cli import query_app
from fleetpipe_loadtest.cli import bench_ingest_command, simulate_command
from fleetpipe_loadtest.storage_bench import command as bench_storage_writer

app = typer.Typer(
    help="FleetPipe: real-time vehicle telemetry on Kafka, PostgreSQL and Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
)
dev_app = typer.Typer(
    help="The local stack: a real Kafka broker (KRaft), PostgreSQL and Jaeger on loopback.",
    no_args_is_help=True,
)
bench_app = typer.Typer(help="Benchmarks that write reports.", no_args_is_help=True)
app.add_typer(dev_app, name="dev")
app.add_typer(bench_app, name="bench")
app.add_typer(query_app, name="query")
bench_app.command("storage-writer")(bench_storage_writer)
dev_app.add_typer(kube_app, name="kube")
bench_app.command("operator")(bench_operator)

console = Console()
app.command("simulate")(simulate_command)
bench_app.command("ingest")(bench_ingest_command)

Partitions = Annotated[
    int, typer.Option(min=1, max=10_000, help="partitions of each pipeline topic")
]


def _stack() -> DevStack:
    return DevStack(DevStackSettings())


@dev_app.command("install")
def dev_install() -> None:
    """Fetch Kafka's broker jars from Maven Central into the cache (once)."""
    from fleetpipe.devstack.kafka import KAFKA_VERSION, kafka_libs

    console.print(f"kafka {KAFKA_VERSION}: {kafka_libs()}")


@dev_app.command("up")
def dev_up(partitions: Partitions = 12) -> None:
    """Start Kafka, PostgreSQL and (when built) Jaeger, and create the topics."""
    stack = _stack()
    stack.up(topics=Topics(), partitions=partitions, say=console.print)
    tracing = f" OTEL_EXPORTER_OTLP_ENDPOINT={stack.otlp_endpoint}" if stack.otlp_endpoint else ""
    console.print(
        f"[green]up[/]: FLEET_KAFKA__BOOTSTRAP_SERVERS={stack.kafka_settings.bootstrap_servers} "
        f"FLEET_POSTGRES__DSN={stack.postgres_dsn}{tracing}"
    )


@dev_app.command("down")
def dev_down(
    purge: Annotated[
        bool, typer.Option(help="also delete the broker's, database's and Jaeger's data")
    ] = False,
) -> None:
    """Stop what `dev up` started, and nothing else."""
    _stack().down(purge=purge, say=console.print)


@dev_app.command("status")
def dev_status(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Show the processes `dev up` started and whether they still run."""
    status = _stack().status()
    if as_json:
        console.print_json(json.dumps(status))
        return
    table = Table("component", "pid", "running", "address")
    for name, proc in status.items():
        table.add_row(
            name,
            str(proc["pid"]),
            "yes" if proc["running"] else "[red]no[/]",
            str(proc.get("address", "")),
        )
    console.print(table if status else "nothing started")


@app.command("demo")
def demo(
    vehicles: Annotated[int, typer.Option(min=1, help="simulated vehicles")] = 1000,
    events: Annotated[int, typer.Option(min=1, help="events to push through")] = 200_000,
    partitions: Partitions = 12,
    keep_running: Annotated[
        bool, typer.Option(help="leave Kafka and PostgreSQL running afterwards")
    ] = True,
) -> None:
    """The main job: bring up the local stack and push simulated telemetry through the pipeline."""
    from fleetpipe.devstack.demo import run_demo

    raise typer.Exit(
        run_demo(
            _stack(),
            vehicles=vehicles,
            events=events,
            partitions=partitions,
            keep_running=keep_running,
            console=console,
        )
    )


@bench_app.command("baseline")
def bench_baseline(
    events: Annotated[int, typer.Option(min=1000, help="records per run")] = 300_000,
    runs: Annotated[int, typer.Option(min=1, max=20, help="runs; the median is reported")] = 5,
    partitions: Partitions = 6,
    report: Annotated[Path, typer.Option(help="where to write the Markdown report")] = Path(
        "benchmarks/reports/baseline.md"
    ),
) -> None:
    """Baseline B: the core loop as a bare consume → produce passthrough of raw telemetry."""
    from fleetpipe_loadtest.baseline import run_baseline

    run_baseline(
        _stack(), events=events, runs=runs, partitions=partitions, report=report, console=console
    )


@bench_app.command("pipeline-stages")
def bench_pipeline_stages(
    events: Annotated[int, typer.Option(min=1000, help="records per run")] = 300_000,
    vehicles: Annotated[int, typer.Option(min=1, help="vehicles in the input")] = 1000,
    runs: Annotated[int, typer.Option(min=1, max=20, help="runs; the median is reported")] = 3,
    partitions: Partitions = 6,
    source: Annotated[
        str, typer.Option(help="simulator, drill (scripted episodes) or synthetic")
    ] = "simulator",
    restore_vehicles: Annotated[
        int, typer.Option(min=0, help="states in the restore test")
    ] = 100_000,
    report: Annotated[Path, typer.Option(help="where to write the Markdown report")] = Path(
        "benchmarks/reports/enrichment-detection.md"
    ),
) -> None:
    """Enrichment and detection, CPU µs per event and events/s, against B in the same run."""
    from fleetpipe_loadtest.stages import SOURCES, run_stages

    if source not in SOURCES:
        raise typer.BadParameter(f"--source must be one of {', '.join(SOURCES)}")
    run_stages(
        _stack(),
        events=events,
        vehicles=vehicles,
        runs=runs,
        partitions=partitions,
        source=SOURCES[source],
        restore_vehicles=restore_vehicles,
        report=report,
        console=console,
    )


@bench_app.command("tracing")
def bench_tracing(
    events: Annotated[int, typer.Option(min=1000, help="events per stage and run")] = 150_000,
    vehicles: Annotated[int, typer.Option(min=1, help="vehicles in the input")] = 1000,
    runs: Annotated[int, typer.Option(min=1, max=20, help="runs; the median is reported")] = 5,
    partitions: Partitions = 6,
    ratio: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="head-sampling ratio (default: the services' default)"),
    ] = None,
    report: Annotated[Path, typer.Option(help="where to write the Markdown report")] = Path(
        "benchmarks/reports/tracing.md"
    ),
) -> None:
    """Ingest, enrichment and detection with tracing off and on (OTLP to the stack's Jaeger)."""
    from fleetpipe.core.tracing import DEFAULT_RATIO
    from fleetpipe_loadtest.tracing_bench import TracingBenchConfig, run_tracing_bench

    config = TracingBenchConfig(
        events=events,
        vehicles=vehicles,
        runs=runs,
        partitions=partitions,
        ratio=DEFAULT_RATIO if ratio is None else ratio,
        report=report,
    )
    run_tracing_bench(_stack(), config, console)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
