"""The fleet console with 100K vehicles: API p50/p99 of vehicles-now and open alerts, and the
page's load time in Debian's headless Chromium.

A fresh schema is filled through the storage writer's own store (its migrations, its COPY and
latest-position upsert) with one position for each of ``vehicles`` vehicles and ``alerts``
open alert episodes; a console process serves it. Requests are sequential and bounded in
number, all on loopback. Not a test: run it on a quiet machine.
"""

from __future__ import annotations

import secrets
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import psycopg
import typer
from rich.console import Console

from fleetpipe.core.db import PostgresSettings
from fleetpipe.core.topics import topic_specs
from fleetpipe.pb.v1 import alert_pb2
from fleetpipe.storage_writer import columns
from fleetpipe.storage_writer.database import HotStore, WriteBatch
from fleetpipe.storage_writer.partitions import hot_window
from fleetpipe_dev.bench.session import BenchSession
from fleetpipe_dev.browser import chromium
from fleetpipe_dev.cliopts import Report
from fleetpipe_dev.stack.console import LocalConsole
from fleetpipe_dev.stack.devstack import DevStack, DevStackSettings
from fleetpipe_loadtest import records

ENDPOINTS = {
    "vehicles now (all)": ("/api/v1/vehicles", {}),
    # What the page asks for: one array per vehicle instead of one object.
    "vehicles now (all, compact)": ("/api/v1/vehicles", {"format": "compact"}),
    "vehicles now (one bbox)": ("/api/v1/vehicles", {"bbox": "4.88,52.36,4.90,52.38"}),
    "open alerts": ("/api/v1/alerts", {"open": "true"}),
}


def _fill(settings: PostgresSettings, *, vehicles: int, alerts: int, console: Console) -> None:
    store = HotStore(settings, application_name="bench-console")
    store.migrate()
    store.maintain(
        hot_window(datetime.now(UTC), retention_days=3, ahead_days=1), events_retention_days=90
    )
    now = records.now_us()
    chunk = 20_000
    for start in range(0, vehicles, chunk):
        events = [
            records.enriched(i, 1, fleet=f"fleet-{i % 10}", event_time_us=now)
            for i in range(start, min(vehicles, start + chunk))
        ]
        table = columns.telemetry_rows(
            columns.TelemetryDecoder().decode([e.SerializeToString() for e in events])
        ).table
        store.write(WriteBatch(telemetry=table, latest=columns.latest_rows(table)))
    opened = [
        records.alert(
            f"fleet-{i % 10}-veh-{i:06d}",
            "speeding",
            fleet_id=f"fleet-{i % 10}",
            episode_start_us=now - i * 1000,
            values={"speed_kmh": 97.0, "limit_kmh": 80.0},
        )
        for i in range(alerts)
    ]
    for a in opened:
        a.severity = alert_pb2.SEVERITY_WARNING
    store.write(WriteBatch(alerts=columns.alert_table(opened)))
    store.close()
    console.print(f"filled {vehicles:,} vehicles and {alerts:,} open alerts")


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50_ms": statistics.median(ordered) * 1e3, "p99_ms": p99 * 1e3, "n": len(ordered)}


def _api(url: str, token: str, *, requests: int, console: Console) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        for label, (path, params) in ENDPOINTS.items():
            client.get(path, params=params).raise_for_status()  # warm the pool and the cache
            samples = []
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get(path, params=params)
                samples.append(time.perf_counter() - started)
                response.raise_for_status()
            found[label] = {**_percentiles(samples), "bytes": len(response.content)}
            console.print(f"{label}: p50 {found[label]['p50_ms']:,.1f} ms over {requests} requests")
    return found


def _page(url: str, token: str, *, loads: int) -> dict[str, float]:
    samples = []
    with chromium() as browser:
        for _ in range(loads):
            # Away first: the same URL again would only move to its fragment, not load.
            browser.get("about:blank")
            browser.delete_all_cookies()
            started = time.perf_counter()
            browser.get(f"{url}/#token={token}")
            deadline = started + 300
            while browser.execute_script("return document.body.dataset.loaded") != "true":
                if time.perf_counter() > deadline:
                    raise TimeoutError("the page did not load the fleet in 300 s")
                time.sleep(0.05)
            samples.append(time.perf_counter() - started)
            browser.execute_script("sessionStorage.clear()")
    return {
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "n": len(samples),
    }


def run_console_bench(
    stack: DevStack,
    *,
    vehicles: int,
    alerts: int,
    requests: int,
    loads: int,
    report: Path,
    console: Console,
) -> dict[str, Any]:
    session = BenchSession.start(
        stack, name="console", partitions=6, report=report, console=console
    )
    topics = session.topics()
    schema = f"bench_console_{uuid.uuid4().hex[:8]}"
    token = secrets.token_urlsafe(24)
    settings = PostgresSettings.model_validate({"dsn": stack.postgres_dsn, "schema_name": schema})
    session.create_topics(topic_specs(topics, 6))
    fleet_console: LocalConsole | None = None
    try:
        _fill(settings, vehicles=vehicles, alerts=alerts, console=console)
        fleet_console = LocalConsole(
            session.kafka,
            topics,
            stack.postgres_dsn,
            schema,
            session.logs() / "console.log",
            tokens={token: ["*"]},
        ).start()
        api = _api(fleet_console.url, token, requests=requests, console=console)
        page = _page(fleet_console.url, token, loads=loads)
    finally:
        if fleet_console is not None:
            fleet_console.stop()
        session.delete_topics()
        with psycopg.connect(stack.postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
    lines = session.heading(f"Fleet console with {vehicles:,} vehicles")
    lines += [
        f"{alerts:,} open alerts; {requests} sequential requests per endpoint after one warm-up;",
        f"the page loaded {loads} times in Debian's headless Chromium (until the map holds every",
        "vehicle and the open alerts are listed).",
        "",
        "| endpoint | p50 ms | p99 ms | answer bytes |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, figures in api.items():
        lines.append(
            f"| {label} | {figures['p50_ms']:.1f} | {figures['p99_ms']:.1f} | "
            f"{figures['bytes']:,.0f} |"
        )
    lines += [
        "",
        f"Page load: median {page['median_s']:.2f} s (min {page['min_s']:.2f}, "
        f"max {page['max_s']:.2f}).",
        "",
    ]
    session.write_report(lines, {}, fields={"api": api, "page": page, "vehicles": vehicles})
    console.print("\n".join(lines))
    return {"api": api, "page": page}


def command(
    vehicles: Annotated[int, typer.Option(min=1, help="vehicles in the store")] = 100_000,
    alerts: Annotated[int, typer.Option(min=0, help="open alert episodes")] = 2_000,
    requests: Annotated[int, typer.Option(min=10, max=10_000, help="per endpoint")] = 200,
    loads: Annotated[int, typer.Option(min=1, max=50, help="page loads")] = 5,
    report: Report = Path("benchmarks/reports/console.md"),
) -> None:
    """The fleet console: API p50/p99 and page load time with many vehicles."""
    run_console_bench(
        DevStack(DevStackSettings()),
        vehicles=vehicles,
        alerts=alerts,
        requests=requests,
        loads=loads,
        report=report,
        console=Console(),
    )
