"""Enrichment and detection, one process each, against baseline B measured in the same run.

Input is pre-loaded so a stage runs flat out: raw telemetry for enrichment, and the very same
events enriched (in-process, by the enrichment code itself) for detection. By default the input
is the fleet simulator's (trips, stops, every scenario kind now and then); ``drill`` uses the
scripted timelines of ``fleetpipe_dev.drills`` and ``synthetic`` plain valid telemetry.
B is the core-loop passthrough in exactly-once mode on the same records — raw for enrichment's
ratio, enriched for detection's — so each ratio compares like with like. Every run gets fresh
output topics (detection's state changelog included), so no run inherits another's state.

The changelog restore for a large fleet is timed on its own: states for ``--restore-vehicles``
vehicles are written to a changelog topic and read back as a replica does on assignment.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console

from fleetpipe.core.settings import Topics
from fleetpipe.core.topics import TopicSpec, topic_specs
from fleetpipe.detection.changelog import Changelog
from fleetpipe.detection.state import VehicleState
from fleetpipe.detection.wire import encode_state
from fleetpipe.enrichment.enrich import Enricher, SpeedLimits
from fleetpipe.pb.v1 import telemetry_pb2
from fleetpipe.registry import Vehicle, VehicleRegistry, write_csv
from fleetpipe_dev.bench.harness import (
    RunResult,
    Summary,
    markdown_table,
    measure_service,
    versus,
)
from fleetpipe_dev.bench.session import BenchSession
from fleetpipe_dev.drills import drill_fleet
from fleetpipe_dev.stack.devstack import DevStack
from fleetpipe_dev.testing import produce_all, service_env
from fleetpipe_loadtest import synthetic
from fleetpipe_loadtest.fleet import Fleet
from fleetpipe_loadtest.scenarios import ScenarioMix

Source = Literal["simulator", "drill", "synthetic"]
SOURCES: dict[str, Source] = {"simulator": "simulator", "drill": "drill", "synthetic": "synthetic"}
# The simulator's scenario rates for benchmark input: every kind now and then, as in a real fleet.
SCENARIO_RATES = "all=0.2"


@dataclass(frozen=True)
class Stage:
    label: str
    module: str
    input: Literal["raw", "enriched"]
    env: dict[str, str]


def _telemetry(
    source: Source, vehicles: int, events: int
) -> tuple[list[telemetry_pb2.Telemetry], list[Vehicle]]:
    if source == "simulator":
        fleet = Fleet(vehicles, seed=1, scenarios=ScenarioMix.parse(SCENARIO_RATES))
        out = list(itertools.islice(fleet.events(events / vehicles + 1), events))
        return out, fleet.registry()
    if source == "synthetic":
        out = list(synthetic.stream(vehicles, events))
        return out, _registry(out)
    return (drilled := _drilled(vehicles, events)), _registry(drilled)


def _drilled(vehicles: int, events: int) -> list[telemetry_pb2.Telemetry]:
    # Scripted drives with every rule's episodes, merged in event-time order; repeated drills
    # of the same fleet (later start times) until there are enough events.
    out: list[telemetry_pb2.Telemetry] = []
    repeat = 0
    while len(out) < events:
        for e in drill_fleet(vehicles, episodes=3, seed=repeat + 1):
            t = e.telemetry
            # Each repetition continues the same vehicles a day later.
            t.seq += repeat * 1_000_000
            t.event_time_us += repeat * 86_400_000_000
            t.ingest_time_us += repeat * 86_400_000_000
            out.append(t)
        repeat += 1
    return out[:events]


def _registry(events: Sequence[telemetry_pb2.Telemetry]) -> list[Vehicle]:
    ids = sorted({t.vehicle_id for t in events})
    kinds = ("van", "car", "truck", "bus", "ev")
    return [
        Vehicle(
            vid,
            "fleet-1",
            kinds[i % len(kinds)],
            model="bench",
            driver_id=f"drv-{i:06d}",
            driver_name=f"Driver {i}",
            electric=kinds[i % len(kinds)] == "ev",
        )
        for i, vid in enumerate(ids)
    ]


def run_stages(
    stack: DevStack,
    *,
    events: int,
    vehicles: int,
    runs: int,
    partitions: int,
    source: Source,
    restore_vehicles: int,
    report: Path,
    console: Console,
) -> list[Summary]:
    session = BenchSession.start(
        stack, name="stages", partitions=partitions, report=report, console=console
    )
    kafka = session.kafka
    base = session.topics()
    work = session.logs("stages")
    with session:
        session.create_topics(topic_specs(base, partitions))
        console.print(f"building {events:,} {source} events for {vehicles:,} vehicles")
        raw_events, fleet = _telemetry(source, vehicles, events)
        registry_path = work / "vehicles.csv"
        write_csv(fleet, registry_path)
        enricher = Enricher(VehicleRegistry(fleet), SpeedLimits())
        enriched = enricher.enrich(
            ((t, t.SerializeToString()) for t in raw_events), now_us=time.time_ns() // 1000
        ).values
        console.print(f"pre-loading {base.raw} and {base.enriched}")
        produce_all(kafka, base.raw, ((t.vehicle_id, t.SerializeToString()) for t in raw_events))
        produce_all(kafka, base.enriched, enriched)
        sizes = {
            "raw": sum(len(t.SerializeToString()) for t in raw_events[:1000]) // 1000,
            "enriched": sum(len(v) for _, v in enriched[:1000]) // 1000,
        }
        results = _measure_stages(
            session, base, registry_path, events=events, runs=runs, partitions=partitions
        )
    summaries = [Summary.of(label, rs) for label, rs in results.items()]
    restore = _time_restore(session, restore_vehicles)
    _write_report(
        session,
        summaries,
        results,
        events=events,
        vehicles=vehicles,
        partitions=partitions,
        source=source,
        sizes=sizes,
        restore=restore,
    )
    session.finish(summaries)
    return summaries


def _measure_stages(
    session: BenchSession,
    base: Topics,
    registry_path: Path,
    *,
    events: int,
    runs: int,
    partitions: int,
) -> dict[str, list[RunResult]]:
    """Every stage and its baseline, ``runs`` times, each run with output topics of its own."""
    kafka, work = session.kafka, session.logs("stages")
    stages = [
        Stage("B (passthrough) on raw", "fleetpipe.passthrough", "raw", {}),
        Stage(
            "enrichment", "fleetpipe.enrichment", "raw", {"FLEET_REGISTRY_PATH": str(registry_path)}
        ),
        Stage(
            "B (passthrough) on enriched",
            "fleetpipe.passthrough",
            "enriched",
            {"FLEET_INPUT_TYPE": "enriched"},
        ),
        Stage("detection", "fleetpipe.detection", "enriched", {}),
    ]
    results: dict[str, list[RunResult]] = {s.label: [] for s in stages}
    for run in range(1, runs + 1):
        # Alternating the stages within each run spreads the machine's drift over all.
        for index, stage in enumerate(stages):
            out = session.topics(f"r{run}", f"s{index}")
            session.create_topics(
                s for s in topic_specs(out, partitions) if s.name not in {out.raw, out.enriched}
            )
            input_topic = base.raw if stage.input == "raw" else base.enriched
            topics = out.model_copy(update={"raw": base.raw, "enriched": base.enriched})
            if stage.module == "fleetpipe.enrichment":
                # Enrichment writes to enriched: give it a fresh one of its own.
                fresh = f"{out.enriched}.out"
                session.create_topics([TopicSpec(fresh, partitions)])
                topics = topics.model_copy(update={"enriched": fresh})
            group = f"stages-{stage.module}-{run}-{session.suffix}"
            env = service_env(
                kafka,
                topics,
                {
                    "FLEET_GROUP_ID": group,
                    "FLEET_INSTANCE_ID": f"bench-{run}",
                    "FLEET_MODE": "exactly-once",
                    "FLEET_INPUT_TOPIC": input_topic,
                    "FLEET_OUTPUT_TOPIC": out.alerts,
                    **stage.env,
                },
            )
            result = measure_service(
                label=stage.label,
                module=stage.module,
                env=env,
                kafka=kafka,
                group_id=group,
                input_topic=input_topic,
                total=events,
                log_file=work / f"{index}-{stage.module.rsplit('.', 1)[1]}-{run}.log",
            )
            results[stage.label].append(result)
            session.console.print(
                f"run {run}/{runs} {stage.label:<28} {result.events_per_s:>10,.0f} events/s "
                f"{result.cpu_us_per_event:6.1f} µs CPU/event"
            )
    return results


def _time_restore(session: BenchSession, vehicles: int) -> dict[str, float]:
    """Write one realistic state per vehicle to a changelog and read it back, timed."""
    if vehicles <= 0:
        return {}
    kafka = session.kafka
    topic = f"fleet.detection.state.v1.{session.suffix}.restore"
    with session:
        session.create_topics([TopicSpec(topic, 12, config={"cleanup.policy": "compact"})])
        states = []
        for i in range(vehicles):
            st = VehicleState(f"fleet-1-veh-{i:06d}")
            st.last_seq, st.last_event_us, st.last_seen_us = 86_400 + i, 1 << 50, 1 << 50
            st.lat, st.lon, st.speed_kmh, st.ignition = 52.3 + i * 1e-5, 4.9, 48.5, True
            st.fleet_id, st.driver_id, st.input_partition = "fleet-1", f"drv-{i:06d}", i % 12
            states.append((st.vehicle_id, encode_state(st)))
        produce_all(kafka, topic, states)
        size = sum(len(v) for _, v in states)
        store = Changelog(kafka, topic=topic, input_topic=topic, client_id="restore-bench")
        started = time.monotonic()
        loaded = store.load(lambda _vid, _st: True)
        elapsed = time.monotonic() - started
        session.console.print(
            f"restore: {len(loaded):,} vehicle states ({size / 2**20:.1f} MiB) in {elapsed:.2f}s"
        )
        return {"vehicles": float(len(loaded)), "bytes": float(size), "seconds": elapsed}


def _ratio(summaries: Sequence[Summary], label: str, baseline: str) -> str:
    by = {s.label: s for s in summaries}
    rate, cpu, extra = versus(by[label], by[baseline])
    return f"| {label} | {baseline} | {cpu:.2f} × | {extra:+.1f} µs | {rate:.2f} × |"


def _write_report(
    session: BenchSession,
    summaries: list[Summary],
    results: dict[str, list[RunResult]],
    *,
    events: int,
    vehicles: int,
    partitions: int,
    source: Source,
    sizes: dict[str, int],
    restore: dict[str, float],
) -> None:
    md = [
        *session.heading(
            "Enrichment and detection: CPU per event and throughput, against baseline B"
        ),
        f"One process per stage, exactly-once, consuming {events:,} pre-loaded records from a "
        f"topic of {partitions} partitions on the same machine as the broker. Input: {source} "
        f"events of {vehicles:,} vehicles (raw ~{sizes['raw']} bytes, enriched "
        f"~{sizes['enriched']} bytes per record); detection's input is exactly enrichment's "
        "output for the same events. The clock and the process's CPU counter (user + system, "
        "librdkafka's threads included) run from the moment the process is ready (its state "
        "restored) until its group has committed every record. B is the core-loop passthrough "
        "(exactly-once) on the same records, measured in the same run.",
        "",
        markdown_table(summaries),
        "",
        "| stage | against | CPU per event | added CPU per event | events/s |",
        "| --- | --- | ---: | ---: | ---: |",
        _ratio(summaries, "enrichment", "B (passthrough) on raw"),
        _ratio(summaries, "detection", "B (passthrough) on enriched"),
        "",
    ]
    if restore:
        md += [
            f"Changelog restore: {restore['vehicles']:,.0f} vehicle states "
            f"({restore['bytes'] / 2**20:.1f} MiB) read to the end and decoded in "
            f"{restore['seconds']:.2f} s.",
            "",
        ]
    session.write_report(
        md,
        results,
        fields={
            "events": events,
            "vehicles": vehicles,
            "partitions": partitions,
            "source": source,
            "record_bytes": sizes,
            "restore": restore,
        },
    )
