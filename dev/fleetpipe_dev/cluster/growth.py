"""``fleetpipe dev cluster growth``: the growth scenario of the e2e test, run long and recorded.

On the installed pipeline (``fleetpipe dev cluster install``), the chart's load-test Job sends
for the whole run while the FleetPipeline grows from 50K to 100K vehicles and shrinks back.
Every ``interval_s`` a sample is taken (rows stored, records ingested, each group's lag, each
service's desired and Ready replicas, partitions, the Ready condition); after a patch the
cluster is polled every second until the pipeline is Ready again and every new pod with it, so
those times are exact to about a second. At the end: the Job's own accounting, the alert
episodes of the run and any reopened one, and the report (:mod:`growth_report`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet_operator.render import group_id, input_topics
from fleet_operator.sizing import CONSUMERS, partitions_for
from fleet_operator.spec import Component, parse_spec
from fleetpipe_dev.cluster.growth_charts import write_charts
from fleetpipe_dev.cluster.growth_report import (
    GrowthRun,
    Outcome,
    Patch,
    Sample,
    markdown,
    run_json,
)
from fleetpipe_dev.cluster.install import (
    LOAD_JOB,
    NAMESPACE,
    PIPELINE,
    Installer,
    InstallSettings,
    PipelineSize,
)
from fleetpipe_dev.cluster.lagprobe import LagProbe, Offsets
from fleetpipe_dev.cluster.node import LocalCluster
from fleetpipe_dev.cluster.observe import (
    job_finished_of,
    job_log,
    overlapping_episodes,
    psql,
    ready_condition,
    ready_for_generation,
    replicas_of,
    running_and_ready,
    service_pods_of,
    set_vehicles,
    start_load_job,
    stored_counts,
)

Say = Callable[[str], None]

# Rows the database inserted into the telemetry table and its partitions: a counter PostgreSQL
# keeps anyway, so a sample costs no scan of the table, however large it grows.
STORED_ROWS = (
    "SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables "
    "WHERE relid IN (SELECT relid FROM pg_partition_tree('fleetpipe.telemetry'))"
)
# After a patch: how long the pipeline and its pods may take to follow before the run says so.
FOLLOW_TIMEOUT_S = 600.0
# Time for the Job after its sending ends: its accounting waits for the last events stored.
ACCOUNTING_S = 900
# A progress line at least this often.
SAY_EVERY_S = 30.0


class NotInstalled(RuntimeError):
    """The cluster is not up, or the pipeline not installed, or a load Job already runs."""


@dataclass(frozen=True)
class GrowthPlan:
    minutes: float = 20.0
    vehicles: int = 300  # the load's simulated vehicles, one event a second each
    grow_at: float = 5.0  # minutes into the run
    shrink_at: float = 14.0
    interval_s: float = 5.0
    rate: float = 1.0  # events per simulated vehicle per second
    base_vehicles: int = PipelineSize().vehicles
    grown_vehicles: int = 2 * PipelineSize().vehicles

    def problems(self) -> list[str]:
        """What is wrong with the plan, in words (empty: nothing)."""
        wrong = []
        if not 0 < self.grow_at < self.shrink_at < self.minutes:
            wrong.append(
                f"want 0 < --grow-at < --shrink-at < --minutes, got {self.grow_at:g}, "
                f"{self.shrink_at:g}, {self.minutes:g}: both patches happen while the load runs"
            )
        if self.vehicles < 1:
            wrong.append(f"--vehicles must be at least 1, got {self.vehicles}")
        if not 1 <= self.interval_s <= 60:
            wrong.append(f"--interval must be 1 to 60 seconds, got {self.interval_s:g}")
        return wrong

    @property
    def load_s(self) -> int:
        return round(self.minutes * 60)

    @property
    def profile(self) -> str:
        return f"{self.vehicles}:{self.load_s}"

    def settings(self) -> dict[str, Any]:
        return {
            "minutes": self.minutes,
            "vehicles": self.vehicles,
            "rate": self.rate,
            "profile": self.profile,
            "grow_at_min": self.grow_at,
            "shrink_at_min": self.shrink_at,
            "interval_s": self.interval_s,
            "base_vehicles": self.base_vehicles,
            "grown_vehicles": self.grown_vehicles,
        }


@dataclass(frozen=True)
class ClusterState:
    """One read of the pipeline's objects (one kubectl call)."""

    pipeline: dict[str, Any]
    deployments: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    job: dict[str, Any] | None

    @property
    def desired(self) -> dict[str, int]:
        return replicas_of(self.deployments)

    @property
    def ready(self) -> dict[str, int]:
        pods = service_pods_of(self.pods)
        return {s: sum(running_and_ready(p) for p in ps) for s, ps in pods.items() if ps}

    @property
    def partitions(self) -> int | None:
        found = ((self.pipeline.get("status") or {}).get("partitions") or {}).get("current")
        return None if found is None else int(found)

    @property
    def vehicles(self) -> int:
        return int(self.pipeline["spec"]["fleet"]["vehicles"])

    def pods_follow(self) -> bool:
        """Every service's live pods Running and Ready, as many as its Deployment asks."""
        desired = self.desired
        pods = service_pods_of(self.pods)
        return bool(desired) and all(
            len(pods.get(s, [])) == n and all(running_and_ready(p) for p in pods.get(s, []))
            for s, n in desired.items()
        )


def read_state(cluster: LocalCluster) -> ClusterState:
    out = cluster.kubectl(
        "get", "fleetpipelines,deployments,pods,jobs", "-n", NAMESPACE, "-o", "json"
    )
    items = json.loads(out)["items"]

    def named(kind: str, name: str) -> dict[str, Any] | None:
        return next((i for i in items if i["kind"] == kind and i["metadata"]["name"] == name), None)

    pipeline = named("FleetPipeline", PIPELINE)
    if pipeline is None:
        raise NotInstalled(
            f"FleetPipeline {NAMESPACE}/{PIPELINE} is gone: run `fleetpipe dev cluster install`"
        )
    return ClusterState(
        pipeline=pipeline,
        deployments=[i for i in items if i["kind"] == "Deployment"],
        pods=[i for i in items if i["kind"] == "Pod"],
        job=named("Job", LOAD_JOB),
    )


def check_installed(cluster: LocalCluster) -> ClusterState:
    """The cluster up, the release installed, its FleetPipeline there and no load Job running;
    else :class:`NotInstalled` saying what to do."""
    status = cluster.status()
    if not status or not all(p["running"] for p in status.values()):
        down = sorted(n for n, p in status.items() if not p["running"])
        said = f" ({', '.join(down)} not running)" if down else ""
        raise NotInstalled(
            f"the local cluster is not up{said}: run `fleetpipe dev cluster install` first"
        )
    if not Installer(cluster, InstallSettings()).installed():
        raise NotInstalled(
            f"the pipeline is not installed in namespace {NAMESPACE}: "
            "run `fleetpipe dev cluster install` first"
        )
    state = read_state(cluster)
    if state.job is not None and job_finished_of(state.job) is None:
        raise NotInstalled(
            f"load-test Job {NAMESPACE}/{LOAD_JOB} is still running: wait for it to end, or "
            f"delete it (kubectl delete job -n {NAMESPACE} {LOAD_JOB})"
        )
    return state


def lag_probe(cluster: LocalCluster, pipeline: dict[str, Any]) -> tuple[LagProbe, str]:
    """The probe of the pipeline's consumer groups, and the name of its ingest topic."""
    spec = parse_spec(pipeline["spec"])
    groups = {group_id(spec, c): input_topics(spec, c) for c in CONSUMERS if c in spec.components()}
    hosts: dict[str, str] = {}
    for address in spec.kafka.bootstrap_servers.split(","):
        host = address.rsplit(":", 1)[0]
        name, _, rest = host.partition(".")
        namespace = rest.split(".")[0] if rest else pipeline["metadata"]["namespace"]
        found = cluster.kubectl(
            "get", "service", name, "-n", namespace, "-o", "jsonpath={.spec.clusterIP}",
            check=False,
        ).strip()  # fmt: skip
        if found:
            hosts[host] = found
    probe = LagProbe(cluster, bootstrap=spec.kafka.bootstrap_servers, groups=groups, hosts=hosts)
    return probe, input_topics(spec, Component.ENRICHMENT)[0]


def stored_rows(cluster: LocalCluster) -> int | None:
    found = psql(cluster, STORED_ROWS, check=False)
    return int(found) if found.isdigit() else None


class GrowthRunner:
    def __init__(self, cluster: LocalCluster, plan: GrowthPlan, *, say: Say = print) -> None:
        self.cluster = cluster
        self.plan = plan
        self.say = say
        # The counters when the run began: the samples hold what was added since.
        self.stored0: int | None = None
        self.ingested0: int | None = None
        self.ingest_topic = ""

    def run(self, run: GrowthRun) -> GrowthRun:
        """The load, the samples and the two patches, then the outcome; ``run`` filled in
        as it goes (so an interrupted run still has its samples)."""
        cluster, plan, say = self.cluster, self.plan, self.say
        state = check_installed(cluster)
        if state.vehicles != plan.base_vehicles:
            say(f"the fleet is at {state.vehicles:,} vehicles: back to {plan.base_vehicles:,}")
            set_vehicles(cluster, plan.base_vehicles)
        state = self._wait_settled()
        self._note_partitions(run, state)
        probe, ingest_topic = lag_probe(cluster, state.pipeline)
        try:
            first = probe.read()
            if first is None:
                raise NotInstalled(f"cannot read the consumer groups' lag: {probe.last_error}")
            self.stored0 = stored_rows(cluster)
            self.ingested0 = first.ends.get(ingest_topic)
            self.ingest_topic = ingest_topic
            since = psql(cluster, "SELECT now()")
            say(
                f"load-test Job: {plan.vehicles:,} vehicles for {plan.minutes:g} min; fleet "
                f"{plan.base_vehicles:,} → {plan.grown_vehicles:,} at {plan.grow_at:g} min, "
                f"back at {plan.shrink_at:g} min; a sample every {plan.interval_s:g} s"
            )
            start_load_job(cluster, profile=plan.profile, deadline_s=plan.load_s + ACCOUNTING_S)
            self._loop(run, probe)
        finally:
            probe.close()
            # Leave the pipeline as installed, whatever happened: the next install or test
            # starts from it.
            if read_state(cluster).vehicles != plan.base_vehicles:
                say(f"putting the fleet back to {plan.base_vehicles:,} vehicles")
                set_vehicles(cluster, plan.base_vehicles, check=False)
        run.outcome = self._outcome(since)
        return run

    def _note_partitions(self, run: GrowthRun, state: ClusterState) -> None:
        """The partitions the run starts from: a fleet grown before left its topics at the
        grown count (Kafka cannot remove partitions), and then only the replicas can grow."""
        spec = parse_spec(state.pipeline["spec"])
        base = partitions_for(self.plan.base_vehicles, spec.fleet.vehicles_per_partition)
        run.settings["base_partitions"] = base
        run.settings["partitions_at_start"] = state.partitions
        if state.partitions is not None and state.partitions > base:
            self.say(
                f"note: the topics have {state.partitions} partitions already, not {base} (an "
                "earlier growth; Kafka cannot remove partitions): this run grows the replicas "
                "only. From a fresh pipeline: fleetpipe dev cluster down, then "
                "fleetpipe dev cluster install"
            )

    def _wait_settled(self) -> ClusterState:
        deadline = time.monotonic() + FOLLOW_TIMEOUT_S
        while True:
            state = read_state(self.cluster)
            if ready_for_generation(state.pipeline) and state.pods_follow():
                return state
            if time.monotonic() > deadline:
                message = ready_condition(state.pipeline).get("message", "")
                raise NotInstalled(
                    f"the pipeline is not Ready with all its pods after "
                    f"{FOLLOW_TIMEOUT_S:.0f}s: {message}"
                )
            time.sleep(2.0)

    def _loop(self, run: GrowthRun, probe: LagProbe) -> None:
        plan, cluster = self.plan, self.cluster
        start = time.monotonic()
        planned = [
            ("grow", plan.grow_at * 60, plan.base_vehicles, plan.grown_vehicles),
            ("shrink", plan.shrink_at * 60, plan.grown_vehicles, plan.base_vehicles),
        ]
        pending: tuple[Patch, float] | None = None
        next_sample = start
        last_said = -math.inf
        while True:
            now = time.monotonic()
            if planned and now - start >= planned[0][1]:
                name, _, before, after = planned.pop(0)
                set_vehicles(cluster, after)
                patched = time.monotonic()
                patch = Patch(name, patched - start, before, after)
                run.patches.append(patch)
                pending = (patch, patched)
                self.say(f"[{_clock(patch.at_s)}] {name}: patched the fleet to {after:,} vehicles")
            state = read_state(cluster)
            if pending is not None and self._follows(state, *pending):
                pending = None
            job_end = job_finished_of(state.job) if state.job else None
            now = time.monotonic()
            if now >= next_sample or (job_end and pending is None):
                sample = self._sample(state, probe, now - start)
                run.samples.append(sample)
                if now - last_said >= SAY_EVERY_S or job_end:
                    self.say(_progress(run, sample))
                    last_said = now
                next_sample = max(next_sample + plan.interval_s, now + plan.interval_s / 2)
            if job_end and pending is None:
                self.say(f"[{_clock(now - start)}] the load Job ended: {job_end}")
                return
            if now - start > plan.load_s + ACCOUNTING_S + FOLLOW_TIMEOUT_S:
                # Past the Job's own deadline: Kubernetes has failed it, or it never started.
                self.say(f"[{_clock(now - start)}] the load Job has not ended: giving up")
                return
            wake = [next_sample]
            if planned:
                wake.append(start + planned[0][1])
            if pending is not None:
                wake.append(now + 1.0)
            time.sleep(max(0.0, min(wake) - time.monotonic()))

    def _follows(self, state: ClusterState, patch: Patch, patched: float) -> bool:
        """Record the patch's Ready times as they come; True once both are in (or too late)."""
        waited = time.monotonic() - patched
        if patch.ready_s is None and ready_for_generation(state.pipeline):
            patch.ready_s = waited
            patch.partitions = state.partitions
            patch.replicas = state.desired
            self.say(f"  {patch.name}: Ready {waited:.1f}s after the patch")
        if patch.ready_s is not None and patch.pods_s is None and state.pods_follow():
            patch.pods_s = waited
            self.say(f"  {patch.name}: every pod Ready {waited:.1f}s after the patch")
        if patch.pods_s is not None:
            return True
        if waited > FOLLOW_TIMEOUT_S:
            self.say(f"  {patch.name}: not followed within {FOLLOW_TIMEOUT_S:.0f}s")
            return True
        return False

    def _sample(self, state: ClusterState, probe: LagProbe, t: float) -> Sample:
        offsets: Offsets | None = probe.read()
        stored = stored_rows(self.cluster)
        ends = offsets.ends.get(self.ingest_topic) if offsets else None
        return Sample(
            t=round(t, 2),
            stored=None if stored is None or self.stored0 is None else stored - self.stored0,
            ingested=None if ends is None or self.ingested0 is None else ends - self.ingested0,
            lag=offsets.lag if offsets else {},
            desired=state.desired,
            ready=state.ready,
            partitions=state.partitions,
            vehicles=state.vehicles,
            pipeline_ready=ready_for_generation(state.pipeline),
        )

    def _outcome(self, since: str) -> Outcome:
        cluster = self.cluster
        state = read_state(cluster)
        job = job_finished_of(state.job) if state.job else None
        log = job_log(cluster)
        alerts = psql(
            cluster,
            f"SELECT count(*) FROM fleetpipe.alerts WHERE episode_start >= '{since}'",  # noqa: S608
        )
        overlapping = psql(cluster, overlapping_episodes(since))
        return Outcome(
            job=job,
            stored=stored_counts(log),
            alerts=int(alerts),
            overlapping=[row for row in overlapping.splitlines() if row],
        )


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes:2d}:{rest:02d}"


def _progress(run: GrowthRun, sample: Sample) -> str:
    rate = ""
    if len(run.samples) >= 2:
        before = run.samples[-2]
        if sample.stored is not None and before.stored is not None and sample.t > before.t:
            rate = f"{(sample.stored - before.stored) / (sample.t - before.t):,.0f}/s "
    stored = "?" if sample.stored is None else f"{sample.stored:,}"
    lag = " ".join(f"{g.removeprefix('fleetpipe-')} {n:,}" for g, n in sorted(sample.lag.items()))
    reps = " ".join(f"{s} {sample.ready.get(s, 0)}/{n}" for s, n in sorted(sample.desired.items()))
    return (
        f"[{_clock(sample.t)}] stored {rate}({stored}); lag {lag or '?'}; ready {reps}; "
        f"partitions {sample.partitions}; fleet {sample.vehicles:,}; "
        f"Ready {'True' if sample.pipeline_ready else 'False'}"
    )


def write_report(run: GrowthRun, path: Path) -> list[Path]:
    """The markdown at ``path``, the raw run as JSON and the charts beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    charts = write_charts(run, path.parent, prefix=f"{path.stem}-")
    path.write_text(markdown(run, charts))
    raw = path.with_suffix(".json")
    raw.write_text(run_json(run))
    return [path, raw, *charts]


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
