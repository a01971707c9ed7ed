"""The record of a growth run in pods (``fleetpipe dev cluster growth``) and its report: the
samples taken while the load ran, the patches with their Ready times, the outcome and its
verdict, written as markdown beside the raw JSON and the charts. No I/O but the writing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fleetpipe_dev.cluster.observe import Stored

# The span of the smoothed rate: the database's insert counter moves in steps (each writer's
# commits, statistics sent at most once a second), so rates between 5 s samples jump.
SMOOTH_S = 30.0


@dataclass(frozen=True)
class Sample:
    """What the cluster said at one moment of the run."""

    t: float  # seconds since the load Job was started
    # Telemetry rows the database inserted since the run began, or None when it did not answer.
    stored: int | None
    # Records appended to the ingest topic since the run began (its end offsets), or None; a
    # record packs one event or several (fleetpipe.core.packs), so this counts records.
    ingested: int | None
    lag: dict[str, int]  # consumer group → records behind (committed vs end offsets)
    desired: dict[str, int]  # service → the replicas its Deployment asks for
    ready: dict[str, int]  # service → its live pods Running and Ready
    partitions: int | None  # the FleetPipeline's status.partitions.current
    vehicles: int  # the FleetPipeline's spec.fleet.vehicles
    pipeline_ready: bool  # Ready for the spec's current generation


@dataclass
class Patch:
    """One change of the fleet's size and how long the pipeline took to follow it."""

    name: str
    at_s: float  # seconds since the load Job was started
    vehicles_from: int
    vehicles_to: int
    # Patch → the FleetPipeline Ready for the new generation; None: not within the run.
    ready_s: float | None = None
    # Patch → every service's live pods Running and Ready, as many as the status desires.
    pods_s: float | None = None
    partitions: int | None = None  # when Ready
    replicas: dict[str, int] = field(default_factory=dict)  # desired, when Ready


@dataclass(frozen=True)
class Outcome:
    job: str | None  # the load Job's end: Complete, Failed, or None (did not end)
    stored: Stored | None  # the Job's own accounting, None when its log has none
    alerts: int  # alert episodes begun in the run
    overlapping: list[str]  # pairs of episodes of one vehicle and rule that overlap


@dataclass
class GrowthRun:
    command: str
    started: str  # UTC
    machine: dict[str, str]
    settings: dict[str, Any]
    samples: list[Sample] = field(default_factory=list)
    patches: list[Patch] = field(default_factory=list)
    outcome: Outcome | None = None


# ---- figures ---------------------------------------------------------------------------------
def rates(
    samples: Sequence[Sample], name: str, *, window_s: float = 0.0
) -> list[tuple[float, float]]:
    """Per second of ``stored`` or ``ingested``, at each sample: over the span back to the
    sample before it (``window_s`` 0), or back to the earliest sample within ``window_s``. A
    sample whose count is missing is skipped: the next rate spans the gap."""
    counted = [(s.t, count) for s in samples if (count := getattr(s, name)) is not None]
    points: list[tuple[float, float]] = []
    first = 0
    for i, (t, count) in enumerate(counted):
        if i == 0:
            continue
        while first < i - 1 and counted[first + 1][0] <= t - window_s:
            first += 1
        if window_s <= 0:
            first = i - 1
        t0, count0 = counted[first]
        if t > t0:
            points.append((t, (count - count0) / (t - t0)))
    return points


def verdict(run: GrowthRun) -> list[str]:
    """What went wrong, in words; empty when nothing was lost, duplicated or reopened and the
    pipeline followed every patch."""
    wrong: list[str] = []
    outcome = run.outcome
    if outcome is None:
        return ["the run did not finish"]
    if outcome.job != "Complete":
        wrong.append(f"the load Job ended {outcome.job or 'not at all'}")
    if outcome.stored is None:
        wrong.append("the load Job's log has no accounting")
    else:
        if outcome.stored.missing:
            wrong.append(f"{outcome.stored.missing:,} events missing")
        if outcome.stored.duplicates:
            wrong.append(f"{outcome.stored.duplicates:,} events stored twice")
        if outcome.stored.expected == 0:
            wrong.append("no event was accepted")
    if outcome.overlapping:
        wrong.append(f"{len(outcome.overlapping)} alert episodes reopened or stored twice")
    for patch in run.patches:
        if patch.ready_s is None:
            wrong.append(f"{patch.name}: the pipeline was not Ready again within the run")
        elif patch.pods_s is None:
            wrong.append(f"{patch.name}: the services' pods were not all Ready within the run")
    return wrong


def _n(value: float | None, unit: str = "", digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}{unit}"


def _at(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def _sizes(values: Sequence[int | None]) -> str:
    """Distinct values in the order they came: 50 → 100, 2 → 4 → 2."""
    seen: list[int] = []
    for v in values:
        if v is not None and (not seen or seen[-1] != v):
            seen.append(v)
    return " → ".join(f"{v:,}" for v in seen) or "–"


def _start_partitions(settings: dict[str, Any]) -> str:
    start, base = settings.get("partitions_at_start"), settings.get("base_partitions")
    if start is None:
        return "–"
    if base is not None and start > base:
        return (
            f"{start:,}, not {base:,}: an earlier growth left them (Kafka cannot remove "
            "partitions), so only the replicas grow in this run"
        )
    return f"{start:,}"


def _replicas(replicas: dict[str, int]) -> str:
    if len(set(replicas.values())) == 1:
        return f"{next(iter(replicas.values()))} of each service"
    return ", ".join(f"{k} {v}" for k, v in sorted(replicas.items())) or "–"


# ---- the report ------------------------------------------------------------------------------
def markdown(run: GrowthRun, charts: Sequence[Path]) -> str:
    s = run.settings
    wrong = verdict(run)
    outcome = run.outcome
    stored = outcome.stored if outcome else None
    stored_rates = [r for _, r in rates(run.samples, "stored")]
    smooth = [r for _, r in rates(run.samples, "stored", window_s=SMOOTH_S)]
    groups = sorted({g for sample in run.samples for g in sample.lag})
    services = sorted({k for sample in run.samples for k in sample.desired})
    lines = [
        "# Growth in pods: the fleet grows and shrinks under load",
        "",
        f"Run {run.started} with `{run.command}`.",
        "",
        "The pipeline runs in real pods on the local one-node cluster (`fleetpipe dev cluster "
        "install`). The chart's load-test Job sends telemetry for the whole run while the "
        f"FleetPipeline is patched from {s['base_vehicles']:,} to {s['grown_vehicles']:,} "
        f"vehicles and back; every {s['interval_s']:g} s the command samples the rows stored "
        "(PostgreSQL's insert counter of the telemetry table), the records on the ingest topic "
        "(its end offsets; a record packs one event or more), each consumer group's lag in "
        "records (committed against end offsets), each "
        "service's desired and Ready replicas, and the pipeline's partitions and Ready "
        "condition. At the end, the Job's own per-event accounting says what was lost or "
        "stored twice, and the alerts table which episodes were reopened.",
        "",
        "| settings | |",
        "| --- | --- |",
        f"| load | {s['vehicles']:,} vehicles × {s['rate']:g} event/s for {s['minutes']:g} min "
        f"(load-test Job, profile `{s['profile']}`) |",
        f"| fleet | {s['base_vehicles']:,} vehicles, {s['grown_vehicles']:,} at "
        f"{s['grow_at_min']:g} min, {s['base_vehicles']:,} again at {s['shrink_at_min']:g} min |",
        f"| sampling | every {s['interval_s']:g} s ({len(run.samples)} samples) |",
        f"| partitions at the start | {_start_partitions(s)} |",
        "",
        "| figures | |",
        "| --- | ---: |",
        f"| verdict | {'**pass**' if not wrong else '**FAIL**: ' + '; '.join(wrong)} |",
        f"| load Job | {(outcome.job if outcome else None) or 'did not end'} |",
        f"| events accepted (expected) | {_n(stored.expected if stored else None)} |",
        f"| stored once | {_n(stored.stored if stored else None)} |",
        f"| missing | {_n(stored.missing if stored else None)} |",
        f"| stored twice | {_n(stored.duplicates if stored else None)} |",
        f"| rows stored per second, mean of samples | "
        f"{_n(sum(stored_rates) / len(stored_rates) if stored_rates else None)} |",
        f"| rows stored per second, lowest and highest over {SMOOTH_S:.0f} s | "
        f"{_n(min(smooth, default=None))} – {_n(max(smooth, default=None))} |",
    ]
    for group in groups:
        worst = max((sample.lag.get(group, 0) for sample in run.samples), default=None)
        lines.append(f"| lag of {group}, at worst | {_n(worst)} |")
    lines += [
        f"| alert episodes begun in the run | {_n(outcome.alerts if outcome else None)} |",
        f"| episodes reopened or stored twice | "
        f"{_n(len(outcome.overlapping) if outcome else None)} |",
        f"| partitions | {_sizes([sample.partitions for sample in run.samples])} |",
    ]
    sizes = {s: _sizes([sample.desired.get(s) for sample in run.samples]) for s in services}
    if len(set(sizes.values())) == 1:
        lines.append(f"| replicas of every service | {next(iter(sizes.values()))} |")
    else:
        lines += [f"| replicas of {service} | {said} |" for service, said in sizes.items()]
    lines += [
        "",
        "| patch | at (min:s) | vehicles | patch → Ready | patch → every pod Ready | "
        "partitions | replicas |",
        "| --- | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for p in run.patches:
        reps = _replicas(p.replicas)
        lines.append(
            f"| {p.name} | {_at(p.at_s)} | {p.vehicles_from:,} → {p.vehicles_to:,} | "
            f"{_n(p.ready_s, ' s', 1)} | {_n(p.pods_s, ' s', 1)} | {_n(p.partitions)} | {reps} |"
        )
    lines += [
        "",
        "Ready times are measured by polling every second after a patch: they are exact to "
        "about a second. The pipeline's Ready condition waits for its pods, so the two times "
        "agree; the second is read from the pods themselves, a check on the first. "
        "Partitions only grow (Kafka cannot remove one): after the shrink the topics keep "
        "theirs and only the replicas follow the fleet back.",
    ]
    if outcome and outcome.overlapping:
        lines += ["", "Overlapping episodes (vehicle, rule, start, end, start, end):", ""]
        lines += [f"- `{row}`" for row in outcome.overlapping[:20]]
    if charts:
        lines.append("")
        lines += [f"![{c.stem}]({c.name})" for c in charts]
    machine = ", ".join(f"{k} {v}" for k, v in run.machine.items())
    lines += ["", f"Machine: {machine}", ""]
    return "\n".join(lines)


def run_json(run: GrowthRun) -> str:
    body = asdict(run)
    body["verdict"] = verdict(run)
    return json.dumps(body, indent=1)
