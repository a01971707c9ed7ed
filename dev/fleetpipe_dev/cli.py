"""The developer's commands of ``fleetpipe``: the local stack, the demo and the benchmarks.

Registered on the ``fleetpipe`` command through the ``fleetpipe.cli`` entry point of this
distribution (:func:`register`). Heavy imports happen inside the commands, so ``fleetpipe
--help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fleetpipe.core.settings import Topics
from fleetpipe_dev.bench.console import command as bench_console
from fleetpipe_dev.bench.hot_index import command as bench_hot_index
from fleetpipe_dev.bench.storage import command as bench_storage_writer
from fleetpipe_dev.cliopts import AsJson, Partitions, Report, Runs, print_status
from fleetpipe_dev.cluster.cli import cluster_app
from fleetpipe_dev.image.cli import image_app
from fleetpipe_dev.stack.devstack import DevStack, DevStackSettings
from fleetpipe_dev.stack.kubecmd import bench_operator, kube_app
from fleetpipe_loadtest.transport import Transport

console = Console()
dev_app = typer.Typer(
    help="The local stack: a real Kafka broker (KRaft), PostgreSQL and Jaeger on loopback.",
    no_args_is_help=True,
)
bench_app = typer.Typer(help="Benchmarks that write reports.", no_args_is_help=True)
dev_app.add_typer(kube_app, name="kube")
dev_app.add_typer(image_app, name="image")
dev_app.add_typer(cluster_app, name="cluster")
bench_app.command("operator")(bench_operator)
bench_app.command("storage-writer")(bench_storage_writer)
bench_app.command("console")(bench_console)
bench_app.command("hot-index")(bench_hot_index)


def register(app: typer.Typer) -> None:
    """Add ``dev``, ``demo`` and ``bench`` to the ``fleetpipe`` command."""
    app.add_typer(dev_app, name="dev")
    app.add_typer(bench_app, name="bench")
    app.command("demo", epilog=DEMO_EPILOG)(demo)


def _stack() -> DevStack:
    return DevStack(DevStackSettings())


@dev_app.command("install")
def dev_install() -> None:
    """Fetch Kafka's broker jars from Maven Central into the cache (once)."""
    from fleetpipe_dev.stack.kafka import KAFKA_VERSION, kafka_libs

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
    as_json: AsJson = False,
) -> None:
    """Show the processes `dev up` started and whether they still run."""
    print_status(console, _stack().status(), as_json=as_json)


@dev_app.command("record-input")
def dev_record_input(
    out: Annotated[
        Path, typer.Option(help="folder of the recording, its registry and its manifest")
    ] = Path("tests/data/recorded-input"),
    vehicles: Annotated[int, typer.Option(min=10, help="vehicles of the recorded run")] = 200,
    seconds: Annotated[float, typer.Option(min=60.0, help="simulated seconds")] = 900.0,
    seed: Annotated[int, typer.Option(help="the fleet's seed")] = 2026,
) -> None:
    """Record the raw topic of a real run (load driver -> ingest -> Kafka) as a test input.

    The recording in the repository is kept fixed on purpose: run this only to replace it.
    """
    from fleetpipe_dev.recorded.capture import CaptureOptions, capture

    capture(out, CaptureOptions(vehicles=vehicles, seconds=seconds, seed=seed), console)


DEMO_EPILOG = """\
Examples:

  fleetpipe demo  (1,000 vehicles at 1 Hz for 60 s)

  fleetpipe demo --vehicles 5000 --duration 120

  fleetpipe demo --events 1000000

  fleetpipe demo --profile 2000:30,5000:30,2000:30  (a ramp)

Real Twilio: set FLEET_TWILIO__ACCOUNT_SID, FLEET_TWILIO__AUTH_TOKEN and
FLEET_TWILIO__SMS_FROM; otherwise messages go to a local server that speaks
Twilio's REST API and records them.
"""


def demo(
    vehicles: Annotated[
        int, typer.Option(min=1, max=999_999, help="simulated vehicles (each sends at --rate)")
    ] = 1000,
    rate: Annotated[
        float, typer.Option(min=0.01, max=100.0, help="events per vehicle per second (Hz)")
    ] = 1.0,
    duration: Annotated[float, typer.Option(min=1.0, help="seconds of simulated driving")] = 60.0,
    events: Annotated[
        int | None,
        typer.Option(min=1, help="events to send instead of --duration (vehicles × rate × s)"),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="steps of vehicles:seconds instead of --vehicles/--duration"),
    ] = None,
    scenarios: Annotated[
        str,
        typer.Option(
            help="injected scenarios, episodes per vehicle-hour: 'all=2', "
            "'speeding=5,crash=2' or 'none'"
        ),
    ] = "all=2",
    partitions: Partitions = 6,
    processes: Annotated[
        int, typer.Option(min=1, max=64, help="simulator processes (the fleet is split)")
    ] = 1,
    streams: Annotated[int, typer.Option(min=1, max=64, help="gRPC streams per process")] = 2,
    workdir: Annotated[
        Path | None,
        typer.Option(help="logs, registry, Parquet and report (default: the dev home's demo/)"),
    ] = None,
    kafka: Annotated[
        str | None, typer.Option(help="a running broker instead of the local stack's")
    ] = None,
    postgres_dsn: Annotated[
        str | None, typer.Option(help="a running PostgreSQL instead of the local stack's")
    ] = None,
    schema: Annotated[str, typer.Option(help="PostgreSQL schema of the stored data")] = "fleetpipe",
    topic_suffix: Annotated[
        str, typer.Option(help="topics and consumer groups of their own: <name>.<suffix>")
    ] = "",
    keep_running: Annotated[
        bool, typer.Option(help="leave the local Kafka and PostgreSQL running afterwards")
    ] = True,
    settle_timeout: Annotated[
        float, typer.Option(min=1.0, help="seconds to wait for the pipeline to catch up")
    ] = 120.0,
    protocol: Annotated[
        Transport,
        typer.Option(
            help="how the vehicles send: grpc to ingest; mqtt to the local Mosquitto, bridged "
            "to Kafka; http (JSON) to ingest"
        ),
    ] = Transport.GRPC,
    jaeger: Annotated[
        str | None,
        typer.Option(
            help="a running Jaeger as OTLP,QUERY URLs (e.g. http://127.0.0.1:4317,"
            "http://127.0.0.1:16686) instead of the local stack's"
        ),
    ] = None,
    trace_ratio: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="share of events traced from ingest on (default 0.001)"
        ),
    ] = None,
    stay: Annotated[
        bool,
        typer.Option(
            help="after the summary keep the services and the console running until Ctrl-C, "
            "to look around in the console"
        ),
    ] = False,
) -> None:
    """The main job: the whole pipeline on real Kafka and PostgreSQL, locally.

    Starts Kafka and PostgreSQL (or uses --kafka and --postgres-dsn), the five
    services as child processes (ingest, enrichment, detection, storage-writer,
    notification) and the fleet simulator, which streams telemetry to ingest
    over gRPC with injected scenarios (speeding, crashes, SOS, low fuel, ...).

    Shows live progress, then a summary: events sent, acknowledged and stored
    (checked per vehicle and seq: no loss, no duplicate), alerts by rule,
    notifications, ingest → alert and ingest → stored latency, and where the
    data, the logs and the report (JSON, Markdown, PNG charts) are.

    Ctrl-C stops everything it started.
    """
    from fleetpipe_dev.demo import DemoOptions, run_demo
    from fleetpipe_loadtest.report import Step, parse_profile

    if profile is not None:
        try:
            steps = tuple(parse_profile(profile))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--profile") from None
    elif events is not None:
        steps = (Step(vehicles, max(1.0 / rate, events / (vehicles * rate))),)
    else:
        steps = (Step(vehicles, duration),)
    if (kafka is None) != (postgres_dsn is None):
        raise typer.BadParameter("give both --kafka and --postgres-dsn, or neither")
    otlp, query = "", ""
    if jaeger is not None:
        otlp, _, query = jaeger.partition(",")
        if not (otlp.startswith("http") and query.startswith("http")):
            raise typer.BadParameter("expected OTLP,QUERY (two URLs)", param_hint="--jaeger")
    options = DemoOptions(
        steps=steps,
        rate_hz=rate,
        scenarios=scenarios,
        partitions=partitions,
        processes=processes,
        streams=streams,
        workdir=workdir,
        kafka=kafka,
        postgres_dsn=postgres_dsn,
        schema=schema,
        topic_suffix=topic_suffix,
        keep_running=keep_running,
        settle_timeout_s=settle_timeout,
        protocol=protocol,
        jaeger_otlp=otlp,
        jaeger_query=query,
        trace_ratio=trace_ratio,
        stay=stay,
    )
    raise typer.Exit(run_demo(_stack(), options, console=console))


@bench_app.command("baseline")
def bench_baseline(
    events: Annotated[int, typer.Option(min=1000, help="records per run")] = 300_000,
    runs: Runs = 5,
    partitions: Partitions = 6,
    report: Report = Path("benchmarks/reports/baseline.md"),
) -> None:
    """Baseline B: the core loop as a bare consume → produce passthrough of raw telemetry."""
    from fleetpipe_dev.bench.baseline import run_baseline

    run_baseline(
        _stack(), events=events, runs=runs, partitions=partitions, report=report, console=console
    )


@bench_app.command("pipeline-stages")
def bench_pipeline_stages(
    events: Annotated[int, typer.Option(min=1000, help="records per run")] = 300_000,
    vehicles: Annotated[int, typer.Option(min=1, help="vehicles in the input")] = 1000,
    runs: Runs = 3,
    partitions: Partitions = 6,
    source: Annotated[
        str, typer.Option(help="simulator, drill (scripted episodes) or synthetic")
    ] = "simulator",
    restore_vehicles: Annotated[
        int, typer.Option(min=0, help="states in the restore test")
    ] = 100_000,
    report: Report = Path("benchmarks/reports/enrichment-detection.md"),
) -> None:
    """Enrichment and detection, CPU µs per event and events/s, against B in the same run."""
    from fleetpipe_dev.bench.stages import SOURCES, run_stages

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
    runs: Runs = 5,
    partitions: Partitions = 6,
    ratio: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="head-sampling ratio (default: the services' default)"),
    ] = None,
    report: Report = Path("benchmarks/reports/tracing.md"),
) -> None:
    """Ingest, enrichment and detection with tracing off and on (OTLP to the stack's Jaeger)."""
    from fleetpipe.core.tracing import DEFAULT_RATIO
    from fleetpipe_dev.bench.tracing import TracingBenchConfig, run_tracing_bench

    config = TracingBenchConfig(
        events=events,
        vehicles=vehicles,
        runs=runs,
        partitions=partitions,
        ratio=DEFAULT_RATIO if ratio is None else ratio,
        report=report,
    )
    run_tracing_bench(_stack(), config, console)


@bench_app.command("protocols")
def bench_protocols(
    events: Annotated[int, typer.Option(min=10_000, help="events per protocol and run")] = 200_000,
    runs: Runs = 3,
    partitions: Partitions = 6,
    protocols: Annotated[
        str, typer.Option(help="protocols to measure, in order; gRPC's figures are the base")
    ] = "grpc,mqtt,http",
    report: Report = Path("benchmarks/reports/protocols.md"),
) -> None:
    """gRPC, MQTT (broker and bridge) and HTTP/JSON into the raw topic: events/s and CPU µs
    per event of the way in, the MQTT broker and the client, against gRPC."""
    from fleetpipe_dev.bench.protocols import ProtocolBenchConfig, run_protocol_bench

    try:
        chosen = tuple(Transport(p.strip()) for p in protocols.split(",") if p.strip())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--protocols") from None
    config = ProtocolBenchConfig(
        events=events, runs=runs, partitions=partitions, protocols=chosen, report=report
    )
    run_protocol_bench(_stack(), config, console)


@bench_app.command("pipeline")
def bench_pipeline(
    rates: Annotated[
        str, typer.Option(help="offered rates to try, events/s (vehicles at 1 Hz), in order")
    ] = "12000,16000,20000,24000",
    duration: Annotated[float, typer.Option(min=5.0, help="seconds of load per rate")] = 60.0,
    partitions: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=10_000,
            help="partitions of each pipeline topic [default: the operator's sizing for the "
            "largest rate's fleet, 1,000 vehicles a partition]",
            show_default=False,
        ),
    ] = None,
    processes: Annotated[int, typer.Option(min=1, max=16, help="sender processes")] = 2,
    baseline_events: Annotated[
        int, typer.Option(min=10_000, help="records per baseline B run")
    ] = 300_000,
    baseline_runs: Annotated[int, typer.Option(min=1, max=20, help="baseline B runs")] = 3,
    report: Report = Path("benchmarks/reports/pipeline.md"),
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="a FLEET_* setting for every service, NAME=VALUE (repeatable), "
            "e.g. FLEET_KAFKA__POLL_TIMEOUT_S=0.05",
        ),
    ] = None,
) -> None:
    """The whole pipeline's highest sustained rate with zero loss, against B in the same run."""
    from fleetpipe_dev.bench.pipeline import run_pipeline_bench

    try:
        offered = [int(r) for r in rates.split(",") if r.strip()]
    except ValueError:
        raise typer.BadParameter("--rates: whole numbers separated by commas") from None
    overrides = {}
    for item in setting or []:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("FLEET_"):
            raise typer.BadParameter(f"--set {item!r}: expected FLEET_NAME=VALUE")
        overrides[name] = value
    if not offered or min(offered) < 1:
        raise typer.BadParameter("--rates: at least one rate, each at least 1 event/s")
    if partitions is None:
        from fleetpipe_dev.bench.pipeline import sized_partitions

        partitions = sized_partitions(max(offered))
        console.print(
            f"{partitions} partitions per topic: the operator's sizing for a fleet of "
            f"{max(offered):,} vehicles at 1 event/s"
        )
    run_pipeline_bench(
        _stack(),
        rates=offered,
        duration_s=duration,
        partitions=partitions,
        processes=processes,
        baseline_events=baseline_events,
        baseline_runs=baseline_runs,
        report=report,
        console=console,
        overrides=overrides,
    )


@bench_app.command("driver")
def bench_driver(
    rates: Annotated[
        str, typer.Option(help="offered events/s (vehicles at 1 Hz), comma-separated")
    ] = "5000,20000,50000",
    seconds: Annotated[float, typer.Option(min=2.0, help="seconds of load per run")] = 20.0,
    runs: Runs = 3,
    partitions: Annotated[int, typer.Option(min=1, help="partitions of the raw topic")] = 50,
    report: Annotated[Path, typer.Option(help="where the runs' figures go (JSON)")] = Path(
        "benchmarks/reports/load-driver.json"
    ),
) -> None:
    """The load driver's CPU µs per event sent, against its own broker and ingest."""
    from fleetpipe_dev.bench.driver import run_driver_bench

    run_driver_bench(
        rates=[int(r) for r in rates.split(",")],
        seconds=seconds,
        runs=runs,
        partitions=partitions,
        report=report,
        console=console,
    )


@bench_app.command("ingest")
def bench_ingest(
    events: Annotated[
        int, typer.Option(min=10_000, help="events per run at batches of 100 and 500")
    ] = 300_000,
    runs: Runs = 5,
    partitions: Annotated[int, typer.Option(min=1, help="partitions of the raw topic")] = 6,
    sustained: Annotated[
        float, typer.Option(min=0, help="seconds of the simulator-fed run (0: skip)")
    ] = 60.0,
    vehicles: Annotated[
        int, typer.Option(min=1, help="vehicles of the simulator-fed run")
    ] = 50_000,
    report: Report = Path("benchmarks/reports/ingest.md"),
) -> None:
    """Ingest: CPU µs per event at batch sizes 1, 10, 100, 500 and sustained events/s."""
    from fleetpipe_dev.bench.ingest import BenchConfig, run_ingest_bench

    config = BenchConfig(
        events=events,
        runs=runs,
        partitions=partitions,
        sustained_s=sustained,
        vehicles=vehicles,
        report=report,
    )
    run_ingest_bench(_stack(), config, console)


@bench_app.command("faults")
def bench_faults(
    rate: Annotated[
        int, typer.Option(min=100, help="vehicles at 1 Hz: a rate this machine sustains")
    ] = 2000,
    duration: Annotated[
        float, typer.Option(min=60.0, help="seconds of load (the faults must fit in it)")
    ] = 300.0,
    gap: Annotated[float, typer.Option(min=5.0, help="seconds between two faults")] = 25.0,
    processes: Annotated[int, typer.Option(min=1, max=16, help="sender processes")] = 1,
    report: Report = Path("benchmarks/reports/faults.md"),
) -> None:
    """Faults under load: each service SIGKILLed, the broker restarted, PostgreSQL stopped 30 s,
    Twilio failing; counts what was lost, stored twice, repeated or sent twice (all must be 0)
    and how long each stage took to recover. Exits 1 when a count is not zero."""
    from fleetpipe_dev.bench.faults import PG_DOWN_S, run_fault_drill

    needed = 9 * gap + PG_DOWN_S
    if duration < needed:
        raise typer.BadParameter(
            f"--duration {duration:g}: the eight faults, {gap:g} s apart, need at least "
            f"{needed:g} s of load"
        )
    counts, _faults, _load = run_fault_drill(
        _stack(),
        rate=rate,
        duration_s=duration,
        gap_s=gap,
        processes=processes,
        report=report,
        console=console,
    )
    if not counts.all_zero:
        raise typer.Exit(1)
