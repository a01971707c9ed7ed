"""The whole pipeline's sustained rate with zero loss, against baseline B in the same run.

On the local stack: baseline B first (the core-loop passthrough, as in
:mod:`fleetpipe_dev.bench.baseline`), then the five services as processes (topics, groups and
schema of their own) and, for each offered rate, one load run
(:mod:`fleetpipe_loadtest.loadrun`) of that many vehicles at 1 Hz. A rate is *sustained* when
every accepted event is stored exactly once, the senders offered it (at least 97 % of the target,
the simulator never more than 2 s behind real time), and no stage more than 2 s of input behind,
both over the second half of the load and over its last 10 s (the median consumer lag of each at
most 2 × the rate): the pipeline kept up rather than building a backlog it drained afterwards.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from fleet_operator.sizing import partitions_for
from fleet_operator.spec import FleetSize
from fleetpipe.core.settings import DeliveryMode
from fleetpipe.registry import write_csv
from fleetpipe_dev.bench.baseline import run_baseline
from fleetpipe_dev.bench.cpu import BROKER, DATABASE, DRIVER, OTHER, CpuMeter, CpuUsage
from fleetpipe_dev.bench.harness import Summary, markdown_table
from fleetpipe_dev.bench.local import running_pipeline
from fleetpipe_dev.bench.session import BenchSession
from fleetpipe_dev.stack.devstack import DevStack
from fleetpipe_dev.stack.pipeline import (
    SERVICES,
)
from fleetpipe_loadtest.loadrun import (
    LiveView,
    LoadPlan,
    new_run_id,
    run_load,
    summary_lines,
    write_outputs,
)
from fleetpipe_loadtest.machine import machine
from fleetpipe_loadtest.report import LoadReport, Step

OFFERED_SHARE = 0.97
MAX_BEHIND_S = 2.0
MAX_LAG_S = 2.0
END_WINDOW_S = 10.0


@dataclass(frozen=True)
class RateResult:
    rate: int
    report: LoadReport
    cpu: CpuUsage | None = None

    @property
    def late_lag(self) -> dict[str, tuple[int, int]]:
        """Per stage, the median and the largest lag over the second half of the load."""
        end = self.report.load_end_t
        return self._lags(end / 2, end)

    @property
    def end_lag(self) -> dict[str, int]:
        """Per stage, the median lag over the load's last seconds: a backlog that only built
        up at the end is still a backlog."""
        end = self.report.load_end_t
        return {k: median for k, (median, _) in self._lags(end - END_WINDOW_S, end).items()}

    def _lags(self, start: float, end: float) -> dict[str, tuple[int, int]]:
        window = [s for s in self.report.samples if start <= s.t <= end]
        out = {}
        for stage in sorted({k for s in window for k in s.lag}):
            values = sorted(s.lag.get(stage, 0) for s in window)
            out[stage] = (values[len(values) // 2], values[-1])
        return out

    @property
    def verdicts(self) -> dict[str, bool]:
        r = self.report
        limit = MAX_LAG_S * self.rate
        medians = [m for m, _ in self.late_lag.values()] + list(self.end_lag.values())
        return {
            "exactly once": r.seq is not None and r.seq.exact,
            "offered": r.sent_rate() >= OFFERED_SHARE * self.rate and r.behind_s <= MAX_BEHIND_S,
            "kept up": all(0 <= m <= limit for m in medians),
        }

    @property
    def sustained(self) -> bool:
        return all(self.verdicts.values())


def sized_partitions(rate: int) -> int:
    """The partitions the operator gives the topics of a fleet of ``rate`` vehicles at one
    event a second, with the FleetPipeline's default vehicles per partition."""
    fleet = FleetSize(vehicles=rate)
    return partitions_for(fleet.vehicles, fleet.vehicles_per_partition)


def run_pipeline_bench(
    stack: DevStack,
    *,
    rates: list[int],
    duration_s: float,
    partitions: int,
    processes: int,
    baseline_events: int,
    baseline_runs: int,
    report: Path,
    console: Console,
    overrides: Mapping[str, str] | None = None,
) -> list[RateResult]:
    session = BenchSession.start(
        stack, name="pipe", partitions=partitions, report=report, console=console
    )
    work = session.logs("pipeline")
    load_before = _loadavg()
    console.rule("baseline B, same run")
    baseline = run_baseline(
        stack,
        events=baseline_events,
        runs=baseline_runs,
        partitions=partitions,
        report=work / "baseline-same-run.md",
        console=console,
    )
    token = secrets.token_urlsafe(24)
    base = new_run_id()
    plans = [
        LoadPlan(
            target="",
            token=token,
            fleet_id="bench",
            run_id=f"{base}{i}",
            steps=(Step(rate, duration_s),),
            processes=processes,
            streams=4,
            scenarios="all=0.2",
        )
        for i, rate in enumerate(rates)
    ]
    registry = work / "vehicles.csv"
    write_csv([v for p in plans for v in p.registry()], registry)
    results: list[RateResult] = []
    with running_pipeline(
        session,
        partitions=partitions,
        registry=registry,
        tokens={token: "bench"},
        workdir=work,
        overrides=overrides,
    ) as running:
        pipeline = running.pipeline
        for plan in plans:
            rate = plan.steps[0].vehicles
            console.rule(f"{rate:,} events/s for {duration_s:g} s")
            window = _LoadWindow(CpuMeter(pipeline.pids()), pipeline.check_alive)
            report_ = run_load(
                replace(plan, target=pipeline.ingest_address),
                running.watch,
                on_update=window,
                machine=machine(),
            )
            result = RateResult(rate, report_, window.usage)
            results.append(result)
            for line in summary_lines(result.report):
                console.print(line)
            console.print(f"lag (median, max) {result.late_lag}; verdicts {result.verdicts}")
    _write(report, results, baseline, command=session.command, duration_s=duration_s,
           partitions=partitions, processes=processes, load=(load_before, _loadavg()))  # fmt: skip
    console.print(f"report: {report}")
    return results


@dataclass
class _LoadWindow:
    """CPU per component over the load phase only (not the settling after it)."""

    meter: CpuMeter
    check_alive: Callable[[], None]
    usage: CpuUsage | None = None
    _started: bool = False

    def __call__(self, view: LiveView) -> None:
        self.check_alive()
        if view.phase == "load":
            if not self._started:
                self.meter.start()
                self._started = True
            else:
                self.meter.sample()
        elif self._started and self.usage is None:
            self.usage = self.meter.stop()


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _write(
    report: Path,
    results: list[RateResult],
    baseline: list[Summary],
    *,
    command: str,
    duration_s: float,
    partitions: int,
    processes: int,
    load: tuple[str, str],
) -> None:
    b = {s.label: s.events_per_s[1] for s in baseline}
    b_eos = b.get(f"passthrough, {DeliveryMode.EXACTLY_ONCE.value}", 0.0)
    b_old = b.get(f"per-event passthrough, {DeliveryMode.EXACTLY_ONCE.value}", 0.0)
    sustained = [r for r in results if r.sustained]
    best = max(sustained, key=lambda r: r.rate) if sustained else None
    shown = best or (results[-1] if results else None)
    charts: list[str] = []
    if shown is not None:
        paths = write_outputs(
            shown.report, report.parent, name=report.stem + "-run", title="Pipeline run"
        )
        charts = [p.name for k, p in paths.items() if k not in {"json", "markdown"}]
    md = [
        "# Whole pipeline: highest sustained rate with zero loss, against baseline B",
        "",
        f"Measured with `{command}`.",
        "",
        f"Ingest, enrichment, detection, storage-writer and notification run as one process each "
        f"(their production settings: enrichment and detection exactly-once, storage-writer "
        f"at-least-once with idempotent writes, PostgreSQL and Parquet), with Kafka (one broker, "
        f"{partitions} partitions per topic) and PostgreSQL 15 on the same 2-core machine, and "
        f"the load driver too ({processes} sender processes, 4 gRPC streams each, batches of "
        f"at most 500, each second's events sent in {LoadPlan.slots} evenly spaced slots). "
        f"Each offered rate is that many simulated vehicles at 1 Hz for {duration_s:g} s. "
        "Sustained: every accepted event stored exactly once (per-vehicle seq accounting in the "
        f"database), the rate offered (≥ {OFFERED_SHARE:.0%} sent, simulator ≤ {MAX_BEHIND_S:g} s "
        f"behind), and no stage more than {MAX_LAG_S:g} s of input behind (median consumer lag "
        f"over the second half of the load, and over its last {END_WINDOW_S:g} s, ≤ that many "
        "seconds × the rate).",
        "",
        "| offered events/s | sent events/s | exactly once | kept up | sustained | "
        "ingest → alert p99 (ms) | ingest → stored p50 / p99 (ms) | "
        "consumer lag, second half of the load: median / max (events) | "
        f"consumer lag, last {END_WINDOW_S:g} s: median, the worst stage (events) |",
        "| ---: | ---: | :-: | :-: | :-: | ---: | ---: | --- | --- |",
    ]
    for r in results:
        v, rep = r.verdicts, r.report
        alert = rep.alert_latency_ms.get("p99") if rep.alert_latency_ms else float("nan")
        st = rep.stored_latency_ms
        stored = f"{st.get('p50'):,.0f} / {st.get('p99'):,.0f}" if st else "-"
        md.append(
            f"| {r.rate:,} | {rep.sent_rate():,.0f} | {_yes(v['exactly once'])} | "
            f"{_yes(v['kept up'])} | {_yes(r.sustained)} | "
            f"{f'{alert:,.0f}' if math.isfinite(alert) else '-'} | {stored} | "
            + ", ".join(f"{k} {m:,} / {x:,}" for k, (m, x) in r.late_lag.items())
            + f" | {_worst(r.end_lag)} |"
        )
    md += _cpu_table(results)
    md += ["", "Baseline B in the same run:", "", markdown_table(baseline), ""]
    if best is not None and b_eos:
        md.append(
            f"**Highest sustained rate: {best.rate:,} events/s**, "
            f"{best.rate / b_eos:.2f} × B (exactly-once passthrough of packed raw telemetry, "
            f"{b_eos:,.0f} events/s)"
            + (
                f"; {best.rate / b_old:.2f} × the old per-event B ({b_old:,.0f} events/s)."
                if b_old
                else "."
            )
        )
    else:
        md.append("No offered rate was sustained.")
    md += ["", f"1-minute load average before / after: {load[0]} / {load[1]}.", ""]
    md += ["Machine: " + ", ".join(f"{k} {v}" for k, v in machine().items()), ""]
    if shown is not None:
        md += [
            f"The run at {shown.rate:,} events/s in full: "
            f"[{report.stem}-run.md]({report.stem}-run.md).",
            "",
        ]
        md += [f"![{c}]({c})" for c in charts]
    report.write_text("\n".join(md) + "\n" + _kept_reading(report))
    doc: dict[str, Any] = {
        "command": command,
        "machine": machine(),
        "load_average_before_after": list(load),
        "duration_s": duration_s,
        "partitions": partitions,
        "baseline_events_per_s": b,
        "highest_sustained_events_per_s": best.rate if best else None,
        "ratio_to_b_exactly_once": best.rate / b_eos if best and b_eos else None,
        "rates": [
            {
                "offered": r.rate,
                "verdicts": r.verdicts,
                "sustained": r.sustained,
                "lag_second_half_median_max": r.late_lag,
                "lag_last_seconds_median": r.end_lag,
                "cpu_load_phase": r.cpu.as_dict(r.report.sent) if r.cpu else None,
                "report": r.report.as_dict() | {"samples": len(r.report.samples)},
            }
            for r in results
        ],
    }
    report.with_suffix(".json").write_text(json.dumps(doc, indent=2, default=str) + "\n")


def _worst(lags: Mapping[str, int]) -> str:
    if not lags:
        return "-"
    stage = max(lags, key=lambda k: lags[k])
    return f"{stage} {lags[stage]:,}"


CPU_COLUMNS = (*SERVICES, BROKER, DATABASE, DRIVER, OTHER)


def _cpu_table(results: list[RateResult]) -> list[str]:
    measured = [r for r in results if r.cpu is not None]
    if not measured:
        return []
    md = [
        "",
        "Where the CPU went during the load phase (every process on the machine, by component): "
        "cores kept busy on average, and CPU µs per event sent. The load driver is the sender "
        "processes and the process watching the pipeline (alerts, lag, row counts).",
        "",
        "| offered events/s | " + " | ".join(CPU_COLUMNS) + " | machine busy |",
        "| ---: | " + " | ".join("---:" for _ in CPU_COLUMNS) + " | ---: |",
    ]
    for r in measured:
        assert r.cpu is not None
        cells = [
            f"{r.cpu.cores(c):.2f} ({r.cpu.per_event_us(c, r.report.sent):.1f} µs)"
            for c in CPU_COLUMNS
        ]
        md.append(f"| {r.rate:,} | " + " | ".join(cells) + f" | {r.cpu.machine_share:.0%} |")
    return md


# A report's own reading of its figures, under this heading, survives a re-run of the
# benchmark: the generated sections above it are replaced, the reading is kept for its author
# to bring up to date.
READING = "## Reading the figures (written by hand; the sections above are generated)"


def _kept_reading(report: Path) -> str:
    if not report.exists():
        return ""
    text = report.read_text()
    at = text.find(READING)
    return "\n" + text[at:] if at >= 0 else ""


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"
