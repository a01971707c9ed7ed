"""Reconciling one FleetPipeline as a chain of named steps, with an Event per decision.

    validate the spec → ensure the topics → the services' Kafka access (access_step.py,
    with kafka.access Managed) → apply the children → update the status

Order matters: topics are created and grown *before* any Deployment is scaled, so that new
consumers always find partitions to take. Partitions never shrink. The Kubernetes API and Kafka
are reached only through the ports (``ports.py``: ``cluster.py`` in the operator, fakes in unit
tests); sizing, rendering, status and the Events to post (``decisions.py``) are pure functions.

Every entry point runs under a per-pipeline lock: kopf runs change handlers, the timer and the
Deployment watch concurrently, and the status (a whole conditions list) is read-modified-written.
The one exception is the readiness a Deployment's move refreshes, which must not wait behind a
whole reconcile: it writes with the status's resourceVersion as a precondition instead.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fleet_operator import claims, decisions, migration, sizing
from fleet_operator.access_step import KafkaAccessStep
from fleet_operator.console import console_manifests
from fleet_operator.decisions import Event, Prior, Problem
from fleet_operator.kafka_access import AccessOutcome
from fleet_operator.kafka_login import kafka_settings, read_login
from fleet_operator.memory import Memory
from fleet_operator.objects import COMPONENT_LABEL, Manifest, Owner
from fleet_operator.ports import (
    ApplyRefused,
    Backoff,
    Events,
    InvalidSpec,
    KafkaApi,
    KafkaUnavailable,
    KubeApi,
    KubeApiError,
    PipelineRef,
    StatusConflict,
    TopicsFailed,
)
from fleet_operator.render import (
    deployment_names,
    group_id,
    input_topics,
    pipeline_topics,
    referenced_secrets,
    render,
    retired,
    topics_for,
)
from fleet_operator.render_compaction import lake_compaction
from fleet_operator.render_migration import (
    COMPONENT as MIGRATION,
)
from fleet_operator.render_migration import (
    migration_job,
    needs_migration,
    role_secrets,
)
from fleet_operator.render_mqtt import mqtt_bridge
from fleet_operator.rules import InvalidRules, checked_rules
from fleet_operator.settings import OperatorSettings
from fleet_operator.sizing import CONSUMERS, LagDecision, SizingPlan
from fleet_operator.spec import (
    AutoscalingMode,
    Component,
    DeletionPolicy,
    FleetPipelineSpec,
    SpecError,
    parse_spec,
)
from fleet_operator.status import (
    Condition,
    DeploymentState,
    TopicsOutcome,
    lag_status,
    merge_conditions,
    replicas_status,
)
from fleetpipe.core.db import dsn_user
from fleetpipe.core.dbroles import DatabaseRoles
from fleetpipe.core.errors import ConfigError
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.topics import TopicAction, TopicChange, TopicSpec, co_partitioned

log = logging.getLogger(__name__)

# Readiness writes that raced another status write are computed again this many times at most.
_REFRESH_TRIES = 3


# ---- what each step hands to the next ----------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Validated:
    """A usable, unpaused spec and what it takes to reach its Kafka."""

    spec: FleetPipelineSpec
    owner: Owner
    kafka: KafkaSettings
    problems: list[Problem]  # degrading, not blocking (a Secret missing)
    missing: list[str]  # the Secrets not found


@dataclass(frozen=True, slots=True)
class _TopicsEnsured:
    outcome: TopicsOutcome
    lag: dict[Component, int] | None  # None: not measured this time


@dataclass(frozen=True, slots=True)
class _ChildrenApplied:
    plan: SizingPlan
    after: dict[Component, DeploymentState | None]
    decisions: Mapping[Component, LagDecision]  # the autoscaler's, as the spec's mode uses them
    schema: Condition  # SchemaMigrated: the migration Job's word, or why there is none


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _states(
    owner: Owner, deployments: Mapping[str, Mapping[str, Any]]
) -> dict[Component, DeploymentState | None]:
    names = deployment_names(owner)
    return {
        c: DeploymentState.of(deployments[names[c]]) if names[c] in deployments else None
        for c in Component
    }


class _Held:
    """A pipeline's lock, held as the reconciler counts what is running."""

    def __init__(self, reconciler: Reconciler, lock: threading.Lock) -> None:
        self._reconciler = reconciler
        self._lock = lock

    def __enter__(self) -> None:
        self._reconciler._enter()
        self._lock.acquire()

    def __exit__(self, *_: object) -> None:
        self._lock.release()
        self._reconciler._leave()


class Reconciler:
    def __init__(
        self,
        settings: OperatorSettings,
        kube: KubeApi,
        kafka: KafkaApi,
        events: Events,
        *,
        clock: Callable[[], float] = time.monotonic,
        utc_now: Callable[[], str] = _utc_now,
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.kafka = kafka
        self.events = events
        self.access = KafkaAccessStep(kube, kafka)
        self.clock = clock
        self.utc_now = utc_now
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._memory: dict[str, Memory] = {}
        # Pipelines whose finalizer work is done: kopf may call the deletion handler again
        # while it waits for the timer to stop, and the Events should not repeat.
        self._finalized: OrderedDict[str, None] = OrderedDict()
        # Entry points running now: the shutdown waits for them (their Events and status).
        self._busy = threading.Condition()
        self._inflight = 0
        self._closed = threading.Event()

    @contextlib.contextmanager
    def _counted(self) -> Iterator[None]:
        """Work the shutdown waits for, without a pipeline's lock (a readiness write)."""
        self._enter()
        try:
            yield
        finally:
            self._leave()

    def _lock(self, uid: str) -> _Held:
        with self._guard:
            return _Held(self, self._locks.setdefault(uid, threading.Lock()))

    def _enter(self) -> None:
        with self._busy:
            self._inflight += 1

    def _leave(self) -> None:
        with self._busy:
            self._inflight -= 1
            self._busy.notify_all()

    def drain(self, *, timeout_s: float) -> bool:
        """Start nothing new; wait until no reconcile runs (at most ``timeout_s``).

        False when some still do. A reconcile waiting for a pipeline's lock returns without
        doing anything: the shutdown waits for work begun, not for work queued behind it.
        """
        self._closed.set()
        with self._busy:
            return self._busy.wait_for(lambda: self._inflight == 0, timeout=timeout_s)

    def _mem(self, uid: str) -> Memory:
        with self._guard:
            return self._memory.setdefault(uid, Memory())

    def forget(self, uid: str) -> None:
        with self._guard:
            self._locks.pop(uid, None)
            self._memory.pop(uid, None)

    # ---- entry points ---------------------------------------------------------------------
    def reconcile(self, ref: PipelineRef, *, measure_lag: bool, retry: int = 0) -> None:
        """Bring topics and children to the spec; measure lag first when ``measure_lag``."""
        with self._lock(ref.uid):
            if self._closed.is_set():
                return
            try:
                obj = self.kube.pipeline(ref.namespace, ref.name)
                if obj is None or obj["metadata"].get("deletionTimestamp"):
                    return
                self._reconcile(ref, obj, measure_lag=measure_lag, retry=retry)
            except KubeApiError as exc:
                # A terminating namespace, a conflict, an API server restarting: try again.
                raise Backoff(str(exc), delay=self.settings.backoff(retry)) from exc

    def _reconcile(
        self, ref: PipelineRef, obj: Mapping[str, Any], *, measure_lag: bool, retry: int
    ) -> None:
        prior = Prior.of(obj)
        log.info("%s/%s: reconciling generation %d", ref.namespace, ref.name, prior.generation)
        validated = self._validate_spec(ref, obj, prior)
        if validated is None:
            return
        topics = self._ensure_topics(ref, prior, validated, measure_lag=measure_lag, retry=retry)
        status = obj.get("status") or {}
        access = self.access.apply(
            ref, prior, validated.spec, validated.kafka, status, missing=validated.missing
        )
        children = self._apply_children(ref, prior, validated, topics)
        self._update_status(ref, prior, validated, topics, children, access)

    def refresh(self, namespace: str, name: str) -> None:
        """Re-read the Deployments of a pipeline and update its readiness (a Deployment moved)."""
        try:
            self._refresh(namespace, name)
        except KubeApiError as exc:
            # Advisory: the timer and the next Deployment event will look again.
            log.info("%s/%s: readiness not refreshed: %s", namespace, name, exc)

    def delete(
        self,
        ref: PipelineRef,
        raw_spec: Mapping[str, Any],
        *,
        status: Mapping[str, Any] | None = None,
        retry: int = 0,
    ) -> None:
        """The finalizer's work: keep the topics (the data) unless deletionPolicy is Delete;
        remove the ACLs ``status`` says the operator applied."""
        with self._lock(ref.uid):
            if ref.uid in self._finalized:
                return
            try:
                spec = parse_spec(raw_spec)
            except SpecError as exc:
                self._post(ref, [decisions.deleted_invalid(str(exc))])
                self.forget(ref.uid)
                return
            names = [s.name for s in pipeline_topics(spec, 1)]
            if spec.deletion_policy is DeletionPolicy.DELETE:
                # Topics another pipeline names on the same brokers are its data too.
                me = claims.claim_of(
                    {
                        "metadata": {"namespace": ref.namespace, "name": ref.name, "uid": ref.uid},
                        "spec": raw_spec,
                    }
                )
                held = {} if me is None else claims.held_by_others(me, self._others())
                if held:
                    self._post(
                        ref, [decisions.topics_kept_for({t: c.ref for t, c in held.items()})]
                    )
                    names = [n for n in names if n not in held]
                try:
                    login = read_login(self.kube, ref.namespace, spec, missing=None)
                    self.kafka.delete_topics(kafka_settings(spec, login), names)
                except (KafkaUnavailable, TopicsFailed, KubeApiError) as exc:
                    self._post(ref, [decisions.deletion_failed(str(exc))])
                    raise Backoff(str(exc), delay=self.settings.backoff(retry)) from exc
            try:
                self._post(ref, self.access.remove(ref, spec, status or {}))
            except (KafkaUnavailable, KubeApiError) as exc:
                self._post(ref, [decisions.deletion_failed(str(exc))])
                raise Backoff(str(exc), delay=self.settings.backoff(retry)) from exc
            self._post(ref, [decisions.topics_finalized(spec.deletion_policy, names)])
            self._finalized[ref.uid] = None
            while len(self._finalized) > 1000:
                self._finalized.popitem(last=False)
        self.forget(ref.uid)

    # ---- step 1: validate the spec --------------------------------------------------------
    def _validate_spec(
        self, ref: PipelineRef, obj: Mapping[str, Any], prior: Prior
    ) -> _Validated | None:
        """The spec to reconcile, or None when it is paused; InvalidSpec when unusable."""
        try:
            spec = parse_spec(obj.get("spec") or {})
        except SpecError as exc:
            self._decide(ref, prior, decisions.invalid_spec(prior, str(exc)))
            raise InvalidSpec(str(exc)) from exc
        try:
            checked_rules(spec)
        except InvalidRules as exc:
            self._decide(ref, prior, decisions.invalid_rules(prior, str(exc)))
            raise InvalidSpec(str(exc)) from exc
        if spec.paused:
            self._decide(
                ref, prior, decisions.paused(prior), fields={"observedGeneration": prior.generation}
            )
            return None
        self._post(ref, decisions.resumed(prior))
        conflict = self._conflict(obj)
        if conflict is not None:
            self._decide(
                ref,
                prior,
                decisions.topics_conflict(prior, conflict.message),
                fields={"observedGeneration": prior.generation},
            )
            return None
        named = referenced_secrets(spec)
        missing = self.kube.missing_secrets(ref.namespace, list(named))
        login = read_login(self.kube, ref.namespace, spec, missing=missing)
        return _Validated(
            spec=spec,
            owner=Owner(ref.name, ref.namespace, ref.uid),
            kafka=kafka_settings(spec, login),
            problems=decisions.missing_secrets(named, missing, ref.namespace),
            missing=list(missing),
        )

    def _others(self) -> list[claims.Claim]:
        """The claims of every FleetPipeline the operator can see (its namespace, or all)."""
        found = (
            claims.claim_of(obj)
            for obj in self.kube.list_pipelines(self.settings.namespace or None)
        )
        return [c for c in found if c is not None]

    def _conflict(self, obj: Mapping[str, Any]) -> claims.Conflict | None:
        me = claims.claim_of(obj)
        return None if me is None else claims.conflict(me, self._others())

    # ---- step 2: ensure the topics --------------------------------------------------------
    def _ensure_topics(
        self,
        ref: PipelineRef,
        prior: Prior,
        validated: _Validated,
        *,
        measure_lag: bool,
        retry: int,
    ) -> _TopicsEnsured:
        """Topics first: consumers scaled up must find the partitions to take."""
        spec, kafka = validated.spec, validated.kafka
        wanted = sizing.partitions_for(spec.fleet.vehicles, spec.fleet.vehicles_per_partition)
        specs = pipeline_topics(spec, wanted)
        try:
            actions, partitions = self.kafka.ensure_topics(kafka, specs)
            altered = self._align_configs(ref, kafka, specs, actions)
            lag = self._measure_lag(ref, spec, kafka) if measure_lag else None
        except (KafkaUnavailable, TopicsFailed) as exc:
            log.warning("%s/%s: %s", ref.namespace, ref.name, exc)
            failed = decisions.kafka_failed(
                prior,
                str(exc),
                validated.problems,
                unreachable=isinstance(exc, KafkaUnavailable),
            )
            self._decide(ref, prior, failed)
            raise Backoff(str(exc), delay=self.settings.backoff(retry)) from exc
        current = min(partitions.get(name, 0) for name in co_partitioned(topics_for(spec)))
        outcome = TopicsOutcome(desired=wanted, current=current, actions=actions)
        self._post(ref, decisions.topic_events(prior, spec, outcome, altered))
        return _TopicsEnsured(outcome, lag)

    def _align_configs(
        self,
        ref: PipelineRef,
        kafka: KafkaSettings,
        specs: Sequence[TopicSpec],
        actions: Mapping[str, TopicChange],
    ) -> list[str]:
        """Retention of topics that existed before (new ones were created with it).

        A topic just created or grown may not be known to every broker yet; a refusal here is
        retried at the next tick rather than failing the reconcile. Unreachable brokers are not.
        """
        existing = [
            s
            for s in specs
            if s.name not in actions or actions[s.name].action is not TopicAction.CREATED
        ]
        if not existing:
            return []
        try:
            return self.kafka.align_configs(kafka, existing)
        except TopicsFailed as exc:
            log.warning("%s/%s: topic configs not aligned yet: %s", ref.namespace, ref.name, exc)
            return []

    def _measure_lag(
        self, ref: PipelineRef, spec: FleetPipelineSpec, kafka: KafkaSettings
    ) -> dict[Component, int] | None:
        """Lag per consumer; None (keep the last figures) when the brokers refuse to say.

        Right after partitions grow, their leaders may not be known everywhere yet; lag is
        advisory, so that is no reason to fail the reconcile.
        """
        try:
            return {
                c: self.kafka.lag(kafka, group_id(spec, c), input_topics(spec, c))
                for c in CONSUMERS
                if c in spec.components()
            }
        except (TopicsFailed, KafkaUnavailable) as exc:
            # The topics were just ensured, so the brokers answer; a group coordinator slow to
            # reply on a loaded machine must not flip the pipeline to Degraded.
            log.warning("%s/%s: lag not measured this time: %s", ref.namespace, ref.name, exc)
            return None

    # ---- step 3: apply the children -------------------------------------------------------
    def _apply_children(
        self, ref: PipelineRef, prior: Prior, validated: _Validated, topics: _TopicsEnsured
    ) -> _ChildrenApplied:
        """Size with the autoscaler's view of lag, then server-side apply every child.

        Applying reverts any hand edit of what we render.
        """
        spec, owner = validated.spec, validated.owner
        memory = self._mem(ref.uid)
        current = topics.outcome.current
        before = _states(owner, self.kube.deployments(ref.namespace, ref.name))
        now = self.clock()
        for component in CONSUMERS:
            state = before.get(component)
            if state is not None:
                memory.autoscaler.seed(component, now=now, replicas=state.spec_replicas)
        mode = spec.autoscaling.mode
        if topics.lag is not None:
            memory.lag = topics.lag
            memory.decisions = (
                {}
                if mode is AutoscalingMode.OFF
                else memory.autoscaler.decide(spec, topics.lag, now=now, topic_partitions=current)
            )
        lag_decisions = {} if mode is AutoscalingMode.OFF else memory.decisions
        plan = sizing.plan(spec, topic_partitions=current, lag=lag_decisions)

        generations: dict[Component, int] = {}
        names = {name: c for c, name in deployment_names(owner).items()}
        job, schema = self._migration_job(ref, validated)
        manifests = (
            render(owner, spec, plan)
            + console_manifests(owner, spec)
            + mqtt_bridge(owner, spec)
            + lake_compaction(owner, spec)
            + ([job] if job is not None else [])
        )
        jobs_before = self.kube.jobs(ref.namespace, ref.name)
        # Every child past the API server's validation first: a spec the server refuses for
        # one child (a bad quantity, an invalid path) applies none, never half a pipeline.
        try:
            for manifest in manifests:
                self.kube.dry_run(manifest)
        except ApplyRefused as exc:
            self._decide(ref, prior, decisions.apply_refused(prior, str(exc)))
            raise InvalidSpec(str(exc)) from exc
        for manifest in manifests:
            applied = self.kube.apply(manifest)
            sized = names.get(manifest["metadata"]["name"])
            # The console's Deployment is not one of the sized services: not tracked here.
            if manifest["kind"] == "Deployment" and sized is not None:
                generations[sized] = int(applied["metadata"].get("generation") or 0)
        for api_version, kind, name in retired(owner, spec):
            self.kube.delete_child(api_version, kind, ref.namespace, name, pipeline=ref.name)
        schema = self._follow_migration(ref, prior, spec, job, jobs_before, schema)
        edited = memory.edited_by_others(generations)
        self._post(
            ref,
            decisions.scaling_events(prior, spec, plan, before, pipeline=ref.name, edited=edited),
        )
        after = _states(owner, self.kube.deployments(ref.namespace, ref.name))
        return _ChildrenApplied(plan, after, lag_decisions, schema)

    def _migration_job(
        self, ref: PipelineRef, validated: _Validated
    ) -> tuple[Manifest | None, Condition]:
        """The schema's migration Job (render_migration.py) and, without one, why.

        The roles to grant are the users the services' logins name: read from their Secrets
        (the names only; the DSNs and their passwords go nowhere else)."""
        spec = validated.spec
        if not needs_migration(spec):
            return None, migration.not_needed()
        names: dict[str, str] = {}
        for field, secret in role_secrets(spec).items():
            if secret in validated.missing:
                return None, migration.logins_unreadable(
                    f"Secret {secret} not found: the role it logs in as is not known"
                )
            dsn = self.kube.secret_values(ref.namespace, secret, ("dsn",)).get("dsn")
            try:
                user = dsn_user(dsn) if dsn else None
            except ConfigError as exc:
                return None, migration.logins_unreadable(f"Secret {secret}: {exc}")
            if not user:
                return None, migration.logins_unreadable(
                    f"Secret {secret} needs the key dsn, naming the user it logs in as"
                )
            names[field] = user
        job = migration_job(validated.owner, spec, DatabaseRoles(**names))
        return job, migration.schema_condition(job["metadata"]["name"], None)

    def _follow_migration(
        self,
        ref: PipelineRef,
        prior: Prior,
        spec: FleetPipelineSpec,
        job: Manifest | None,
        before: Mapping[str, Mapping[str, Any]],
        schema: Condition,
    ) -> Condition:
        """Delete the migration Jobs of other images or logins (one Job per pipeline), read
        the current one's state, and post what changed."""
        current = job["metadata"]["name"] if job is not None else None
        for name, obj in before.items():
            component = (obj["metadata"].get("labels") or {}).get(COMPONENT_LABEL)
            if component == MIGRATION and name != current:
                self.kube.delete_child("batch/v1", "Job", ref.namespace, name, pipeline=ref.name)
        if current is None:
            self._post(ref, migration.schema_events(prior, schema, created=None))
            return schema
        found = self.kube.jobs(ref.namespace, ref.name).get(current)
        schema = migration.schema_condition(current, found)
        created = (
            None
            if current in before
            else f"Job {current} runs fleetpipe db migrate with {spec.image.reference}"
        )
        self._post(ref, migration.schema_events(prior, schema, created=created))
        return schema

    # ---- step 4: update the status --------------------------------------------------------
    def _update_status(
        self,
        ref: PipelineRef,
        prior: Prior,
        validated: _Validated,
        topics: _TopicsEnsured,
        children: _ChildrenApplied,
        access: AccessOutcome | None,
    ) -> None:
        outcome, plan = topics.outcome, children.plan
        fields: dict[str, Any] = {
            "observedGeneration": prior.generation,
            "partitions": {"desired": outcome.desired, "current": outcome.current},
            # A merge patch keeps keys it does not name: a stage turned off is named as null.
            "replicas": {
                **{c.key: None for c in Component if c not in plan.services},
                **replicas_status(plan, children.after),
            },
        }
        memory = self._mem(ref.uid)
        if memory.lag:
            fields["lag"] = lag_status(memory.lag)
        access_problems = [] if access is None else access.problems
        if access is not None:
            fields["kafkaAccess"] = access.status
            self._post(ref, access.events)
        decision = decisions.reconciled(
            prior,
            outcome,
            children.after,
            plan,
            mode=validated.spec.autoscaling.mode,
            decisions=children.decisions,
            problems=[*validated.problems, *access_problems],
            schema=children.schema,
        )
        taken_over, claimed = decisions.topics_claimed(prior)
        self._post(ref, taken_over)
        extra = (claimed,) if access is None else (claimed, access.condition)
        decision = decisions.Decision(decision.events, (*decision.conditions, *extra))
        self._decide(ref, prior, decision, fields=fields)

    # ---- readiness after a Deployment moved -----------------------------------------------
    def _refresh(self, namespace: str, name: str) -> None:
        """Readiness is written without the pipeline's lock: a reconcile can hold it for
        seconds (lag, topics, children), and a pod that went away and came back meanwhile
        would never show. The write has the status's resourceVersion as its precondition, so
        one that raced another writer is computed again from what is there now."""
        for _ in range(_REFRESH_TRIES):
            obj = self.kube.pipeline(namespace, name)
            if obj is None or obj["metadata"].get("deletionTimestamp"):
                return
            ref = PipelineRef(namespace, name, str(obj["metadata"].get("uid", "")))
            with self._counted():
                if self._closed.is_set():
                    return
                try:
                    drifted = self._write_readiness(ref, obj)
                except StatusConflict:
                    continue
            if drifted:
                self._revert_drift(ref)
            return
        log.info("%s/%s: readiness not refreshed: the status kept moving", namespace, name)

    def _write_readiness(self, ref: PipelineRef, obj: Mapping[str, Any]) -> bool:
        """Write readiness as the Deployments show it now; True when a Deployment drifted from
        its desired count instead (the caller reverts it, under the lock)."""
        status = obj.get("status") or {}
        prior = Prior.of(obj)
        # Before the first reconcile of this generation, the desired counts are unknown.
        if status.get("observedGeneration") != prior.generation or not prior.replicas:
            return False
        try:
            spec = parse_spec(obj.get("spec") or {})
        except SpecError:
            return False
        running = spec.components()
        if spec.paused or any(c.key not in prior.replicas for c in running):
            return False
        desired = {c: int(prior.replicas[c.key]["desired"]) for c in running}
        states = _states(
            Owner(ref.name, ref.namespace, ref.uid), self.kube.deployments(ref.namespace, ref.name)
        )
        if decisions.drifted(states, desired):
            return True
        mode = spec.autoscaling.mode
        schema = self._migration_now(ref, spec)
        refreshed = decisions.refreshed(
            prior,
            states,
            desired,
            mode=mode,
            # A copy: a reconcile may be recording a decision meanwhile.
            decisions={} if mode is AutoscalingMode.OFF else dict(self._mem(ref.uid).decisions),
            schema=schema,
        )
        if refreshed is not None:
            updates, replicas = refreshed
            self._write(
                ref,
                prior,
                updates,
                {"replicas": replicas},
                resource_version=str(obj["metadata"].get("resourceVersion") or "") or None,
            )
            if schema is not None:
                self._post(ref, migration.schema_events(prior, schema, created=None))
        return False

    def _revert_drift(self, ref: PipelineRef) -> None:
        """A Deployment changed or deleted by someone else: put it back now, not at the next
        tick (a reconcile like any other, under the pipeline's lock)."""
        try:
            self.reconcile(ref, measure_lag=False)
        except (Backoff, InvalidSpec) as exc:
            log.info("%s/%s: drift not reverted yet: %s", ref.namespace, ref.name, exc)

    def _migration_now(self, ref: PipelineRef, spec: FleetPipelineSpec) -> Condition | None:
        """SchemaMigrated as the newest migration Job says (the reconcile deletes the others);
        None without a Job, when the last reconcile's word stands."""
        if not needs_migration(spec):
            return None
        jobs = [
            (str(obj["metadata"].get("creationTimestamp") or ""), name, obj)
            for name, obj in self.kube.jobs(ref.namespace, ref.name).items()
            if (obj["metadata"].get("labels") or {}).get(COMPONENT_LABEL) == MIGRATION
        ]
        if not jobs:
            return None
        _created, name, obj = max(jobs, key=lambda j: (j[0], j[1]))
        return migration.schema_condition(name, obj)

    # ---- posting and writing --------------------------------------------------------------
    def _post(self, ref: PipelineRef, events: Iterable[Event]) -> None:
        for event in events:
            self.events.post(ref, event.type, event.reason, event.message)

    def _decide(
        self,
        ref: PipelineRef,
        prior: Prior,
        decision: decisions.Decision,
        *,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        self._post(ref, decision.events)
        self._write(ref, prior, decision.conditions, fields or {})

    def _write(
        self,
        ref: PipelineRef,
        prior: Prior,
        updates: Sequence[Condition],
        fields: Mapping[str, Any],
        *,
        resource_version: str | None = None,
    ) -> None:
        conditions = merge_conditions(
            prior.conditions, updates, now=self.utc_now(), generation=prior.generation
        )
        self.kube.patch_status(
            ref.namespace,
            ref.name,
            {**fields, "conditions": conditions},
            resource_version=resource_version,
        )
        ready = decisions.ready_event(prior.conditions, conditions, prior.generation)
        if ready is not None:
            self._post(ref, [ready])
