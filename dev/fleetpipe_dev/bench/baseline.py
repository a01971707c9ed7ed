"""Baseline B: the core loop as a bare consume → produce passthrough of raw telemetry.

Every other performance figure of the project is quoted against B measured on the same machine.
B is the passthrough of packed raw telemetry (records of 500 events, as ingest writes the raw
topic); the old per-event B (one record per event) is measured beside it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rich.console import Console

from fleetpipe.core.settings import DeliveryMode
from fleetpipe.core.topics import TopicSpec
from fleetpipe_dev.bench.harness import RunResult, Summary, markdown_table, measure_service
from fleetpipe_dev.bench.session import BenchSession
from fleetpipe_dev.stack.devstack import DevStack
from fleetpipe_dev.testing import produce_all, produce_packed, service_env
from fleetpipe_loadtest import synthetic


def run_baseline(
    stack: DevStack,
    *,
    events: int,
    runs: int,
    partitions: int,
    report: Path,
    console: Console,
) -> list[Summary]:
    session = BenchSession.start(
        stack, name="bench", partitions=partitions, report=report, console=console
    )
    kafka = session.kafka
    topics = session.topics()
    forms = {"packed": topics.raw, "per event": f"{topics.raw}.single"}
    results: dict[str, list[RunResult]] = {}
    with session:
        session.create_topics(
            [
                *(TopicSpec(t, partitions) for t in forms.values()),
                TopicSpec(topics.enriched, partitions),
                TopicSpec(topics.deadletter, 1),
            ]
        )
        console.print(f"pre-loading {events:,} raw telemetry events, packed and one a record")
        packs = produce_packed(
            kafka,
            forms["packed"],
            ((e.vehicle_id, e.SerializeToString()) for e in synthetic.stream(1000, events)),
        )
        produce_all(
            kafka,
            forms["per event"],
            ((e.vehicle_id, e.SerializeToString()) for e in synthetic.stream(1000, events)),
        )
        records = {"packed": packs, "per event": events}
        logs = session.logs()
        for run in range(1, runs + 1):
            # Alternating forms and modes spreads the machine's drift over all.
            for form, source in forms.items():
                for mode in DeliveryMode:
                    label = _label(form, mode)
                    tag = f"{form.replace(' ', '-')}-{mode.value}-{run}"
                    group = f"baseline-{tag}-{session.suffix}"
                    env = service_env(
                        kafka,
                        topics,
                        {
                            "FLEET_INPUT_TOPIC": source,
                            "FLEET_OUTPUT_TOPIC": topics.enriched,
                            "FLEET_GROUP_ID": group,
                            "FLEET_MODE": mode.value,
                            "FLEET_INSTANCE_ID": f"bench-{run}",
                        },
                    )
                    result = measure_service(
                        label=label,
                        module="fleetpipe.passthrough",
                        env=env,
                        kafka=kafka,
                        group_id=group,
                        input_topic=source,
                        total=records[form],
                        log_file=logs / f"baseline-{tag}.log",
                    )
                    # Committed offsets count records; the figures are per event.
                    result = replace(result, events=events)
                    results.setdefault(label, []).append(result)
                    console.print(
                        f"run {run}/{runs} {label:<36} {result.events_per_s:>10,.0f} events/s "
                        f"{result.cpu_us_per_event:6.1f} µs CPU/event"
                    )
    summaries = [Summary.of(label, rs) for label, rs in results.items()]
    _write_report(session, summaries, results, events=events, partitions=partitions)
    session.finish(summaries)
    return summaries


def _write_report(
    session: BenchSession,
    summaries: list[Summary],
    results: dict[str, list[RunResult]],
    *,
    events: int,
    partitions: int,
) -> None:
    md = [
        *session.heading("Baseline B: core-loop passthrough"),
        "The core loop (`fleetpipe.passthrough`, one process) consumes raw telemetry "
        f"(protobuf, ~{_record_size()} bytes an event) from a topic of {partitions} partitions, "
        "scans each record (a pack: the offsets of its events; a single record: decoded), and "
        "produces it unchanged to another topic; the broker runs on the same machine. B is the "
        "packed form (records of 500 events of one partition, as ingest writes them); the "
        f"per-event form (one keyed record an event) is the old B. {events:,} events per run; "
        "the clock and the process's CPU counter (user + system, librdkafka's threads included) "
        "run from the moment the process is ready until its group has committed every record.",
        "",
        markdown_table(summaries),
        "",
    ]
    session.write_report(
        md,
        dict(results),
        fields={
            "events": events,
            "partitions": partitions,
        },
    )


def _record_size() -> int:
    return len(synthetic.telemetry(1, 1).SerializeToString())


def _label(form: str, mode: DeliveryMode) -> str:
    return (
        f"passthrough, {mode.value}"
        if form == "packed"
        else (f"per-event passthrough, {mode.value}")
    )
