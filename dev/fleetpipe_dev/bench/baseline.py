"""Baseline B: the core loop as a bare consume → produce passthrough of raw telemetry.

Every other performance figure of the project is quoted against B measured on the same machine.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from fleetpipe.core.settings import DeliveryMode
from fleetpipe.core.topics import TopicSpec
from fleetpipe_dev.bench.harness import RunResult, Summary, markdown_table, measure_service
from fleetpipe_dev.bench.session import BenchSession
from fleetpipe_dev.stack.devstack import DevStack
from fleetpipe_dev.testing import produce_all, service_env
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
    results: dict[DeliveryMode, list[RunResult]] = {m: [] for m in DeliveryMode}
    with session:
        session.create_topics(
            [
                TopicSpec(topics.raw, partitions),
                TopicSpec(topics.enriched, partitions),
                TopicSpec(topics.deadletter, 1),
            ]
        )
        console.print(f"pre-loading {events:,} raw telemetry records into {topics.raw}")
        produce_all(
            kafka,
            topics.raw,
            ((e.vehicle_id, e.SerializeToString()) for e in synthetic.stream(1000, events)),
        )
        logs = session.logs()
        for run in range(1, runs + 1):
            # Alternating the modes spreads the machine's drift over both.
            for mode in DeliveryMode:
                group = f"baseline-{mode.value}-{run}-{session.suffix}"
                env = service_env(
                    kafka,
                    topics,
                    {
                        "FLEET_INPUT_TOPIC": topics.raw,
                        "FLEET_OUTPUT_TOPIC": topics.enriched,
                        "FLEET_GROUP_ID": group,
                        "FLEET_MODE": mode.value,
                        "FLEET_INSTANCE_ID": f"bench-{run}",
                    },
                )
                result = measure_service(
                    label=mode.value,
                    module="fleetpipe.passthrough",
                    env=env,
                    kafka=kafka,
                    group_id=group,
                    input_topic=topics.raw,
                    total=events,
                    log_file=logs / f"baseline-{mode.value}-{run}.log",
                )
                results[mode].append(result)
                console.print(
                    f"run {run}/{runs} {mode.value:<14} {result.events_per_s:>10,.0f} events/s "
                    f"{result.cpu_us_per_event:6.1f} µs CPU/event"
                )
    summaries = [Summary.of(f"passthrough, {m.value}", results[m]) for m in DeliveryMode]
    _write_report(session, summaries, results, events=events, partitions=partitions)
    session.finish(summaries)
    return summaries


def _write_report(
    session: BenchSession,
    summaries: list[Summary],
    results: dict[DeliveryMode, list[RunResult]],
    *,
    events: int,
    partitions: int,
) -> None:
    md = [
        *session.heading("Baseline B: core-loop passthrough"),
        "The core loop (`fleetpipe.passthrough`, one process) consumes raw telemetry records "
        f"(protobuf, ~{_record_size()} bytes each) from a topic of {partitions} partitions, "
        "decodes each, and produces its bytes unchanged to another topic; the broker runs on the "
        f"same machine. {events:,} records per run; the clock and the process's CPU counter "
        "(user + system, librdkafka's threads included) run from the moment the process is ready "
        "until its group has committed every record.",
        "",
        markdown_table(summaries),
        "",
    ]
    session.write_report(
        md,
        {m.value: rs for m, rs in results.items()},
        fields={
            "events": events,
            "partitions": partitions,
        },
    )


def _record_size() -> int:
    return len(synthetic.telemetry(1, 1).SerializeToString())
