"""Measures one service process on pre-loaded input: events/s and CPU µs per event.

The service runs as its own process, as in production. The clock and the CPU counter start when
the service reports ready (its partitions are assigned) and stop when its consumer group has
committed every input record, so start-up cost (imports, connecting) is not counted.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fleetpipe.core.settings import KafkaSettings
from fleetpipe_dev.testing import ServiceProcess, committed_total, wait_for


@dataclass(frozen=True)
class RunResult:
    label: str
    events: int
    wall_s: float
    cpu_s: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_s / self.events * 1e6 if self.events else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "events_per_s": self.events_per_s,
            "cpu_us_per_event": self.cpu_us_per_event,
        }


def measure_service(
    *,
    label: str,
    module: str,
    env: dict[str, str],
    kafka: KafkaSettings,
    group_id: str,
    input_topic: str,
    total: int,
    log_file: Path,
    timeout: float = 600.0,
) -> RunResult:
    proc = ServiceProcess(module, env, log_file).start()
    try:

        def ready() -> bool:
            proc.check_alive()
            return proc.ready()

        wait_for(ready, timeout=120, interval=0.02, what=f"{module} to be ready")
        t0, cpu0 = time.monotonic(), proc.cpu_seconds()
        done0 = committed_total(kafka, group_id, input_topic)

        def finished() -> bool:
            proc.check_alive()
            return committed_total(kafka, group_id, input_topic) >= total

        wait_for(finished, timeout=timeout, interval=0.1, what=f"{module} to consume {total}")
        t1, cpu1 = time.monotonic(), proc.cpu_seconds()
    finally:
        proc.stop()
    return RunResult(label=label, events=total - done0, wall_s=t1 - t0, cpu_s=cpu1 - cpu0)


@dataclass(frozen=True)
class Summary:
    label: str
    runs: int
    events_per_s: tuple[float, float, float]  # min, median, max
    cpu_us_per_event: tuple[float, float, float]

    @classmethod
    def of(cls, label: str, results: Sequence[RunResult]) -> Summary:
        rates = [r.events_per_s for r in results]
        cpus = [r.cpu_us_per_event for r in results]
        return cls(
            label,
            len(results),
            (min(rates), statistics.median(rates), max(rates)),
            (min(cpus), statistics.median(cpus), max(cpus)),
        )


def versus(stage: Summary, base: Summary) -> tuple[float, float, float]:
    """``stage`` against ``base``, medians: events/s ratio, CPU-per-event ratio, and the CPU µs
    per event it adds."""
    rate = stage.events_per_s[1] / base.events_per_s[1]
    cpu = stage.cpu_us_per_event[1] / base.cpu_us_per_event[1]
    extra = stage.cpu_us_per_event[1] - base.cpu_us_per_event[1]
    return rate, cpu, extra


def markdown_table(summaries: Sequence[Summary]) -> str:
    lines = [
        "| what | runs | events/s (median) | min – max | CPU µs/event (median) | min – max |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in summaries:
        lines.append(
            f"| {s.label} | {s.runs} | {s.events_per_s[1]:,.0f} | "
            f"{s.events_per_s[0]:,.0f} – {s.events_per_s[2]:,.0f} | "
            f"{s.cpu_us_per_event[1]:.1f} | {s.cpu_us_per_event[0]:.1f} – "
            f"{s.cpu_us_per_event[2]:.1f} |"
        )
    return "\n".join(lines)


def write_report(
    report: Path,
    markdown: Sequence[str],
    results: Mapping[str, Sequence[RunResult]],
    *,
    command: str,
    env: Mapping[str, str],
    fields: Mapping[str, Any],
    digits: int = 1,
) -> None:
    """The Markdown report, closed by the machine and every run's figures, and its JSON twin
    (the same name, ending in .json): the command, the machine, ``fields`` and every run."""
    lines = [*markdown, "Machine: " + ", ".join(f"{k} {v}" for k, v in env.items()), ""]
    lines += ["Every run:", ""]
    lines += [
        f"- {label}: "
        + ", ".join(f"{r.events_per_s:,.0f}/s {r.cpu_us_per_event:.{digits}f} µs" for r in runs)
        for label, runs in results.items()
    ]
    report.write_text("\n".join(lines) + "\n")
    data = {
        "command": command,
        "machine": env,
        **fields,
        "runs": {label: [r.as_dict() for r in runs] for label, runs in results.items()},
    }
    report.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
