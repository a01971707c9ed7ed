"""Reconciling one FleetPipeline: topics, then children, then status, with an Event per decision.

Order matters: topics are created and grown *before* any Deployment is scaled, so that new
consumers always find partitions to take. Partitions never shrink. The Kubernetes API and Kafka
are reached only through the gateways handed in (``cluster.py`` in the operator, fakes in unit
tests); sizing, rendering and status are pure functions.

Every entry point runs under a per-pipeline lock: kopf runs change handlers, the timer and the
Deployment watch concurrently, and the status (a whole conditions list) is read-modified-written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import SecretStr

from fleet_operator import sizing
from fleet_operator.cluster import KafkaUnavailable, KubeApiError, TopicsFailed
from fleet_operator.render import (
    Manifest,
    Owner,
    deployment_names,
    group_id,
    input_topics,
    pipeline_topics,
    referenced_secrets,
    render,
    topics_for,
)
from fleet_operator.settings import OperatorSettings
from fleet_operator.sizing import CONSUMERS, Autoscaler, LagDecision
from fleet_operator.spec import (
    API_VERSION,
    KIND,
    AutoscalingMode,
    Component,
    DeletionPolicy,
    FleetPipelineSpec,
    SpecError,
    parse_spec,
)
from fleet_operator.status import (
    DEGRADED,
    INVALID_SPEC,
    KAFKA_UNREACHABLE,
    NOT_SUPPORTED,
    PAUSED,
    READY,
    SCALING,
    SECRET_MISSING,
    TOPICS_FAILED,
    TOPICS_READY,
    Condition,
    DeploymentState,
    TopicsOutcome,
    condition,
    degraded_condition,
    lag_status,
    merge_conditions,
    ready_condition,
    replicas_status,
    scaling_condition,
    services_condition,
    topics_condition,
)
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.topics import TopicAction, TopicChange, TopicSpec

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"


# ---- what the reconciler needs from the outside world ------------------------------------
class KubeApi(Protocol):
    def pipeline(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def deployments(self, namespace: str, pipeline: str) -> dict[str, dict[str, Any]]: ...
    def apply(self, manifest: Manifest) -> dict[str, Any]: ...
    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None: ...
    def missing_secrets(self, namespace: str, names: Iterable[str]) -> list[str]: ...
    def secret_values(self, namespace: str, name: str, keys: Sequence[str]) -> dict[str, str]: ...


class KafkaApi(Protocol):
    def ensure_topics(
        self, kafka: KafkaSettings, specs: Sequence[TopicSpec]
    ) -> tuple[dict[str, TopicChange], dict[str, int]]: ...
    def align_configs(self, kafka: KafkaSettings, specs: Sequence[TopicSpec]) -> list[str]: ...
    def lag(self, kafka: KafkaSettings, group_id: str, topics: Sequence[str]) -> int: ...
    def delete_topics(self, kafka: KafkaSettings, names: Sequence[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class PipelineRef:
    namespace: str
    name: str
    uid: str

    def body(self) -> dict[str, Any]:
        """Enough of the object for an Event's involvedObject."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid},
        }


class Events(Protocol):
    def post(self, ref: PipelineRef, type_: str, reason: str, message: str) -> None: ...


class Backoff(Exception):
    """Try again after ``delay`` seconds (kopf.TemporaryError in the handlers)."""

    def __init__(self, message: str, *, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


class InvalidSpec(Exception):
    """The spec cannot be used; retrying will not help until it changes."""


@dataclass
class _Memory:
    """What the operator keeps per pipeline between reconciles (lost on restart, by design)."""

    autoscaler: Autoscaler = field(default_factory=Autoscaler)
    lag: dict[Component, int] = field(default_factory=dict)
    decisions: dict[Component, LagDecision] = field(default_factory=dict)
    # Each Deployment's metadata.generation right after our last apply.
    generations: dict[Component, int] = field(default_factory=dict)

    def edited_by_others(self, now: Mapping[Component, int]) -> set[Component]:
        """Deployments whose spec someone else changed since our last apply, and we put back.

        Reading a Deployment and then applying leaves a window in which a hand edit lands and
        is reverted unseen; the generation cannot hide it: their change and our revert are
        two steps past the generation our previous apply left.
        """
        edited = {
            c for c, g in now.items() if c in self.generations and g - self.generations[c] >= 2
        }
        self.generations.update(now)
        return edited


def kafka_settings(
    spec: FleetPipelineSpec, credentials: Mapping[str, str] | None = None
) -> KafkaSettings:
    creds = credentials or {}
    password = creds.get("password")
    return KafkaSettings(
        bootstrap_servers=spec.kafka.bootstrap_servers,
        security_protocol=spec.kafka.security_protocol,
        sasl_mechanism=spec.kafka.sasl_mechanism,
        sasl_username=creds.get("username"),
        sasl_password=SecretStr(password) if password is not None else None,
    )


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
        self.clock = clock
        self.utc_now = utc_now
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._memory: dict[str, _Memory] = {}
        # Pipelines whose finalizer work is done: kopf may call the deletion handler again
        # while it waits for the timer to stop, and the Events should not repeat.
        self._finalized: OrderedDict[str, None] = OrderedDict()

    def _lock(self, uid: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(uid, threading.Lock())

    def _mem(self, uid: str) -> _Memory:
        with self._guard:
            return self._memory.setdefault(uid, _Memory())

    def forget(self, uid: str) -> None:
        with self._guard:
            self._locks.pop(uid, None)
            self._memory.pop(uid, None)

    # ---- status writing -------------------------------------------------------------------
    def _write(
        self,
        ref: PipelineRef,
        obj: Mapping[str, Any],
        updates: Sequence[Condition],
        **fields: Any,
    ) -> list[dict[str, Any]]:
        status = obj.get("status") or {}
        generation = int(obj["metadata"].get("generation") or 0)
        before = status.get("conditions") or []
        conditions = merge_conditions(before, updates, now=self.utc_now(), generation=generation)
        self.kube.patch_status(ref.namespace, ref.name, {**fields, "conditions": conditions})
        self._ready_event(ref, before, conditions, generation)
        return conditions

    def _ready_event(
        self,
        ref: PipelineRef,
        before: Sequence[Mapping[str, Any]],
        after: Sequence[Mapping[str, Any]],
        generation: int,
    ) -> None:
        was = condition(before, READY)
        now = condition(after, READY)
        if now is None or now.get("status") != "True":
            return
        if (
            was is None
            or was.get("status") != "True"
            or was.get("observedGeneration") != generation
        ):
            self.events.post(
                ref, NORMAL, "PipelineReady", f"generation {generation}: {now.get('message', '')}"
            )

    # ---- entry points ---------------------------------------------------------------------
    def reconcile(self, ref: PipelineRef, *, measure_lag: bool, retry: int = 0) -> None:
        """Bring topics and children to the spec; measure lag first when ``measure_lag``."""
        with self._lock(ref.uid):
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
        generation = int(obj["metadata"].get("generation") or 0)
        status = obj.get("status") or {}
        conditions = status.get("conditions") or []
        try:
            spec = parse_spec(obj.get("spec") or {})
        except SpecError as exc:
            self._invalid(ref, obj, str(exc))
            raise InvalidSpec(str(exc)) from exc

        scaling_before = condition(conditions, SCALING) or {}
        if spec.paused:
            if scaling_before.get("reason") != PAUSED:
                self.events.post(
                    ref, NORMAL, PAUSED, "spec.paused: topics, Deployments and scaling left alone"
                )
            self._write(
                ref,
                obj,
                [Condition.of(SCALING, False, PAUSED, "spec.paused is true")],
                observedGeneration=generation,
            )
            return
        if scaling_before.get("reason") == PAUSED:
            self.events.post(ref, NORMAL, "Resumed", "spec.paused is false: reconciling again")

        owner = Owner(ref.name, ref.namespace, ref.uid)
        memory = self._mem(ref.uid)
        named = referenced_secrets(spec)
        missing = self.kube.missing_secrets(ref.namespace, list(named))
        problems = [
            (SECRET_MISSING, f"Secret {name} ({named[name]}) not found in {ref.namespace}")
            for name in missing
        ]
        credentials = None
        secret = spec.kafka.credentials_secret
        if secret and secret not in missing:
            credentials = self.kube.secret_values(ref.namespace, secret, ("username", "password"))
        kafka = kafka_settings(spec, credentials)
        topics = topics_for(spec)
        wanted = sizing.partitions_for(spec.fleet.vehicles, spec.fleet.vehicles_per_partition)
        specs = pipeline_topics(spec, wanted)

        # 1. Topics first: consumers scaled up must find the partitions to take.
        try:
            actions, partitions = self.kafka.ensure_topics(kafka, specs)
            altered = self._align_configs(ref, kafka, specs, actions)
            lag = self._measure_lag(ref, spec, kafka) if measure_lag else None
        except (KafkaUnavailable, TopicsFailed) as exc:
            self._kafka_failed(ref, obj, exc, problems)
            raise Backoff(str(exc), delay=self.settings.backoff(retry)) from exc
        co_partitioned = [s.name for s in specs if s.name != topics.deadletter]
        current = min(partitions.get(name, 0) for name in co_partitioned)
        outcome = TopicsOutcome(desired=wanted, current=current, actions=actions)
        self._topic_events(ref, obj, spec, outcome, altered)

        # 2. Sizing, with the autoscaler's view of lag when it was measured.
        before = _states(owner, self.kube.deployments(ref.namespace, ref.name))
        now = self.clock()
        for component in CONSUMERS:
            state = before.get(component)
            if state is not None:
                memory.autoscaler.seed(component, now=now, replicas=state.spec_replicas)
        mode = spec.autoscaling.mode
        if lag is not None:
            memory.lag = lag
            memory.decisions = (
                {}
                if mode is AutoscalingMode.OFF
                else memory.autoscaler.decide(spec, lag, now=now, topic_partitions=current)
            )
        decisions = {} if mode is AutoscalingMode.OFF else memory.decisions
        plan = sizing.plan(spec, topic_partitions=current, lag=decisions)

        # 3. Children, with server-side apply (reverts any hand edit of what we render).
        generations: dict[Component, int] = {}
        names = {name: c for c, name in deployment_names(owner).items()}
        for manifest in render(owner, spec, plan):
            applied = self.kube.apply(manifest)
            if manifest["kind"] == "Deployment":
                component = names[manifest["metadata"]["name"]]
                generations[component] = int(applied["metadata"].get("generation") or 0)
        self._scaling_events(
            ref, obj, spec, plan, before, edited=memory.edited_by_others(generations)
        )
        after = _states(owner, self.kube.deployments(ref.namespace, ref.name))

        # 4. Status.
        desired = {c: plan.desired(c) for c in Component}
        topics_c = topics_condition(outcome)
        services_c = services_condition(after, desired)
        degraded_c = degraded_condition(problems)
        fields: dict[str, Any] = {
            "observedGeneration": generation,
            "partitions": {"desired": wanted, "current": current},
            "replicas": replicas_status(plan, after),
        }
        if memory.lag:
            fields["lag"] = lag_status(memory.lag)
        self._write(
            ref,
            obj,
            [
                topics_c,
                services_c,
                scaling_condition(after, desired, mode, decisions),
                degraded_c,
                ready_condition(topics_c, services_c, degraded_c),
            ],
            **fields,
        )
        degraded_before = condition(conditions, DEGRADED) or {}
        if problems and degraded_before.get("message") != degraded_c.message:
            self.events.post(ref, WARNING, problems[0][0], degraded_c.message)

    def refresh(self, namespace: str, name: str) -> None:
        """Re-read the Deployments of a pipeline and update its readiness (a Deployment moved)."""
        try:
            self._refresh(namespace, name)
        except KubeApiError as exc:
            # Advisory: the timer and the next Deployment event will look again.
            log.info("%s/%s: readiness not refreshed: %s", namespace, name, exc)

    def _refresh(self, namespace: str, name: str) -> None:
        obj = self.kube.pipeline(namespace, name)
        if obj is None:
            return
        ref = PipelineRef(namespace, name, str(obj["metadata"].get("uid", "")))
        with self._lock(ref.uid):
            obj = self.kube.pipeline(namespace, name)
            if obj is None or obj["metadata"].get("deletionTimestamp"):
                return
            status = obj.get("status") or {}
            generation = int(obj["metadata"].get("generation") or 0)
            replicas = status.get("replicas") or {}
            # Before the first reconcile of this generation, the desired counts are unknown.
            if status.get("observedGeneration") != generation or not replicas:
                return
            try:
                spec = parse_spec(obj.get("spec") or {})
            except SpecError:
                return
            if spec.paused or any(c.key not in replicas for c in Component):
                return
            desired = {c: int(replicas[c.key]["desired"]) for c in Component}
            states = _states(
                Owner(name, namespace, ref.uid), self.kube.deployments(namespace, name)
            )
            if any(
                state is None or state.spec_replicas != desired[c] for c, state in states.items()
            ):
                # Changed or deleted by someone else: put it back now, not at the next tick.
                try:
                    self._reconcile(ref, obj, measure_lag=False, retry=0)
                except (Backoff, InvalidSpec) as exc:
                    log.info("%s/%s: drift not reverted yet: %s", namespace, name, exc)
                return
            conditions = status.get("conditions") or []
            services_c = services_condition(states, desired)
            mode = spec.autoscaling.mode
            decisions = {} if mode is AutoscalingMode.OFF else self._mem(ref.uid).decisions
            scaling_c = scaling_condition(states, desired, mode, decisions)
            topics_c = Condition.from_status(
                condition(conditions, TOPICS_READY) or {"type": TOPICS_READY}
            )
            degraded_c = Condition.from_status(
                condition(conditions, DEGRADED) or {"type": DEGRADED, "status": "False"}
            )
            by_key = {c.key: states.get(c) or _EMPTY for c in Component}
            new_replicas = {
                key: {**entry, "current": by_key[key].replicas, "ready": by_key[key].ready}
                for key, entry in replicas.items()
                if key in by_key
            }
            updates = [
                services_c,
                scaling_c,
                ready_condition(topics_c, services_c, degraded_c),
            ]
            if new_replicas == replicas and all(
                _same(condition(conditions, u.type), u) for u in updates
            ):
                return
            self._write(ref, obj, updates, replicas=new_replicas)

    def delete(self, ref: PipelineRef, raw_spec: Mapping[str, Any], *, retry: int = 0) -> None:
        """The finalizer's work: keep the topics (the data) unless deletionPolicy is Delete."""
        with self._lock(ref.uid):
            if ref.uid in self._finalized:
                return
            try:
                spec = parse_spec(raw_spec)
            except SpecError as exc:
                self.events.post(
                    ref, WARNING, INVALID_SPEC, f"deleted without touching Kafka: {exc}"
                )
                self.forget(ref.uid)
                return
            names = [s.name for s in pipeline_topics(spec, 1)]
            if spec.deletion_policy is DeletionPolicy.DELETE:
                try:
                    credentials = None
                    secret = spec.kafka.credentials_secret
                    if secret and not self.kube.missing_secrets(ref.namespace, [secret]):
                        credentials = self.kube.secret_values(
                            ref.namespace, secret, ("username", "password")
                        )
                    self.kafka.delete_topics(kafka_settings(spec, credentials), names)
                except (KafkaUnavailable, TopicsFailed, KubeApiError) as exc:
                    self.events.post(ref, WARNING, "TopicDeletionFailed", str(exc))
                    raise Backoff(str(exc), delay=self.settings.backoff(retry)) from exc
                self.events.post(
                    ref, NORMAL, "TopicsDeleted", f"deletionPolicy Delete: {', '.join(names)}"
                )
            else:
                self.events.post(
                    ref,
                    NORMAL,
                    "TopicsRetained",
                    f"deletionPolicy Retain: the {len(names)} topics keep the data",
                )
            self._finalized[ref.uid] = None
            while len(self._finalized) > 1000:
                self._finalized.popitem(last=False)
        self.forget(ref.uid)

    # ---- pieces ---------------------------------------------------------------------------
    def _invalid(self, ref: PipelineRef, obj: Mapping[str, Any], message: str) -> None:
        before = condition((obj.get("status") or {}).get("conditions") or [], DEGRADED) or {}
        if before.get("reason") != INVALID_SPEC or before.get("message") != message:
            self.events.post(ref, WARNING, INVALID_SPEC, message)
        self._write(
            ref,
            obj,
            [
                Condition.of(DEGRADED, True, INVALID_SPEC, message),
                Condition.of(READY, False, INVALID_SPEC, message),
            ],
        )

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
            }
        except (TopicsFailed, KafkaUnavailable) as exc:
            # The topics were just ensured, so the brokers answer; a group coordinator slow to
            # reply on a loaded machine must not flip the pipeline to Degraded.
            log.warning("%s/%s: lag not measured this time: %s", ref.namespace, ref.name, exc)
            return None

    def _kafka_failed(
        self,
        ref: PipelineRef,
        obj: Mapping[str, Any],
        exc: Exception,
        problems: list[tuple[str, str]],
    ) -> None:
        reason = KAFKA_UNREACHABLE if isinstance(exc, KafkaUnavailable) else TOPICS_FAILED
        message = str(exc)
        before = condition((obj.get("status") or {}).get("conditions") or [], DEGRADED) or {}
        if before.get("reason") != reason:
            self.events.post(ref, WARNING, reason, message)
        log.warning("%s/%s: %s", ref.namespace, ref.name, message)
        degraded = degraded_condition([(reason, message), *problems])
        self._write(
            ref,
            obj,
            [
                Condition(
                    TOPICS_READY,
                    "Unknown" if reason == KAFKA_UNREACHABLE else "False",
                    reason,
                    message,
                ),
                degraded,
                Condition.of(READY, False, reason, message),
            ],
        )

    def _topic_events(
        self,
        ref: PipelineRef,
        obj: Mapping[str, Any],
        spec: FleetPipelineSpec,
        outcome: TopicsOutcome,
        altered: Sequence[str],
    ) -> None:
        created = outcome.named(TopicAction.CREATED)
        grown = outcome.named(TopicAction.GROWN)
        if created:
            self.events.post(
                ref,
                NORMAL,
                "TopicsCreated",
                f"created {len(created)} topics with {outcome.desired} partitions "
                f"(replication factor {spec.kafka.replication_factor}): {', '.join(created)}",
            )
        if grown:
            changes = [outcome.actions[n] for n in grown]
            steps = sorted({f"{c.before}->{c.after}" for c in changes})
            self.events.post(
                ref,
                NORMAL,
                "PartitionsIncreased",
                f"grew {len(grown)} topics ({', '.join(steps)}) before scaling: {', '.join(grown)}",
            )
        if altered:
            self.events.post(
                ref,
                NORMAL,
                "TopicConfigChanged",
                f"retention.ms set to {spec.kafka.retention_hours} h on {', '.join(altered)}",
            )
        if outcome.current > outcome.desired:
            status = obj.get("status") or {}
            before = condition(status.get("conditions") or [], TOPICS_READY) or {}
            asked_before = (status.get("partitions") or {}).get("desired")
            if before.get("reason") != NOT_SUPPORTED or asked_before != outcome.desired:
                self.events.post(
                    ref,
                    WARNING,
                    "PartitionDecreaseNotSupported",
                    f"Kafka cannot decrease partitions: topics keep {outcome.current}, the spec "
                    f"asks {outcome.desired}",
                )

    def _scaling_events(
        self,
        ref: PipelineRef,
        obj: Mapping[str, Any],
        spec: FleetPipelineSpec,
        plan: sizing.SizingPlan,
        before: Mapping[Component, DeploymentState | None],
        *,
        edited: set[Component],
    ) -> None:
        status = obj.get("status") or {}
        previous = status.get("replicas") or {}
        same_generation = status.get("observedGeneration") == obj["metadata"].get("generation")
        created = []
        for component, service_plan in plan.services.items():
            state = before.get(component)
            desired = service_plan.desired
            prior = previous.get(component.key) or {}
            lag = service_plan.lag
            if (
                lag is not None
                and spec.autoscaling.mode is AutoscalingMode.RECOMMEND
                and lag.recommended != desired
                and prior.get("recommended") != lag.recommended
            ):
                self.events.post(
                    ref,
                    NORMAL,
                    "ScalingRecommended",
                    f"{component.value}: {lag.recommended} replicas recommended (lag "
                    f"{lag.lag} records, {lag.lag_replicas} by lagThreshold "
                    f"{spec.autoscaling.lag_threshold}); Recommend mode keeps {desired}",
                )
            if state is None:
                created.append(f"{component.value}={desired}")
                continue
            if state.spec_replicas == desired:
                if component in edited:
                    self.events.post(
                        ref,
                        WARNING,
                        "DriftReverted",
                        f"Deployment {ref.name}-{component.value} was changed outside the "
                        f"operator; put back to {desired} replicas",
                    )
                continue
            if same_generation and prior.get("desired") == desired:
                self.events.post(
                    ref,
                    WARNING,
                    "DriftReverted",
                    f"Deployment {ref.name}-{component.value} was set to {state.spec_replicas} "
                    f"replicas outside the operator; put back to {desired} replicas",
                )
            elif lag is not None and desired == lag.recommended and desired != service_plan.sized:
                self.events.post(
                    ref,
                    NORMAL,
                    "AutoScaled",
                    f"{component.value} {state.spec_replicas}→{desired} replicas: lag {lag.lag} "
                    f"records, lagThreshold {spec.autoscaling.lag_threshold}",
                )
            else:
                self.events.post(
                    ref,
                    NORMAL,
                    "Scaled",
                    f"{component.value} {state.spec_replicas}→{desired} replicas for "
                    f"{spec.fleet.events_per_second:g} events/s",
                )
        if created:
            self.events.post(
                ref, NORMAL, "ServicesCreated", "Deployments with replicas " + ", ".join(created)
            )


_EMPTY = DeploymentState(0, 0, 0, 0, True)


def _same(before: Mapping[str, Any] | None, after: Condition) -> bool:
    return (
        before is not None
        and before.get("status") == after.status
        and before.get("reason") == after.reason
        and before.get("message") == after.message
    )
