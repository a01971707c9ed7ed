"""The main job: the whole pipeline on this machine, a simulated fleet through it, measured.

``fleetpipe demo`` brings up the local Kafka and PostgreSQL (or uses running ones), starts the
Twilio-contract server unless real Twilio credentials are in the environment, starts the five
services and the KPI stage as child processes, and drives the fleet simulator through ingest
with the load driver (:mod:`fleetpipe_loadtest.loadrun`), showing live progress. It ends with a
summary — events sent, acknowledged and stored exactly once, alerts by rule, notifications
(the drivers', an operations desk's and a signed webhook's: :mod:`fleetpipe_dev.demo_recipients`),
latency percentiles, the latest fleet KPI windows read from PostgreSQL — and writes the report
(JSON, Markdown, PNG charts) beside the services' logs. Ctrl-C stops every process it started.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.live import Live
from rich.table import Table

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.core.topics import topic_specs
from fleetpipe_dev.demo_kpis import DemoWindows, kpi_table, latest_windows
from fleetpipe_dev.demo_recipients import DemoRecipients, RecipientsOutcome, outcome
from fleetpipe_dev.scenarios import ScenarioRow, missed_kinds, scenario_rows, write_city_files
from fleetpipe_dev.stack.console import LocalConsole
from fleetpipe_dev.stack.devstack import DevStack
from fleetpipe_dev.stack.pipeline import (
    DEFAULT_SMS_FROM,
    LocalPipeline,
    PipelineConfig,
)
from fleetpipe_dev.stack.procs import StartError
from fleetpipe_dev.twilio import TwilioContractServer
from fleetpipe_loadtest.live import render
from fleetpipe_loadtest.loadrun import (
    LiveView,
    LoadPlan,
    Watch,
    new_run_id,
    run_load,
    write_outputs,
)
from fleetpipe_loadtest.machine import machine
from fleetpipe_loadtest.report import LoadReport, Step
from fleetpipe_loadtest.transport import Transport

FLEET_ID = "demo"


@dataclass(frozen=True)
class DemoOptions:
    steps: tuple[Step, ...]
    rate_hz: float = 1.0
    scenarios: str = "all=2"
    partitions: int = 6
    processes: int = 1
    streams: int = 2
    workdir: Path | None = None  # default: <dev stack home>/demo
    kafka: str | None = None  # running servers instead of the local stack
    postgres_dsn: str | None = None
    schema: str = "fleetpipe"
    topic_suffix: str = ""
    keep_running: bool = True
    settle_timeout_s: float = 120.0
    console_port: int = 0  # the fleet console's port (0: a free one)
    # How the simulated vehicles send: gRPC to ingest, MQTT to the broker, HTTP to ingest.
    protocol: Transport = Transport.GRPC
    # A running Jaeger (OTLP/gRPC and query API URLs) instead of the local stack's.
    jaeger_otlp: str = ""
    jaeger_query: str = ""
    trace_ratio: float | None = None  # share of events traced from ingest on (None: default)
    stay: bool = False  # keep the services and the console running after the summary
    # The KPI stage's windows, short enough for windows of the run to be stored before it ends.
    kpi_windows: DemoWindows = field(default_factory=DemoWindows)


def twilio_from_environment() -> dict[str, str] | None:
    """Real Twilio credentials (``FLEET_TWILIO__ACCOUNT_SID``, ``__AUTH_TOKEN``), if given."""
    env = {k: v for k, v in os.environ.items() if k.startswith("FLEET_TWILIO__")}
    if env.get("FLEET_TWILIO__ACCOUNT_SID") and env.get("FLEET_TWILIO__AUTH_TOKEN"):
        return env
    return None


def run_demo(stack: DevStack, options: DemoOptions, *, console: Console) -> int:
    # SIGTERM (a closed terminal, a supervisor) stops everything like Ctrl-C does. Ctrl-C is
    # set too: a shell without job control starts background commands with SIGINT ignored,
    # and Python then leaves it ignored, so the demo would never stop on it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    console.rule("[bold]FleetPipe demo")
    topics = Topics.with_suffix(options.topic_suffix) if options.topic_suffix else Topics()
    kafka, dsn = _servers(stack, options, topics, console)
    workdir = options.workdir or stack.settings.home / "demo"
    workdir.mkdir(parents=True, exist_ok=True)
    plan = LoadPlan(
        target="",  # known once ingest listens
        token=secrets.token_urlsafe(24),
        fleet_id=FLEET_ID,
        run_id=new_run_id(),
        steps=options.steps,
        rate_hz=options.rate_hz,
        processes=options.processes,
        streams=options.streams,
        scenarios=options.scenarios,
        protocol=options.protocol,
    )
    registry = workdir / "vehicles.csv"
    plan.write_registry(registry)
    # The simulated city's zones, so that every scenario the simulator injects can alert.
    city = write_city_files(workdir)
    mqtt_env = _mqtt_devices(stack, plan, console) if plan.protocol is Transport.MQTT else {}
    real_twilio = twilio_from_environment()
    contract: TwilioContractServer | None = None
    if real_twilio is not None:
        twilio_env = {"FLEET_TWILIO__SMS_FROM": DEFAULT_SMS_FROM, **real_twilio}
        twilio_where = "Twilio's cloud (credentials from FLEET_TWILIO__*)"
    else:
        contract = TwilioContractServer().start()
        twilio_env = {
            "FLEET_TWILIO__ACCOUNT_SID": contract.account_sid,
            "FLEET_TWILIO__AUTH_TOKEN": contract.auth_token,
            "FLEET_TWILIO__API_BASE_URL": contract.url,
            "FLEET_TWILIO__SMS_FROM": DEFAULT_SMS_FROM,
        }
        twilio_where = f"{contract.url} (the local Twilio-contract server)"
    # An operations desk and a webhook sink (a receiver checking signatures) for the fleet.
    recipients = DemoRecipients.start(FLEET_ID, os.environ, stand_in=contract is not None)
    otlp, query = _jaeger(stack, options)
    # On the local stack every service logs in as itself (least privilege); servers given
    # with --kafka/--postgres-dsn are used with the one login given.
    logins = stack.service_logins(options.schema) if options.kafka is None else {}
    overrides = {}
    if options.trace_ratio is not None:
        overrides = {
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": f"{options.trace_ratio:g}",
        }
    config = PipelineConfig(
        kafka=kafka,
        topics=topics,
        postgres_dsn=dsn,
        schema=options.schema,
        workdir=workdir,
        registry=registry,
        tokens={plan.token: FLEET_ID},
        twilio_env=twilio_env,
        group_suffix=options.topic_suffix,
        otlp_endpoint=otlp,
        overrides=overrides,
        rules=city.rules,
        speed_limits=city.speed_limits,
        mqtt_env=mqtt_env,
        http_port=0 if plan.protocol is Transport.HTTP else None,
        logins=logins,
        kpis=True,
        kpi_env=options.kpi_windows.env(),
        notification_env=recipients.notification_env(),
    )
    pipeline = LocalPipeline(config)
    fleet_console = LocalConsole(
        kafka,
        topics,
        dsn,
        options.schema,
        config.logs / "console.log",
        tokens={secrets.token_urlsafe(24): ["*"]},
        port=options.console_port,
    )
    report: LoadReport | None = None
    kpis: list[dict[str, Any]] = []
    delivered: RecipientsOutcome | None = None
    code = 0
    try:
        console.print(f"twilio     {twilio_where}")
        desk, sink = recipients.describe()
        console.print(f"operations {desk}")
        console.print(f"webhook    {sink}")
        console.print(f"services   starting {', '.join(config.services)}; logs in {config.logs}")
        pipeline.start()
        console.print(f"ingest     gRPC on {pipeline.ingest_address}")
        # The console reads the services' health from their /metrics, and traces from Jaeger's
        # query API: the Jaeger built from its Go module has that API but no UI of its own.
        fleet_console.extra = {**_console_env(pipeline, query), **logins.get("console", {})}
        fleet_console.start()
        (console_token,) = fleet_console.tokens
        page = f"{fleet_console.url}/#token={console_token}"
        console.print(f"console    {page}")
        console.print(f"health     {page}&page=health (every service's /metrics, live)")
        if otlp:
            console.print(
                f"traces     spans to {otlp}; in the console, an alert's 'trace' button shows "
                f"its trace, read from Jaeger's query API at {query}"
            )
        target = pipeline.ingest_address
        if plan.protocol is Transport.HTTP:
            target = pipeline.http_address
            console.print(f"ingest     HTTP on {target} (POST /v1/fleets/{FLEET_ID}/telemetry)")
        elif plan.protocol is Transport.MQTT:
            target = stack.mosquitto.address
            console.print(f"devices    MQTT to {target}, bridged to Kafka by mqtt-bridge")
        plan = replace(plan, target=target)
        console.print(
            f"load       {plan.vehicles:,} vehicles at {plan.rate_hz:g} Hz for "
            f"{plan.duration_s:g} s ({plan.events:,} events), vehicle ids "
            f"{plan.id_prefix}-veh-NNNNNN; scenarios {plan.scenarios}"
        )
        watch = Watch(
            kafka=kafka,
            topics=topics,
            dsn=dsn,
            schema=options.schema,
            groups={
                "enrichment": (config.group("enrichment"), topics.raw),
                "detection": (config.group("detection"), topics.enriched),
                "storage-writer": (config.group("storage-writer"), topics.enriched),
                "notification": (config.group("notification"), topics.alerts),
            },
        )
        provider = _provider(contract)
        with Live(console=console, refresh_per_second=2) as live:

            def update(view: LiveView) -> None:
                pipeline.check_alive()
                live.update(render(view))

            report = run_load(
                plan,
                watch,
                on_update=update,
                provider=provider,
                settle_timeout_s=options.settle_timeout_s,
                machine=machine(),
            )
        report.processes.update(pipeline.pids())
        # While the KPI stage still runs: the windows of the run close once its input is idle.
        kpis = latest_windows(dsn, options.schema, FLEET_ID, timeout_s=options.kpi_windows.wait_s)
        if options.stay:
            _stay(console, pipeline, page)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping everything the demo started[/]")
        code = 130
    except (AssertionError, TimeoutError) as exc:
        # A service exited or did not become ready: its log's tail is in the message.
        console.print(f"[red]the pipeline failed[/]: {exc}")
        code = 1
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave services behind.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            codes = pipeline.stop()
            codes["console"] = fleet_console.stop()
            if report is not None:
                # Once notification has stopped, so that no delivery is still on its way; and
                # before the stack goes down with --no-keep-running.
                delivered = _delivered(recipients, plan, dsn, options.schema, contract, console)
            recipients.stop()
            if contract is not None:
                contract.stop()
            # On --kafka servers the stack holds at most the MQTT broker the demo started.
            if not options.keep_running and (options.kafka is None or mqtt_env):
                stack.down(say=console.print)
        finally:
            signal.signal(signal.SIGINT, previous)
    bad = {n: c for n, c in codes.items() if c != 0}
    if bad:
        console.print(f"[red]services exited with errors[/]: {bad}; see {config.logs}")
        code = code or 1
    if report is None:
        return code or 1
    report.where = {
        "kafka": kafka.bootstrap_servers,
        "postgresql": f"{dsn} (schema {options.schema}, table telemetry)",
        "parquet": str(config.lake),
        "logs": str(config.logs),
    }
    paths = write_outputs(report, workdir / "report", name="demo", title="FleetPipe demo")
    rows = scenario_rows(report, city.parsed)
    paths["scenarios"] = workdir / "report" / "demo-scenarios.json"
    paths["scenarios"].write_text(json.dumps([r.as_dict() for r in rows], indent=2))
    if delivered is not None:
        paths["recipients"] = workdir / "report" / "demo-recipients.json"
        paths["recipients"].write_text(json.dumps(delivered.as_dict(), indent=2))
    _summary(console, report, paths, delivered)
    console.print(kpi_table(kpis, options.kpi_windows))
    _scenarios(console, rows)
    missed = missed_kinds(rows)
    if missed:
        console.print(f"[red]detection missed injected scenarios[/]: {', '.join(missed)}")
    if delivered is not None and delivered.problems:
        console.print(f"[red]deliveries beyond the drivers[/]: {'; '.join(delivered.problems)}")
        code = code or 1
    if report.seq is None or not report.seq.exact or report.interrupted or missed:
        code = code or 1
    return code


def _delivered(
    recipients: DemoRecipients,
    plan: LoadPlan,
    dsn: str,
    schema: str,
    contract: TwilioContractServer | None,
    console: Console,
) -> RecipientsOutcome | None:
    try:
        return outcome(
            recipients,
            dsn=dsn,
            schema=schema,
            vehicle_prefix=f"{plan.id_prefix}-veh-",
            contract=contract,
        )
    except psycopg.Error as exc:
        console.print(f"[yellow]cannot read the delivery ledger[/]: {exc}")
        return None


def _scenarios(console: Console, rows: list[ScenarioRow]) -> None:
    table = Table(title="FleetPipe demo: injected scenarios", title_justify="left")
    for name in ("scenario", "injected", "began", "lasted long enough", "alerts opened", ""):
        table.add_column(name, justify="left" if name in ("scenario", "") else "right")
    for r in rows:
        colour = "green" if r.opened else ("red" if not r.ok else "yellow")
        table.add_row(
            r.kind,
            f"{r.injected:,}",
            f"{r.episodes:,}",
            f"{r.due:,} (≥ {r.min_s:g} s)",
            f"[{colour}]{r.opened:,}[/]",
            r.note if r.ok else f"[red]{r.note}[/]",
        )
    console.print(table)


def _mqtt_devices(stack: DevStack, plan: LoadPlan, console: Console) -> dict[str, str]:
    """Accounts on the stack's broker for the fleet's vehicles (and its gateway, which the load
    driver uses), and the bridge's settings."""
    if stack.mosquitto_pid() is None:  # a demo on --kafka servers has no stack up
        stack.up_mosquitto(say=console.print)
    pid = stack.mosquitto_pid()
    if pid is None:
        raise StartError("--protocol mqtt needs the local MQTT broker (Debian's mosquitto)")
    broker = stack.mosquitto
    auth = broker.write_auth(plan.registry(), {plan.token: FLEET_ID})
    broker.reload(pid)
    console.print(
        f"mosquitto  {auth.devices:,} device accounts and the fleet's gateway on {broker.address}"
    )
    return {
        "FLEET_MQTT__HOST": "127.0.0.1",
        "FLEET_MQTT__PORT": str(broker.port),
        "FLEET_MQTT__PASSWORD": broker.bridge_password,
    }


def _jaeger(stack: DevStack, options: DemoOptions) -> tuple[str, str]:
    """Jaeger's OTLP endpoint and query API: the one given, else the dev stack's when this demo
    brought the stack up and Jaeger runs in it; empty when there is none."""
    if options.jaeger_otlp:
        return options.jaeger_otlp, options.jaeger_query
    if options.kafka is not None or not stack.state.running("jaeger"):
        return "", ""
    return str(stack.state.processes["jaeger"].get("otlp", "")), stack.jaeger.query_url


def _console_env(pipeline: LocalPipeline, query: str) -> dict[str, str]:
    env = {"FLEET_HEALTH__TARGETS": json.dumps(pipeline.metrics_targets())}
    if query:
        env["FLEET_TRACES__QUERY_URL"] = query
    return env


def _stay(console: Console, pipeline: LocalPipeline, page: str) -> None:
    """Keep everything running for a look around in the console, until Ctrl-C (or SIGTERM)."""
    console.print(
        f"[bold]staying[/]  the run is over; the services and the console keep running: "
        f"{page} — Ctrl-C stops them and prints the summary"
    )
    try:
        while True:
            pipeline.check_alive()  # a service that dies meanwhile ends the demo, with its log
            time.sleep(1.0)
    except KeyboardInterrupt:
        return


def _servers(
    stack: DevStack, options: DemoOptions, topics: Topics, console: Console
) -> tuple[KafkaSettings, str]:
    if (options.kafka is None) != (options.postgres_dsn is None):
        raise ValueError("give both --kafka and --postgres-dsn, or neither")
    if options.kafka is not None and options.postgres_dsn is not None:
        from fleetpipe.core.kafka import build_admin

        kafka = KafkaSettings(bootstrap_servers=options.kafka)
        build_admin(kafka).ensure_topics(topic_specs(topics, options.partitions))
        console.print(f"kafka      {options.kafka} (running already)")
        return kafka, options.postgres_dsn
    stack.up(topics=topics, partitions=options.partitions, say=console.print)
    return stack.kafka_settings, stack.postgres_dsn


def _provider(contract: TwilioContractServer | None) -> Callable[[], dict[str, int]] | None:
    if contract is None:
        return None
    c = contract.contract

    def recorded() -> dict[str, int]:
        return {"messages": len(c.messages()), "calls": len(c.calls())}

    return recorded


def _protocol_note(report: LoadReport) -> str:
    protocol = str(report.plan.get("protocol", "grpc"))
    if protocol == "mqtt":
        return (
            "mqtt: QoS 1 publishes, one event each; acknowledged = the broker's PUBACK, "
            "rejected = refused by the broker or answered on the vehicle's rejections topic"
        )
    if protocol == "http":
        return "http: JSON arrays, each answered with its events' acceptance and rejections"
    return "grpc: batches on streams, each acknowledged once Kafka holds it"


def _summary(
    console: Console,
    report: LoadReport,
    paths: dict[str, Path],
    delivered: RecipientsOutcome | None,
) -> None:
    table = Table(title="FleetPipe demo: summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("protocol", _protocol_note(report))
    table.add_row(
        "events",
        f"sent {report.sent:,}, acknowledged {report.acked:,} (accepted {report.accepted:,}, "
        f"rejected {report.rejected:,}) in {report.load_s:.0f} s, "
        f"{report.sent_rate():,.0f} events/s",
    )
    s = report.seq
    if s is not None:
        verdict = "[green]every acknowledged event stored exactly once[/]"
        if not s.exact:
            verdict = "[red]NOT exactly once[/]"
        table.add_row(
            "stored",
            f"{s.stored:,} rows of {s.expected:,} accepted — missing {s.missing:,}, "
            f"duplicates {s.duplicates:,}, not sent {s.unexpected:,}: {verdict}",
        )
    alerts = ", ".join(
        f"{rule} {states.get('OPEN', 0)}" for rule, states in sorted(report.alerts_by_rule.items())
    )
    table.add_row("alerts opened", f"{report.alerts_opened:,}: {alerts or 'none'}")
    outcomes = report.notifications_by_status.items()
    table.add_row(
        "notifications",
        (", ".join(f"{k.lower()} {v:,}" for k, v in sorted(outcomes)) or "none")
        + " (every recipient: drivers, operations, webhooks)",
    )
    if report.provider:
        table.add_row(
            "twilio recorded", ", ".join(f"{k} {v:,}" for k, v in sorted(report.provider.items()))
        )
    for label, row in delivered.rows() if delivered is not None else []:
        table.add_row(label, row)
    for label, lat in report.latencies(client=False):
        table.add_row(label, lat.brief())
    for key, value in report.where.items():
        if key != "report":
            table.add_row(key, value)
    table.add_row("report", f"{paths['markdown']} (+ {paths['json'].name}, PNG charts)")
    for note in report.notes:
        table.add_row("note", note)
    console.print(table)
