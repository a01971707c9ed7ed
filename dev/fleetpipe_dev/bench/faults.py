"""Faults under load, end to end: what is lost, repeated or sent twice, and how long recovery takes.

On the dev stack the five services run as processes (exactly-once enrichment and detection, as in
production) while the load driver sends a steady fleet with scenarios injected. During the load,
one fault at a time: each service SIGKILLed and started again, the broker SIGKILLed and started
again, PostgreSQL stopped for 30 s, and the Twilio-contract server answering 429, then 500, then
not at all (timeouts). At the end the run counts, and all must be zero:

- events lost or stored twice: per-vehicle seq accounting in the database against what ingest
  acknowledged;
- alert records repeated (an (alert, state) twice on the alerts topic) and episodes reopened (an
  alert opened again after it resolved);
- notifications sent twice: a message or call the provider holds that no delivery in the ledger
  claims, or two messages carrying one delivery's reference.

Recovery of a fault is the time from its end (the process or server back) until every stage's
consumer lag is under 2 s of input again.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from rich.console import Console

from fleet_operator.sizing import partitions_for
from fleet_operator.spec import FleetSize
from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.pb.v1 import alert_pb2
from fleetpipe.registry import write_csv
from fleetpipe_dev.bench.local import RunningPipeline, running_pipeline
from fleetpipe_dev.bench.session import BenchSession
from fleetpipe_dev.stack.devstack import DevStack
from fleetpipe_dev.stack.pipeline import SERVICES
from fleetpipe_dev.testing import read_all, wait_for
from fleetpipe_dev.twilio.audit import audit_deliveries
from fleetpipe_dev.twilio.store import ContractStore
from fleetpipe_loadtest.loadrun import LiveView, LoadPlan, new_run_id, run_load, summary_lines
from fleetpipe_loadtest.machine import machine
from fleetpipe_loadtest.report import LoadReport, Step

MAX_LAG_S = 2.0
PG_DOWN_S = 30.0
BROKER_DOWN_S = 5.0

log = logging.getLogger(__name__)


@dataclass
class Fault:
    name: str
    start_t: float
    end_t: float = float("nan")
    detail: str = ""
    recovered_t: float | None = None  # lag back under the bound, from the load's samples

    @property
    def recovery_s(self) -> float | None:
        return None if self.recovered_t is None else self.recovered_t - self.end_t


@dataclass
class _Schedule:
    """Runs the faults on a thread of its own, once the load has started."""

    stack: DevStack
    running: RunningPipeline
    gap_s: float
    faults: list[Fault] = field(default_factory=list)
    error: BaseException | None = None
    _t0: float = 0.0
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def on_update(self, view: LiveView) -> None:
        if view.phase == "load" and self._thread is None:
            # The load's clock: its samples' t are seconds since the load began.
            self._t0 = time.monotonic() - view.elapsed_s
            self._thread = threading.Thread(target=self._run, name="faults", daemon=True)
            self._thread.start()
        if self.error is not None:
            raise RuntimeError(f"a fault could not be injected: {self.error}") from self.error

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _run(self) -> None:
        steps: list[tuple[str, Callable[[], str]]] = [
            *((f"SIGKILL {s}", self._kill(s)) for s in SERVICES),
            ("broker SIGKILL, restart", self._restart_broker),
            (f"PostgreSQL stopped {PG_DOWN_S:g} s", self._stop_postgres),
            ("Twilio 429 × 10, 500 × 10, 3 timeouts after creating", self._twilio_faults),
        ]
        try:
            for k, (name, act) in enumerate(steps, start=1):
                # On a fixed timetable: a fault that took long does not push the others out of
                # the load.
                if self._stop.wait(max(0.0, k * self.gap_s - self._now())):
                    return
                fault = Fault(name, self._now())
                fault.detail = act()
                fault.end_t = self._now()
                self.faults.append(fault)
        except BaseException as exc:
            self.error = exc

    def join(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(120)

    def _kill(self, service: str) -> Callable[[], str]:
        def act() -> str:
            proc = self.running.pipeline.processes[service]
            old = proc.pid
            proc.kill()
            proc.start()
            wait_for(proc.ready, timeout=120, interval=0.2, what=f"{service} ready again")
            return f"pid {old} → {proc.pid}"

        return act

    def _restart_broker(self) -> str:
        stack = self.stack
        entry = stack.state.processes["kafka"]
        stack.broker.stop(int(entry["pid"]), kill=True)
        time.sleep(BROKER_DOWN_S)
        entry["pid"] = stack.broker.start()
        stack.state.save()
        return f"down {BROKER_DOWN_S:g} s"

    def _stop_postgres(self) -> str:
        stack = self.stack
        entry = stack.state.processes["postgres"]
        stack.postgres.stop(int(entry["pid"]))
        time.sleep(PG_DOWN_S)
        entry["pid"] = stack.postgres.start()
        stack.state.save()
        return f"down {PG_DOWN_S:g} s"

    def _twilio_faults(self) -> str:
        contract: ContractStore = self.running.twilio.contract

        def creates() -> int:
            return len(contract.creates("Messages")) + len(contract.creates("Calls"))

        before = creates()
        contract.fail_next(10, status=429)
        contract.fail_next(10, status=500)
        # The message is created, the answer never comes: the retry must find it, not resend.
        contract.fail_next(3, kind="timeout_after_create", hang_s=20.0)
        armed = 23
        # The fault lasts until the notification service has met every failure it was armed
        # with (each failing request uses one), or the next fault is due.
        deadline = time.monotonic() + self.gap_s * 2
        while creates() - before < armed and time.monotonic() < deadline:
            if self._stop.wait(0.5):
                break
        used = min(armed, creates() - before)
        return f"{used} of {armed} failing answers given, then answering again"


@dataclass(frozen=True)
class Counts:
    lost: int
    stored_twice: int
    unexpected: int
    alert_records_repeated: int
    episodes_reopened: int
    notifications_unclaimed: int
    messages_with_one_reference: int

    @property
    def all_zero(self) -> bool:
        return not any(vars(self).values())


def run_fault_drill(
    stack: DevStack,
    *,
    rate: int,
    duration_s: float,
    gap_s: float,
    processes: int,
    report: Path,
    console: Console,
) -> tuple[Counts, list[Fault], LoadReport]:
    partitions = partitions_for(rate, FleetSize(vehicles=rate).vehicles_per_partition)
    session = BenchSession.start(
        stack, name="faults", partitions=partitions, report=report, console=console
    )
    work = session.logs("faults")
    token = secrets.token_urlsafe(24)
    plan = LoadPlan(
        target="",
        token=token,
        fleet_id="faults",
        run_id=new_run_id(),
        steps=(Step(rate, duration_s),),
        processes=processes,
        streams=2,
        scenarios="all=0.2",
    )
    registry = work / "vehicles.csv"
    write_csv(plan.registry(), registry)
    with running_pipeline(
        session,
        partitions=partitions,
        registry=registry,
        tokens={token: "faults"},
        workdir=work,
    ) as running:
        schedule = _Schedule(stack, running, gap_s)
        console.rule(f"{rate:,} events/s for {duration_s:g} s, a fault every {gap_s:g} s")
        try:
            load = run_load(
                replace(plan, target=running.pipeline.ingest_address),
                running.watch,
                on_update=schedule.on_update,
                machine=machine(),
                settle_timeout_s=600,
            )
        finally:
            schedule.join()
        for line in summary_lines(load):
            console.print(line)
        running.pipeline.check_alive()
        counts = _count(load, running, session.kafka, plan.id_prefix)
    _recoveries(schedule.faults, load, bound=MAX_LAG_S * rate)
    _write(report, session, counts, schedule.faults, load, rate=rate, partitions=partitions,
           duration_s=duration_s, gap_s=gap_s)  # fmt: skip
    console.print(f"report: {report}")
    return counts, schedule.faults, load


def _count(load: LoadReport, running: RunningPipeline, kafka: KafkaSettings, prefix: str) -> Counts:
    seq = load.seq
    if seq is None:
        raise RuntimeError("the load run did not account for the stored events")
    repeated, reopened = _alert_repeats(kafka, running.config.topics, prefix)
    unclaimed, shared, resources = _notification_repeats(running)
    if resources:
        log.warning("provider resources no delivery claims: %s", resources)
    return Counts(
        lost=seq.missing,
        stored_twice=seq.duplicates,
        unexpected=seq.unexpected,
        alert_records_repeated=repeated,
        episodes_reopened=reopened,
        notifications_unclaimed=unclaimed,
        messages_with_one_reference=shared,
    )


def _alert_repeats(kafka: KafkaSettings, topics: Topics, prefix: str) -> tuple[int, int]:
    said: Counter[tuple[str, int]] = Counter()
    order: dict[str, list[int]] = {}
    for msg in read_all(kafka, topics.alerts, read_committed=True, timeout=300):
        alert = alert_pb2.Alert.FromString(msg.value() or b"")
        if not alert.vehicle_id.startswith(prefix):
            continue
        said[(alert.alert_id, alert.state)] += 1
        order.setdefault(alert.alert_id, []).append(alert.state)
    once = (alert_pb2.ALERT_STATE_OPEN, alert_pb2.ALERT_STATE_RESOLVED)
    repeated = sum(n - 1 for (_, state), n in said.items() if state in once and n > 1)
    reopened = 0
    for states in order.values():
        if alert_pb2.ALERT_STATE_RESOLVED in states:
            first_resolved = states.index(alert_pb2.ALERT_STATE_RESOLVED)
            reopened += alert_pb2.ALERT_STATE_OPEN in states[first_resolved:]
    return repeated, reopened


def _notification_repeats(running: RunningPipeline) -> tuple[int, int, list[dict[str, Any]]]:
    """Provider resources no delivery claims, messages sharing a reference, and the unclaimed
    resources themselves. Read once no delivery is in flight (no ledger row PENDING), so a
    message created a moment before its row is settled is not miscounted."""
    config = running.config
    ledger = sql.SQL("SELECT provider_sid, status FROM {}.notification_ledger").format(
        sql.Identifier(config.schema)
    )

    def settled() -> list[tuple[str | None, str]] | None:
        with psycopg.connect(config.postgres_dsn, autocommit=True, connect_timeout=10) as conn:
            rows = [(r[0], str(r[1])) for r in conn.execute(ledger).fetchall()]
        return None if any(status == "PENDING" for _, status in rows) else rows

    rows = wait_for(settled, timeout=180, interval=1.0, what="every delivery settled")
    contract = running.twilio.contract
    found = audit_deliveries([sid for sid, _ in rows], contract.messages(), contract.calls())
    return len(found.unclaimed), found.repeated_references, found.unclaimed


def _recoveries(faults: list[Fault], load: LoadReport, *, bound: float) -> None:
    """Each fault's recovery: the first sample after its end with every stage's lag ≤ bound."""
    for fault in faults:
        for s in load.samples:
            if s.t >= fault.end_t and s.lag and max(s.lag.values()) <= bound:
                fault.recovered_t = s.t
                break


def _write(
    report: Path,
    session: BenchSession,
    counts: Counts,
    faults: list[Fault],
    load: LoadReport,
    *,
    rate: int,
    partitions: int,
    duration_s: float,
    gap_s: float,
) -> None:
    md = session.heading("Faults under load: nothing lost, repeated or sent twice")
    md += [
        f"The five services as processes on the dev stack (Kafka, one broker; PostgreSQL 15), "
        f"{rate:,} vehicles at 1 Hz for {duration_s:g} s with scenarios injected (`all=0.2`), "
        f"topics at {partitions} partitions (the operator's sizing for this fleet); a fault "
        f"every {gap_s:g} s. Recovery: from the end of the fault (process or server back) "
        f"until every stage's consumer lag is under {MAX_LAG_S:g} s of input "
        f"({MAX_LAG_S * rate:,.0f} records).",
        "",
        "| fault | at (s) | ended (s) | detail | recovered after (s) |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    for f in faults:
        rec = f"{f.recovery_s:.1f}" if f.recovery_s is not None else "**not within the run**"
        md.append(f"| {f.name} | {f.start_t:.1f} | {f.end_t:.1f} | {f.detail} | {rec} |")
    md += [
        "",
        "| count | value |",
        "| --- | ---: |",
        *(f"| {k.replace('_', ' ')} | {v:,} |" for k, v in vars(counts).items()),
        f"| **all zero** | {'yes' if counts.all_zero else '**no**'} |",
        "",
        f"Events sent {load.sent:,}, acknowledged {load.acked:,}, rejected {load.rejected:,}; "
        f"alerts opened {load.alerts_opened:,}.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine().items()),
        "",
    ]
    report.write_text("\n".join(md))
    doc: dict[str, Any] = {
        "command": session.command,
        "machine": machine(),
        "rate": rate,
        "partitions": partitions,
        "duration_s": duration_s,
        "counts": vars(counts) | {"all_zero": counts.all_zero},
        "faults": [vars(f) | {"recovery_s": f.recovery_s} for f in faults],
        "load": load.as_dict() | {"samples": len(load.samples)},
    }
    report.with_suffix(".json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
