"""The load driver: a simulated fleet through a running pipeline, measured end to end.

The fleet (``max`` vehicles of the profile) is split into one shard per worker process; each
worker simulates its shard in real time and sends it over its own gRPC streams
(:class:`~fleetpipe_loadtest.sender.Sender`). A profile step of V vehicles sends the events of
vehicles 1..V only, so a ramp from 5,000 to 10,000 vehicles doubles the rate without restarting
anything. Every run gets vehicle ids of its own (``<fleet>-<run>-veh-NNNNNN``) so its seqs start
at 1 without meeting an earlier run's in the pipeline's de-duplication.

While the load runs, the parent samples the pipeline once a second: what the workers sent and
had acknowledged, what the storage writer committed, each stage's consumer lag, and the alerts
and notification outcomes of this run's vehicles. When the load ends it waits until the database
holds every accepted event (or a timeout), then accounts per vehicle: the events each vehicle
sent against the distinct ``(vehicle_id, seq)`` rows stored (loss and duplicates), and reads
ingest → stored latency from the rows' ``stored_time``. Ingest → alert latency is each OPEN
alert's ``detected_time`` minus the ``ingest_time`` of the event that triggered it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import shlex
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import numpy as np

from fleetpipe.core.settings import KafkaSettings, Topics
from fleetpipe.registry import Vehicle, write_csv
from fleetpipe_loadtest.fleet import Fleet
from fleetpipe_loadtest.observe import AlertWatcher, GroupLag, NotificationWatcher, StoreProbe
from fleetpipe_loadtest.report import (
    QUANTILES,
    Bucket,
    LoadReport,
    Sample,
    Step,
    account,
    latency_series,
    percentiles,
)
from fleetpipe_loadtest.scenarios import GroundTruth, ScenarioMix
from fleetpipe_loadtest.sendcounts import SendCounts
from fleetpipe_loadtest.sender import SenderError
from fleetpipe_loadtest.synthetic import vehicle_id
from fleetpipe_loadtest.transport import Transport, make_sender
from fleetpipe_loadtest.wire import Batcher, encode_tick

ACK_SAMPLE = 20_000  # acknowledgement latencies kept per worker


@dataclass(frozen=True)
class LoadPlan:
    """What to send: the fleet, the profile, and how the senders are spread."""

    target: str
    token: str
    fleet_id: str
    run_id: str
    steps: tuple[Step, ...]
    rate_hz: float = 1.0
    processes: int = 1
    streams: int = 4  # per process
    batch_size: int = 500
    window: int = 8
    # A tick's events leave in this many evenly spaced slots, each vehicle always in the same
    # one: a fleet's vehicles report at their own phase of the second, not all at once.
    slots: int = 10
    scenarios: str = "all=0.5"
    seed: int = 1
    start_time_us: int = 0  # 0: now, when the run starts
    root_certificates: bytes | None = None
    # How events reach the pipeline: gRPC to ingest, MQTT to the broker, HTTP to ingest.
    protocol: Transport = Transport.GRPC

    @property
    def vehicles(self) -> int:
        return max(s.vehicles for s in self.steps)

    @property
    def duration_s(self) -> float:
        return sum(s.seconds for s in self.steps)

    @property
    def id_prefix(self) -> str:
        return f"{self.fleet_id}-{self.run_id}"

    @property
    def events(self) -> int:
        return sum(round(s.seconds * self.rate_hz) * s.vehicles for s in self.steps)

    def fleet(self, shard: int = 0) -> Fleet:
        return Fleet(
            self.vehicles,
            seed=self.seed,
            fleet_id=self.fleet_id,
            id_prefix=self.id_prefix,
            start_time_us=self.start_time_us or time.time_ns() // 1000,
            rate_hz=self.rate_hz,
            scenarios=ScenarioMix.parse(self.scenarios),
            shard=(shard, self.processes),
        )

    def registry(self) -> list[Vehicle]:
        """Every vehicle of the fleet, whichever sender process simulates it."""
        return replace(self, processes=1).fleet().registry()

    def write_registry(self, path: Path) -> None:
        """The fleet's vehicles, drivers and phone numbers, for enrichment and notification."""
        write_csv(self.registry(), path)

    def describe(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "protocol": self.protocol.value,
            "fleet": self.fleet_id,
            "vehicle ids": f"{self.id_prefix}-veh-NNNNNN",
            "profile (vehicles:seconds)": ",".join(
                f"{s.vehicles}:{s.seconds:g}" for s in self.steps
            ),
            "rate per vehicle (Hz)": self.rate_hz,
            "events planned": self.events,
            "worker processes": self.processes,
            "gRPC streams per process": self.streams,
            "events per batch (at most)": self.batch_size,
            "send slots per tick": self.slots,
            "scenarios (episodes per vehicle-hour)": self.scenarios,
        }


def new_run_id() -> str:
    """A short id, unique per second, fit for a vehicle id: ``r`` + base-36 Unix seconds."""
    n, digits = int(time.time()), ""
    while n:
        n, d = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
    return "r" + digits


@dataclass(frozen=True)
class Watch:
    """Where to watch the pipeline: Kafka (topics, each stage's group) and the database."""

    kafka: KafkaSettings
    topics: Topics
    dsn: str
    schema: str
    groups: Mapping[str, tuple[str, str]]  # stage → (consumer group, input topic)


def default_groups(topics: Topics) -> dict[str, tuple[str, str]]:
    """The services' default consumer groups, as the local pipeline and the chart run them."""
    return {
        "enrichment": ("fleetpipe-enrichment", topics.raw),
        "detection": ("fleetpipe-detection", topics.enriched),
        "storage-writer": ("fleetpipe-storage-writer", topics.enriched),
        "notification": ("fleetpipe-notification", topics.alerts),
    }


@dataclass
class LiveView:
    """What the progress display shows, refreshed about once a second."""

    phase: str  # "load", "settling", "accounting", "done"
    elapsed_s: float
    planned_s: float
    vehicles: int
    sent: int
    acked: int
    rejected: int
    stored: int
    sent_per_s: float
    stored_per_s: float
    lag: dict[str, int]
    alerts: dict[str, dict[str, int]]
    notifications: dict[str, int]
    provider: dict[str, int]
    alert_p99_ms: float


@dataclass
class _WorkerState:
    sends: SendCounts = field(default_factory=SendCounts)
    behind_s: float = 0.0
    vehicle: int = 0  # vehicles sending in the current step
    done: bool = False
    error: str = ""
    final: dict[str, Any] = field(default_factory=dict)


def run_load(
    plan: LoadPlan,
    watch: Watch,
    *,
    on_update: Callable[[LiveView], None] = lambda _v: None,
    provider: Callable[[], dict[str, int]] | None = None,
    settle_timeout_s: float = 180.0,
    machine: Mapping[str, str] | None = None,
    command: str | None = None,
) -> LoadReport:
    """Drive the plan through the pipeline and measure it; see the module docstring.

    ``provider`` reports what the notification provider recorded (the Twilio-contract server's
    messages and calls). Ctrl-C (KeyboardInterrupt) stops the workers and is re-raised.
    """
    if plan.start_time_us == 0:
        plan = replace(plan, start_time_us=time.time_ns() // 1000)
    started = datetime.now(UTC)
    report = LoadReport(
        command=command or "fleetpipe " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        started_utc=f"{started:%Y-%m-%d %H:%M:%S}",
        machine=dict(machine or {}),
        plan=plan.describe(),
    )
    lags = {stage: GroupLag(watch.kafka, g, t) for stage, (g, t) in watch.groups.items()}
    packed = {watch.topics.raw, watch.topics.enriched}
    alerts = AlertWatcher(watch.kafka, watch.topics.alerts, plan.id_prefix)
    outcomes = NotificationWatcher(watch.kafka, watch.topics.notifications, plan.id_prefix)
    day0 = (started - timedelta(days=1)).date()
    day1 = (started + timedelta(seconds=plan.duration_s) + timedelta(days=1)).date()
    store = StoreProbe(watch.dsn, watch.schema, plan.fleet_id, plan.id_prefix, (day0, day1))
    counted = {"rows": 0, "next": 0.0, "rate": 0.0, "at": 0.0}
    writer = lags.get("storage-writer")
    writer_base = writer.committed() if writer is not None else -1
    if writer_base < 0:
        writer = None
    ctx = multiprocessing.get_context("spawn")
    updates: multiprocessing.Queue[tuple[int, dict[str, Any]]] = ctx.Queue()
    stop = ctx.Event()
    workers = [
        ctx.Process(
            target=worker_main, args=(plan, k, updates, stop), name=f"loadtest-{k}", daemon=True
        )
        for k in range(plan.processes)
    ]
    states = [_WorkerState() for _ in workers]
    t0 = time.monotonic()
    samples: list[Sample] = []

    def drain_updates() -> None:
        while True:
            try:
                k, msg = updates.get_nowait()
            except queue.Empty:
                return
            st = states[k]
            st.sends = msg.get("sends", st.sends)
            st.behind_s = max(st.behind_s, float(msg.get("behind_s", 0.0)))
            st.vehicle = int(msg.get("vehicles", st.vehicle))
            if msg.get("final"):
                st.final, st.done = msg, True
            if msg.get("error"):
                st.error, st.done = str(msg["error"]), True

    def sample(phase: str) -> None:
        alerts.update()
        outcomes.update()
        now = time.monotonic()
        if phase == "load" and writer is not None and now >= counted["next"]:
            # While the load runs, the storage writer's committed offsets tell its progress
            # for free (it commits them after the database): counting the run's rows in the
            # database is a scan of millions of rows that takes both cores for seconds, and
            # it stalled the very pipeline being measured. The exact count comes when settling.
            done = writer.committed()
            if done >= 0:
                # Committed offsets count records; packs hold many events each.
                rows = round((done - writer_base) * writer.events_per_record())
                if counted["at"]:
                    counted["rate"] = (rows - counted["rows"]) / (now - counted["at"])
                counted["rows"], counted["at"], counted["next"] = rows, now, now + 1.0
        elif now >= counted["next"]:
            found = store.count()
            if found is None:
                # The database is restarting: no answer this time, the last count stands and
                # the settling waits on (up to its timeout).
                counted["next"] = now + 2.0
            else:
                if counted["at"]:
                    counted["rate"] = (found - counted["rows"]) / (now - counted["at"])
                counted["rows"], counted["at"] = found, now
                # Counting rows costs the database a scan of the run's rows: on a big run,
                # less often.
                counted["next"] = now + max(1.0, 20 * (time.monotonic() - now))
        stored = int(counted["rows"])
        acked = sum(w.sends.acked for w in states)
        s = Sample(
            t=time.monotonic() - t0,
            sent=sum(w.sends.sent for w in states),
            acked=acked,
            stored=stored,
            alerts=alerts.tally.total,
            notifications=sum(outcomes.by_status.values()),
            # In events on the telemetry topics (their records are packs), in records elsewhere
            # (one alert a record).
            lag={
                stage: g.lag_events(acked) if g.topic in packed else g.lag()
                for stage, g in lags.items()
            },
        )
        samples.append(s)
        prev = samples[-2] if len(samples) > 1 else None
        dt = (s.t - prev.t) if prev is not None else 0.0
        recent = [ms for _, ms in alerts.tally.latency[-2000:]]
        on_update(
            LiveView(
                phase=phase,
                elapsed_s=s.t,
                planned_s=plan.duration_s,
                vehicles=sum(w.vehicle for w in states),
                sent=s.sent,
                acked=s.acked,
                rejected=sum(w.sends.rejected for w in states),
                stored=s.stored,
                sent_per_s=(s.sent - prev.sent) / dt if prev is not None and dt > 0 else 0.0,
                stored_per_s=counted["rate"],
                lag=dict(s.lag),
                alerts=alerts.tally.as_dict(),
                notifications=dict(outcomes.by_status),
                provider=provider() if provider is not None else {},
                alert_p99_ms=percentiles(recent, (99,)).get("p99") if recent else float("nan"),
            )
        )

    try:
        for w in workers:
            w.start()
        next_sample = time.monotonic()
        while not all(st.done for st in states):
            drain_updates()
            if any(st.error for st in states):
                break
            for k, w in enumerate(workers):
                if not w.is_alive() and not states[k].done:
                    drain_updates()
                    if not states[k].done:
                        states[k].error = f"worker {k} exited with code {w.exitcode}"
                        states[k].done = True
            if time.monotonic() >= next_sample:
                sample("load")
                # After a slow sample, the next comes a second later, not at once.
                next_sample = max(next_sample + 1.0, time.monotonic() + 0.5)
            time.sleep(0.05)
        load_end_t = samples[-1].t if samples else 0.0
        errors = [st.error for st in states if st.error]
        if errors:
            report.notes += [f"sender failed: {e}" for e in errors]
        accepted = sum(w.sends.accepted for w in states)
        # Settle: the database holds every accepted event, and alerts and outcomes stop moving.
        deadline = time.monotonic() + settle_timeout_s
        stored_rows = 0
        last_change, last_seen = time.monotonic(), (-1, -1)
        while time.monotonic() < deadline:
            counted["next"] = 0.0  # count now: this decides when the run is over
            sample("settling")
            stored_rows = int(counted["rows"])
            seen = (alerts.tally.total, sum(outcomes.by_status.values()))
            if seen != last_seen:
                last_seen, last_change = seen, time.monotonic()
            quiet = time.monotonic() - last_change >= 3.0
            if stored_rows >= accepted and quiet:
                break
            time.sleep(1.0)
        else:
            report.notes.append(
                f"the pipeline had not settled {settle_timeout_s:.0f} s after the load ended "
                f"({stored_rows:,} of {accepted:,} accepted events stored)"
            )
        sample("accounting")
    except KeyboardInterrupt:
        stop.set()
        report.interrupted = True
        raise
    finally:
        stop.set()
        # A worker that has put updates on the queue exits only once they are read, so read
        # while waiting; one still running after that is terminated, and the queue, which a
        # worker killed mid-write leaves corrupt, is not read again.
        deadline = time.monotonic() + 15
        while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
            drain_updates()
            for w in workers:
                w.join(0.05)
        drain_updates()
        for w in workers:
            if w.is_alive():
                w.terminate()
                w.join(5)
        for g in lags.values():
            g.close()
        alerts.close()
        outcomes.close()

    report.load_s = max((float(w.final.get("send_s", 0.0)) for w in states), default=0.0)
    report.load_end_t = load_end_t
    report.processes = {f"simulator-{k}": w.pid for k, w in enumerate(workers) if w.pid}
    report.wall_s = time.monotonic() - t0
    report.samples = samples
    for st in states:
        report.add(st.sends)
    report.accepted = accepted  # as the settle phase waited for it
    report.behind_s = max((w.behind_s for w in states), default=0.0)
    sent_by_vehicle: dict[str, int] = {}
    injected: Counter[str] = Counter()
    ack_ms: list[float] = []
    for st in states:
        f = st.final
        for num, n in zip(f.get("numbers", []), f.get("counts", []), strict=True):
            sent_by_vehicle[vehicle_id(int(num), plan.id_prefix)] = int(n)
        injected.update(f.get("injected", {}))
        for kind, durations in f.get("held_s", {}).items():
            report.held_s.setdefault(kind, []).extend(durations)
        ack_ms.extend(f.get("ack_ms", []))
    report.seq = account(sent_by_vehicle, store.per_vehicle(), rejected=report.rejected)
    report.injected_by_kind = dict(sorted(injected.items()))
    report.alerts_by_rule = alerts.tally.as_dict()
    report.notifications_by_status = dict(outcomes.by_status)
    report.provider = provider() if provider is not None else {}
    t_start = time.time() - report.wall_s  # the run's start on the wall clock
    if alerts.tally.latency:
        times, values = zip(*alerts.tally.latency, strict=True)
        report.alert_latency_ms = percentiles(values)
        report.alert_series = latency_series([t - t_start for t in times], values)
    stored_ms, stored_series = store.latency(QUANTILES)
    if stored_ms.count:
        report.stored_latency_ms = stored_ms
        report.stored_series = [
            Bucket(s - t_start, n, p50, p99) for s, n, p50, p99 in stored_series
        ]
    if ack_ms:
        report.ack_latency_ms = percentiles(ack_ms)
    return report


# --- the worker processes ----------------------------------------------------------------------


def worker_main(
    plan: LoadPlan,
    shard: int,
    updates: multiprocessing.Queue[tuple[int, dict[str, Any]]],
    stop: MpEvent,
) -> None:
    # Ctrl-C reaches the whole terminal's process group: the parent decides, through ``stop``.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        asyncio.run(drive_shard(plan, shard, updates, stop))
    except SenderError as exc:
        updates.put((shard, {"error": f"ingest refused the stream: {exc}"}))
    except Exception as exc:
        updates.put((shard, {"error": f"{type(exc).__name__}: {exc}"}))
        raise


async def drive_shard(
    plan: LoadPlan,
    shard: int,
    updates: multiprocessing.Queue[tuple[int, dict[str, Any]]],
    stop: MpEvent,
) -> None:
    fleet = plan.fleet(shard)
    first = int(fleet.numbers[0])
    counts = np.zeros(fleet.n, dtype=np.int64)
    streams = plan.streams
    bounds = np.array([first + s * fleet.n // streams for s in range(streams)] + [10**9])
    batchers = [Batcher(plan.batch_size) for _ in range(streams)]
    sender = make_sender(
        plan.protocol,
        plan.target,
        token=plan.token,
        fleet_id=plan.fleet_id,
        streams=streams,
        window=plan.window,
        batch_size=plan.batch_size,
        client_tag=f"loadtest-{plan.run_id}-{shard}",
        root_certificates=plan.root_certificates,
    )
    tick_s = 1.0 / plan.rate_hz
    behind = 0.0
    active = 0
    last_report = 0.0

    def progress(**extra: Any) -> None:
        counts = sender.stats.counts()
        updates.put((shard, {"sends": counts, "behind_s": behind, "vehicles": active, **extra}))

    async with sender:
        t0 = time.monotonic()
        k = 0
        for step in plan.steps:
            # This shard's vehicles among the step's first ``step.vehicles``.
            active = max(0, min(int(fleet.numbers[-1]), step.vehicles) - first + 1)
            for _ in range(round(step.seconds * plan.rate_hz)):
                if stop.is_set():
                    break
                delay = t0 + k * tick_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    behind = max(behind, -delay)
                tick = fleet.tick()
                k += 1
                cut = int(np.searchsorted(tick.vehicle, step.vehicles, side="right"))
                if cut == 0:
                    continue
                counts += np.bincount(tick.vehicle[:cut] - first, minlength=fleet.n)
                cuts = np.searchsorted(tick.vehicle[:cut], bounds).tolist()
                slots = max(1, min(plan.slots, cut))
                tick_start = t0 + (k - 1) * tick_s
                # Encoded once per tick, then cut per slot and stream.
                whole = encode_tick(tick, slice(0, cut))
                for j in range(slots):
                    lo, hi = j * cut // slots, (j + 1) * cut // slots
                    if j:
                        delay = tick_start + j * tick_s / slots - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    for s in range(streams):
                        a, b = max(lo, cuts[s]), min(hi, cuts[s + 1])
                        if a >= b:
                            continue
                        encoded = whole.rows(a, b)
                        # A slot's events leave within the slot, not when a batch fills.
                        for body, n in [*batchers[s].feed(encoded), *batchers[s].flush()]:
                            await sender.send(s, body, n)
                now = time.monotonic()
                if now - last_report >= 0.5:
                    last_report = now
                    progress()
        # From the first tick to the end of the last one's period (or later, if behind).
        send_s = max(time.monotonic() - t0, k * tick_s) if k else 0.0
        await sender.drain(timeout=120)
    sent = np.flatnonzero(counts)
    truths = fleet.ground_truth(include_active=True)
    ack = sender.stats.ack_latency_s
    if len(ack) > ACK_SAMPLE:
        ack = [ack[i] for i in np.linspace(0, len(ack) - 1, ACK_SAMPLE).astype(int).tolist()]
    progress(
        final=True,
        send_s=send_s,
        numbers=(sent + first).tolist(),
        counts=counts[sent].tolist(),
        injected=dict(Counter(g.kind for g in truths if not g.cause)),
        # Per kind, how long each injected episode's predicate held: whether a rule with a
        # minimum duration could have opened it yet.
        held_s=_held(truths),
        ack_ms=[a * 1000 for a in ack],
    )


def _held(truths: list[GroundTruth]) -> dict[str, list[float]]:
    held: dict[str, list[float]] = {}
    for g in truths:
        if not g.cause:
            held.setdefault(g.kind, []).append((g.end_us - g.start_us) / 1e6)
    return held


def default_report_dir() -> Path:
    return Path("loadtest-reports")


def write_outputs(report: LoadReport, folder: Path, *, name: str, title: str) -> dict[str, Path]:
    """The JSON report, the Markdown summary and the PNG charts, side by side in ``folder``."""
    from fleetpipe_loadtest.charts import write_charts

    folder.mkdir(parents=True, exist_ok=True)
    charts = write_charts(report, folder, prefix=f"{name}-")
    paths = {
        "json": folder / f"{name}.json",
        "markdown": folder / f"{name}.md",
        **{p.stem.removeprefix(f"{name}-"): p for p in charts},
    }
    report.where.setdefault("report", str(paths["markdown"]))
    paths["json"].write_text(report.to_json())
    paths["markdown"].write_text(report.markdown(title=title, charts=[p.name for p in charts]))
    return paths


def summary_lines(report: LoadReport) -> Sequence[str]:
    """A few lines for a terminal."""
    s = report.seq
    lines = [
        f"sent {report.sent:,}, acknowledged {report.acked:,} (rejected {report.rejected:,}) "
        f"in {report.load_s:.0f} s ({report.sent_rate():,.0f} events/s)",
    ]
    if s is not None:
        lines.append(
            f"stored {s.stored:,} of {s.expected:,}: missing {s.missing:,}, duplicates "
            f"{s.duplicates:,}, unexpected {s.unexpected:,}"
        )
    for label, lat in report.latencies(client=False):
        lines.append(f"{label}: {lat.brief()}")
    return lines
