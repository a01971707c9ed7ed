"""The load driver's own cost: CPU µs per event it sends, at a few offered rates.

A broker of its own (free loopback ports, a temporary folder: the dev stack and anything else
running are left alone) with a raw topic of ``partitions`` partitions, and one ingest process in
front of it. For each run the driver's worker — the very function ``fleetpipe loadtest run``
starts per sender process — runs as its own process, offering ``rate`` simulated vehicles at 1 Hz
for ``seconds``. Its CPU (user + system of the whole process, gRPC's threads included, read from
``/proc``) is taken when its first progress report arrives (after start-up and the fleet's
set-up) and again with its final report (after every batch was acknowledged), and divided by the
events it sent in between.

Only CPU time is measured: on a shared machine it is the one figure that means the same from one
run to the next; wall-clock rates are not.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from fleetpipe.core.kafka import build_admin
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.core.topics import TopicSpec
from fleetpipe_dev.bench.ingest import start_ingest
from fleetpipe_dev.stack.kafka import KafkaBroker, kafka_libs
from fleetpipe_dev.stack.procs import free_port
from fleetpipe_loadtest.loadrun import LoadPlan, worker_main
from fleetpipe_loadtest.report import Step

FLEET = "fleet-driver-bench"


@dataclass(frozen=True)
class DriverRun:
    rate: int
    events: int  # sent from the first progress report to the end
    acked: int
    rejected: int
    cpu_s: float  # from the first progress report to the final one
    # From the first progress report to the last before the final one: the load alone, without
    # the end's one-time work (waiting for the last acknowledgements, closing the channels,
    # the run's accounting), which a short run at a low rate would otherwise spread thin.
    sending_events: int
    sending_cpu_s: float

    @property
    def us_per_event(self) -> float:
        return self.cpu_s / max(self.events, 1) * 1e6

    @property
    def sending_us_per_event(self) -> float:
        return self.sending_cpu_s / max(self.sending_events, 1) * 1e6


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_driver(plan: LoadPlan, *, timeout_s: float = 300.0) -> DriverRun:
    """Run one driver worker as its own process and measure its CPU per event sent."""
    ctx = multiprocessing.get_context("spawn")
    updates: multiprocessing.Queue[tuple[int, dict[str, Any]]] = ctx.Queue()
    stop = ctx.Event()
    proc = ctx.Process(target=worker_main, args=(plan, 0, updates, stop), name="driver-bench")
    proc.start()
    assert proc.pid is not None
    first: tuple[float, int] | None = None
    last: tuple[float, int] | None = None
    final: dict[str, Any] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while not final:
            if time.monotonic() > deadline:
                raise TimeoutError("the driver did not finish")
            try:
                _, msg = updates.get(timeout=1.0)
            except queue.Empty:
                if not proc.is_alive():
                    raise RuntimeError(f"the driver exited with {proc.exitcode}") from None
                continue
            if msg.get("error"):
                raise RuntimeError(msg["error"])
            sends = msg["sends"]
            if msg.get("final"):
                cpu = _cpu_seconds(proc.pid)
                final = msg
            elif sends.sent > 0:
                last = (_cpu_seconds(proc.pid), sends.sent)
                first = first or last
    finally:
        stop.set()
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
    assert first is not None and last is not None, "no progress report before the final one"
    sends = final["sends"]
    return DriverRun(
        rate=plan.steps[0].vehicles,
        events=sends.sent - first[1],
        acked=sends.accepted,
        rejected=sends.rejected,
        cpu_s=cpu - first[0],
        sending_events=last[1] - first[1],
        sending_cpu_s=last[0] - first[0],
    )


def run_driver_bench(
    *,
    rates: Sequence[int],
    seconds: float,
    runs: int,
    partitions: int,
    report: Path,
    console: Console,
) -> dict[int, list[DriverRun]]:
    work = Path(tempfile.mkdtemp(prefix="fleetpipe-driver-bench-"))
    broker = KafkaBroker(
        home=work / "kafka", port=free_port(), controller_port=free_port(), libs=kafka_libs()
    )
    pid = broker.start()
    results: dict[int, list[DriverRun]] = {r: [] for r in rates}
    try:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap)
        topics = Topics.with_suffix("driverbench")
        build_admin(kafka).ensure_topics(
            [TopicSpec(topics.raw, partitions), TopicSpec(topics.deadletter, 1)]
        )
        token = secrets.token_urlsafe(24)
        ingest, address = start_ingest(kafka, topics, work / "ingest.log", token=token, fleet=FLEET)
        try:
            for run in range(1, runs + 1):
                for rate in rates:
                    plan = LoadPlan(
                        target=address,
                        token=token,
                        fleet_id=FLEET,
                        run_id=f"d{int(time.time())}{run}x{rate}",
                        steps=(Step(rate, seconds),),
                        processes=1,
                    )
                    result = measure_driver(plan)
                    results[rate].append(result)
                    console.print(
                        f"run {run}/{runs} {rate:>7,} events/s offered: sent {result.events:,}, "
                        f"accepted {result.acked:,}, rejected {result.rejected:,}; "
                        f"{result.cpu_s:.2f} s CPU, {result.us_per_event:.2f} µs/event "
                        f"({result.sending_us_per_event:.2f} while sending)"
                    )
        finally:
            ingest.stop()
    finally:
        broker.stop(pid)
        shutil.rmtree(work, ignore_errors=True)
    _write(report, results, seconds=seconds, partitions=partitions)
    return results


def _write(
    report: Path, results: dict[int, list[DriverRun]], *, seconds: float, partitions: int
) -> None:
    report.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "seconds": seconds,
        "partitions": partitions,
        "rates": {
            str(rate): {
                "median_us_per_event": statistics.median(r.us_per_event for r in rs),
                "median_sending_us_per_event": statistics.median(
                    r.sending_us_per_event for r in rs
                ),
                "runs": [
                    {
                        "events": r.events,
                        "acked": r.acked,
                        "rejected": r.rejected,
                        "cpu_s": r.cpu_s,
                        "sending_events": r.sending_events,
                        "sending_cpu_s": r.sending_cpu_s,
                    }
                    for r in rs
                ],
            }
            for rate, rs in results.items()
            if rs
        },
    }
    report.write_text(json.dumps(doc, indent=2) + "\n")
