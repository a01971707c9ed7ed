"""What tracing costs: ingest, enrichment and detection with tracing off and on, same run.

"On" is tracing as deployed: spans exported over OTLP to the dev stack's Jaeger, at the default
head-sampling ratio (``fleetpipe.core.tracing.DEFAULT_RATIO``) or ``--ratio``. Ingest samples
the events itself; enrichment's and detection's pre-loaded input carries ``traceparent`` headers
on the same fraction of its records, as ingest at that ratio would have sent it. "Off" is the
same process without an OTLP endpoint, which is how every service runs unless one is configured.
The off and on runs of each stage follow each other, in turns first, so the machine's drift (it
is shared) falls on both; each figure is a median over the runs.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from fleetpipe.core.kafka import Headers, Message
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.topics import TopicSpec, topic_specs
from fleetpipe.core.tracing import (
    CONSUMER,
    DEFAULT_RATIO,
    PRODUCER,
    HeadSampler,
    messaging_attributes,
    setup_tracing,
)
from fleetpipe.enrichment.enrich import Enricher, SpeedLimits
from fleetpipe.registry import VehicleRegistry, write_csv
from fleetpipe_dev.bench.harness import (
    RunResult,
    Summary,
    markdown_table,
    measure_service,
    versus,
)
from fleetpipe_dev.bench.ingest import _send_all, encode_batches, start_ingest
from fleetpipe_dev.bench.session import BenchSession
from fleetpipe_dev.bench.stages import _telemetry
from fleetpipe_dev.stack.devstack import DevStack
from fleetpipe_dev.testing import produce_all, service_env

INGEST_BATCH = 500
# Ingest handles an event in a fraction of the others' time: more events keep its runs as long.
INGEST_FACTOR = 3
OFF = "off"
ON = "on"


@dataclass(frozen=True)
class TracingBenchConfig:
    events: int
    vehicles: int
    runs: int
    partitions: int
    ratio: float
    report: Path


def _traceparent() -> bytes:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01".encode()


def produce_sampled(
    kafka: KafkaSettings, topic: str, items: Sequence[tuple[str, bytes]], *, ratio: float
) -> int:
    """Produce ``items``; a ``ratio`` of them (chosen as ingest's sampler does) with a sampled
    ``traceparent`` header. Returns how many carry one."""
    picked = HeadSampler(ratio).pick(len(items))
    traced: dict[int, Headers] = {i: [("traceparent", _traceparent())] for i in picked}
    produce_all(kafka, topic, items, headers_at=traced)
    return len(picked)


def micro_costs(endpoint: str, ratio: float) -> dict[str, float]:
    """In this process: what tracing adds to every event, and what one traced record costs.

    * ``headers_ns``: the loop's check of a record without headers (nearly every record);
    * ``sampler_ns``: ingest's head sampler, per event, in batches of 500;
    * ``span_us``: one traced record in a service — read its context, start and end its
      consumer span, and export it over OTLP to Jaeger (the exporter thread's CPU included).
    """
    msg = Message()
    n = 1_000_000
    started = time.perf_counter()
    for _ in range(n):
        msg.headers()
    headers_ns = (time.perf_counter() - started) / n * 1e9
    sampler = HeadSampler(ratio)
    batches = 20_000
    started = time.perf_counter()
    for _ in range(batches):
        sampler.pick(INGEST_BATCH)
    sampler_ns = (time.perf_counter() - started) / (batches * INGEST_BATCH) * 1e9
    tracing = setup_tracing(
        "tracing-bench",
        environ={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_TRACES_SAMPLER": "always_on"},
    )
    root = tracing.start_root("bench publish", kind=PRODUCER)
    assert root is not None
    # Fewer spans than the export queue holds (2048), so none is dropped uncounted.
    spans = 2000
    cpu = time.process_time()
    for offset in range(spans):
        parent = tracing.sampled_parent(root.headers)
        assert parent is not None
        attributes = messaging_attributes(
            topic="bench", operation="process", partition=0, offset=offset
        )
        span = tracing.start_child("bench process", parent, kind=CONSUMER, attributes=attributes)
        assert span is not None
        span.end()
    root.end()
    tracing.shutdown()  # exports what is queued: its CPU counts
    span_us = (time.process_time() - cpu) / spans * 1e6
    return {"headers_ns": headers_ns, "sampler_ns": sampler_ns, "span_us": span_us}


def _tracing_env(mode: str, endpoint: str, ratio: float) -> dict[str, str]:
    if mode == OFF:
        # No endpoint: the services' default. Set empty, so an endpoint in the calling shell
        # does not leak into the baseline.
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""}
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""}
    if ratio != DEFAULT_RATIO:
        env |= {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": f"{ratio:g}"}
    return env


def run_tracing_bench(
    stack: DevStack, config: TracingBenchConfig, console: Console
) -> list[Summary]:
    session = BenchSession.start(
        stack,
        name="tracing",
        partitions=config.partitions,
        report=config.report,
        console=console,
    )
    endpoint = stack.otlp_endpoint
    if endpoint is None:
        raise RuntimeError(
            "tracing needs Jaeger in the dev stack: build it with "
            "`scripts/build-go-tools.sh jaeger`, then run `fleetpipe dev up`"
        )
    kafka = session.kafka
    base = session.topics()
    work = session.logs("tracing")
    labels = [
        f"{stage}, tracing {mode}"
        for stage in ("ingest", "enrichment", "detection")
        for mode in (OFF, ON)
    ]
    results: dict[str, list[RunResult]] = {label: [] for label in labels}
    with session:
        session.create_topics(topic_specs(base, config.partitions))
        console.print(
            f"building {config.events:,} simulator events for {config.vehicles:,} vehicles"
        )
        raw_events, fleet = _telemetry("simulator", config.vehicles, config.events)
        registry_path = work / "vehicles.csv"
        write_csv(fleet, registry_path)
        enriched = (
            Enricher(VehicleRegistry(fleet), SpeedLimits())
            .enrich(((t, t.SerializeToString()) for t in raw_events), now_us=time.time_ns() // 1000)
            .values
        )
        console.print(
            f"pre-loading {base.raw} and {base.enriched}, {config.ratio:g} of them traced"
        )
        traced_raw = produce_sampled(
            kafka,
            base.raw,
            [(t.vehicle_id, t.SerializeToString()) for t in raw_events],
            ratio=config.ratio,
        )
        traced_enriched = produce_sampled(kafka, base.enriched, enriched, ratio=config.ratio)
        bodies = encode_batches(INGEST_BATCH, config.events * INGEST_FACTOR)
        load = [os.getloadavg()[0]]
        for run in range(1, config.runs + 1):
            # Off before on in odd runs, on before off in even ones: whatever the first process
            # of a pair pays (a cold page cache, a busier moment) falls on both alike.
            order = labels if run % 2 else [labels[i ^ 1] for i in range(len(labels))]
            for index, label in enumerate(order):
                stage, mode = label.split(", tracing ")
                env = _tracing_env(mode, endpoint, config.ratio)
                out = session.topics(f"r{run}", f"s{index}")
                if stage == "ingest":
                    session.create_topics([TopicSpec(out.raw, config.partitions)])
                    proc, address = start_ingest(kafka, out, work / f"ingest-{mode}-{run}.log", env)
                    try:
                        result = asyncio.run(_send_all(address, bodies, INGEST_BATCH, proc))
                    finally:
                        proc.stop()
                else:
                    specs = [
                        s
                        for s in topic_specs(out, config.partitions)
                        if s.name not in {out.raw, out.enriched}
                    ]
                    topics = out.model_copy(update={"raw": base.raw, "enriched": base.enriched})
                    extra = {"FLEET_REGISTRY_PATH": str(registry_path)}
                    if stage == "enrichment":
                        # Enrichment writes enriched records: to a fresh topic of its own.
                        fresh = f"{out.enriched}.out"
                        specs.append(TopicSpec(fresh, config.partitions))
                        topics = topics.model_copy(update={"enriched": fresh})
                    session.create_topics(specs)
                    group = f"tracing-{stage}-{mode}-{run}-{session.suffix}"
                    input_topic = base.raw if stage == "enrichment" else base.enriched
                    result = measure_service(
                        label=label,
                        module=f"fleetpipe.{stage}",
                        env=service_env(
                            kafka,
                            topics,
                            {
                                "FLEET_GROUP_ID": group,
                                "FLEET_INSTANCE_ID": f"bench-{mode}-{run}",
                                "FLEET_MODE": "exactly-once",
                                **extra,
                                **env,
                            },
                        ),
                        kafka=kafka,
                        group_id=group,
                        input_topic=input_topic,
                        total=config.events,
                        log_file=work / f"{stage}-{mode}-{run}.log",
                    )
                result = RunResult(label, result.events, result.wall_s, result.cpu_s)
                results[label].append(result)
                console.print(
                    f"run {run}/{config.runs} {label:<26} {result.events_per_s:>10,.0f} events/s "
                    f"{result.cpu_us_per_event:6.2f} µs CPU/event (load {os.getloadavg()[0]:.1f})"
                )
            load.append(os.getloadavg()[0])
    summaries = [Summary.of(label, rs) for label, rs in results.items()]
    micro = micro_costs(endpoint, config.ratio)
    console.print(
        f"per record {micro['headers_ns']:.0f} ns (header check), per event "
        f"{micro['sampler_ns']:.1f} ns (sampler), per traced record {micro['span_us']:.1f} µs"
    )
    _write_report(
        session,
        config,
        summaries,
        results,
        traced={"raw": traced_raw, "enriched": traced_enriched},
        load=load,
        micro=micro,
    )
    session.finish(summaries)
    return summaries


def _ratio_row(by: dict[str, Summary], stage: str) -> str:
    rate, cpu, extra = versus(by[f"{stage}, tracing {ON}"], by[f"{stage}, tracing {OFF}"])
    return f"| {stage} | {rate:.3f} × ({(rate - 1) * 100:+.1f} %) | {cpu:.3f} × | {extra:+.2f} µs |"


def _write_report(
    session: BenchSession,
    config: TracingBenchConfig,
    summaries: list[Summary],
    results: dict[str, list[RunResult]],
    *,
    traced: dict[str, int],
    load: list[float],
    micro: dict[str, float],
) -> None:
    by = {s.label: s for s in summaries}
    md = [
        *session.heading(
            "Tracing: throughput and CPU with tracing on, against tracing off in the same run"
        ),
        "Each stage is one process on the same machine as the broker and Jaeger, run "
        f"{config.runs} times with tracing off and on, alternating. **Off**: no OTLP endpoint "
        "(the default). "
        f"**On**: spans exported over OTLP (gRPC) to Jaeger v2, head sampling {config.ratio:g} "
        f"of the events. Ingest receives {config.events * INGEST_FACTOR:,} simulator events in "
        f"batches of {INGEST_BATCH} over 4 gRPC streams and samples them itself; enrichment and "
        f"detection (exactly-once) consume {config.events:,} "
        f"pre-loaded records, of which {traced['raw']:,} raw and {traced['enriched']:,} enriched "
        "carry a sampled `traceparent` header (as ingest at that ratio would send them). Clock "
        "and CPU (user + system, librdkafka's threads included) run from the process being "
        "ready until every record is acknowledged (ingest) or committed.",
        "",
        markdown_table(summaries),
        "",
        "Tracing on against off (medians of the same run):",
        "",
        "| stage | events/s | CPU per event | added CPU per event |",
        "| --- | ---: | ---: | ---: |",
        *(_ratio_row(by, stage) for stage in ("ingest", "enrichment", "detection")),
        "",
        "What tracing adds per event, measured in the benchmark's own process after the runs (one "
        "long loop each):",
        "",
        "| what | cost |",
        "| --- | ---: |",
        f"| header check of a record without trace context (every record, every consumer) | "
        f"{micro['headers_ns']:.0f} ns |",
        f"| ingest's head sampler, per event (batches of {INGEST_BATCH}) | "
        f"{micro['sampler_ns']:.1f} ns |",
        f"| one traced record: context read, consumer span, OTLP export | "
        f"{micro['span_us']:.1f} µs |",
        f"| so, per event at ratio {config.ratio:g}: check + ratio × span | "
        f"{micro['headers_ns'] / 1000 + config.ratio * micro['span_us']:.3f} µs |",
        "",
        "Load average (1 min) before the first run and after each: "
        + ", ".join(f"{x:.1f}" for x in load),
        "",
    ]
    session.write_report(
        md,
        results,
        fields={
            "events": config.events,
            "vehicles": config.vehicles,
            "partitions": config.partitions,
            "ratio": config.ratio,
            "traced_records": traced,
            "load_average_1m": load,
            "micro": micro,
        },
        digits=2,
    )
