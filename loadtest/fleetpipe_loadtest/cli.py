"""Typer commands of the load-test package, registered on the ``fleetpipe`` CLI.

Heavy imports (numpy, grpc, the simulator) happen inside the commands, so ``fleetpipe --help``
stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetpipe_loadtest.transport import Transport

# The options both commands take: they send the same way.
RateHz = Annotated[
    float, typer.Option(min=0.01, max=100.0, help="events per vehicle per second (Hz)")
]
BatchSize = Annotated[int, typer.Option(min=1, max=10_000, help="events per batch")]
Window = Annotated[int, typer.Option(min=1, help="unacknowledged batches per stream")]
Protocol = Annotated[
    Transport,
    typer.Option(
        help="how events reach the pipeline, and what --target is: grpc, ingest's gRPC "
        "address; mqtt, the MQTT broker (as the fleet's gateway, its password derived from "
        "the token); http, ingest's HTTP listener",
    ),
]
TlsCa = Annotated[
    Path | None, typer.Option(help="CA certificate: connect with TLS and verify the server")
]


def simulate_command(
    vehicles: Annotated[int, typer.Option(min=1, max=999_999, help="vehicles in the fleet")] = 1000,
    rate: RateHz = 1.0,
    duration: Annotated[float, typer.Option(min=0.0, help="simulated seconds to run")] = 60.0,
    seed: Annotated[int, typer.Option(help="same seed, same fleet, same events")] = 1,
    fleet: Annotated[str, typer.Option(help="fleet id (the token's fleet)")] = "fleet-1",
    target: Annotated[
        str, typer.Option(help="ingest gRPC address; empty: only generate, send nothing")
    ] = "127.0.0.1:50051",
    token: Annotated[
        str,
        typer.Option(envvar="FLEET_SIMULATE_TOKEN", help="bearer token", show_default=False),
    ] = "",
    streams: Annotated[int, typer.Option(min=1, max=256, help="concurrent gRPC streams")] = 4,
    batch_size: BatchSize = 500,
    window: Window = 8,
    scenarios: Annotated[
        str,
        typer.Option(
            help="injected scenarios, episodes per vehicle-hour: 'all=0.02', "
            "'speeding=0.5,crash=0.01' or 'none'"
        ),
    ] = "all=0.02",
    speedup: Annotated[
        float,
        typer.Option(min=0.0, help="simulated seconds per real second; 0 = as fast as possible"),
    ] = 1.0,
    start_time_us: Annotated[
        int | None,
        typer.Option(
            help="start of the simulated clock (Unix µs); default now, or "
            "now - duration when sped up"
        ),
    ] = None,
    ground_truth: Annotated[
        Path | None, typer.Option(help="write the injected episodes here (.jsonl or .csv)")
    ] = None,
    registry: Annotated[
        Path | None, typer.Option(help="write the fleet's vehicle registry here (.csv)")
    ] = None,
    tls_ca: TlsCa = None,
    protocol: Protocol = Transport.GRPC,
) -> None:
    """Simulate a fleet and stream its telemetry to ingest, with a progress line; Ctrl-C stops."""
    import asyncio

    from rich.console import Console

    from fleetpipe_loadtest.scenarios import ScenarioMix
    from fleetpipe_loadtest.sender import SenderError
    from fleetpipe_loadtest.simulate import SimulationOptions, run_simulation, summary

    console = Console(stderr=True)
    if target and not token:
        raise typer.BadParameter("a token is needed to send (--token or FLEET_SIMULATE_TOKEN)")
    try:
        mix = ScenarioMix.parse(scenarios)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scenarios") from None
    options = SimulationOptions(
        vehicles=vehicles,
        rate_hz=rate,
        duration_s=duration,
        seed=seed,
        fleet_id=fleet,
        target=target or None,
        token=token,
        streams=streams,
        batch_size=batch_size,
        window=window,
        scenarios=mix,
        speedup=speedup,
        start_time_us=start_time_us,
        ground_truth=ground_truth,
        registry=registry,
        root_certificates=tls_ca.read_bytes() if tls_ca else None,
        protocol=protocol,
    )
    try:
        result = asyncio.run(run_simulation(options, console))
    except SenderError as exc:
        console.print(f"[red]ingest refused the stream[/]: {exc}")
        raise typer.Exit(1) from None
    console.print(summary(result))
    raise typer.Exit(130 if result.interrupted else 0)


def loadtest_run_command(
    target: Annotated[str, typer.Option(help="ingest's gRPC address")] = "127.0.0.1:50051",
    token: Annotated[
        str,
        typer.Option(envvar="FLEET_LOADTEST_TOKEN", help="bearer token", show_default=False),
    ] = "",
    fleet: Annotated[str, typer.Option(help="fleet id (the token's fleet)")] = "fleet-1",
    kafka: Annotated[
        str, typer.Option(envvar="FLEET_LOADTEST_KAFKA", help="Kafka bootstrap servers")
    ] = "127.0.0.1:19092",
    dsn: Annotated[
        str,
        typer.Option(envvar="FLEET_LOADTEST_DSN", help="PostgreSQL DSN of the storage writer"),
    ] = "postgresql://fleetpipe@127.0.0.1:15432/fleetpipe",
    schema: Annotated[str, typer.Option(help="PostgreSQL schema of the hot store")] = "fleetpipe",
    topic_suffix: Annotated[
        str, typer.Option(help="the pipeline's topics are <name>.<suffix>")
    ] = "",
    group_suffix: Annotated[
        str, typer.Option(help="the services' consumer groups are fleetpipe-<service>-<suffix>")
    ] = "",
    vehicles: Annotated[int, typer.Option(min=1, max=999_999, help="vehicles")] = 5000,
    rate: RateHz = 1.0,
    duration: Annotated[float, typer.Option(min=1.0, help="seconds")] = 60.0,
    profile: Annotated[
        str | None,
        typer.Option(help="vehicles:seconds steps, e.g. 5000:60,10000:60,5000:60"),
    ] = None,
    processes: Annotated[int, typer.Option(min=1, max=64, help="sender processes")] = 2,
    streams: Annotated[int, typer.Option(min=1, max=256, help="gRPC streams per process")] = 4,
    batch_size: BatchSize = 500,
    window: Window = 8,
    slots: Annotated[
        int,
        typer.Option(
            min=1,
            max=1000,
            help="evenly spaced send slots per tick (each vehicle keeps its own); 1 sends "
            "each tick's events at once",
        ),
    ] = 10,
    scenarios: Annotated[
        str, typer.Option(help="injected scenarios, episodes per vehicle-hour")
    ] = "all=0.2",
    seed: Annotated[int, typer.Option(help="same seed, same fleet")] = 1,
    run_id: Annotated[
        str,
        typer.Option(
            help="the vehicles are <fleet>-<run id>-veh-NNNNNN (a registry can be written for "
            "them beforehand); default: a new id. One id per run: the loss and duplicate "
            "accounting counts the run's vehicles",
        ),
    ] = "",
    settle_timeout: Annotated[
        float, typer.Option(min=1.0, help="seconds to wait for the pipeline to catch up")
    ] = 180.0,
    report_dir: Annotated[
        Path, typer.Option(help="where the JSON, Markdown and PNG files go")
    ] = Path("loadtest-reports"),
    name: Annotated[str, typer.Option(help="file name stem of the report")] = "loadtest",
    tls_ca: TlsCa = None,
    protocol: Protocol = Transport.GRPC,
) -> None:
    """Load a running pipeline and measure it end to end.

    N vehicles at R Hz, or a --profile of vehicles:seconds steps, from several
    processes and gRPC streams. Measures sent, acknowledged and rejected
    events, per-vehicle seq accounting in the database (loss, duplicates),
    ingest → alert and ingest → stored latency; writes a JSON report, a
    Markdown summary and PNG charts.

    Runs against the local pipeline or one in Kubernetes (as a Job: pass the
    ingest Service, Kafka and the DSN). Exits 1 when an accepted event is
    missing or stored twice.
    """
    from rich.console import Console
    from rich.live import Live

    from fleetpipe.core.settings import KafkaSettings, Topics
    from fleetpipe_loadtest.live import render
    from fleetpipe_loadtest.loadrun import (
        LoadPlan,
        Watch,
        default_groups,
        new_run_id,
        run_load,
        summary_lines,
        write_outputs,
    )
    from fleetpipe_loadtest.machine import machine
    from fleetpipe_loadtest.report import Step, parse_profile
    from fleetpipe_loadtest.scenarios import ScenarioMix

    console = Console()
    if not token:
        raise typer.BadParameter("a token is needed (--token or FLEET_LOADTEST_TOKEN)")
    try:
        steps = tuple(parse_profile(profile)) if profile else (Step(vehicles, duration),)
        ScenarioMix.parse(scenarios)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    topics = Topics.with_suffix(topic_suffix) if topic_suffix else Topics()
    groups = {
        stage: (f"{group}-{group_suffix}" if group_suffix else group, topic)
        for stage, (group, topic) in default_groups(topics).items()
    }
    plan = LoadPlan(
        target=target,
        token=token,
        fleet_id=fleet,
        run_id=run_id or new_run_id(),
        steps=steps,
        rate_hz=rate,
        processes=processes,
        streams=streams,
        batch_size=batch_size,
        window=window,
        slots=slots,
        scenarios=scenarios,
        seed=seed,
        root_certificates=tls_ca.read_bytes() if tls_ca else None,
        protocol=protocol,
    )
    watch = Watch(KafkaSettings(bootstrap_servers=kafka), topics, dsn, schema, groups)
    console.print(
        f"{plan.events:,} events from {plan.vehicles:,} vehicles → {target} over {protocol.value}"
    )
    with Live(console=console, refresh_per_second=2) as live:
        report = run_load(
            plan,
            watch,
            on_update=lambda view: live.update(render(view)),
            settle_timeout_s=settle_timeout,
            machine=machine(),
        )
    paths = write_outputs(report, report_dir, name=name, title="FleetPipe load run")
    for line in summary_lines(report):
        console.print(line)
    console.print(f"report: {paths['markdown']} ({paths['json'].name}, PNG charts)")
    ok = report.seq is not None and report.seq.exact
    raise typer.Exit(0 if ok else 1)
