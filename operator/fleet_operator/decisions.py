"""What to say about a reconcile: the Events to post and the conditions to write. Pure.

Each function takes what the pipeline's status said before (:class:`Prior`) and what a step of
the reconcile found or did, and returns values; the reconciler posts and writes them. An Event
marks a decision or a change, so most of them are posted only when the status does not already
say the same thing: a timer tick that changes nothing posts nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fleet_operator.sizing import LagDecision, SizingPlan
from fleet_operator.spec import AutoscalingMode, Component, DeletionPolicy, FleetPipelineSpec
from fleet_operator.status import (
    DEGRADED,
    INVALID_RULES,
    INVALID_SPEC,
    KAFKA_UNREACHABLE,
    NOT_SUPPORTED,
    PAUSED,
    READY,
    SCALING,
    SCHEMA_MIGRATED,
    SECRET_MISSING,
    TOPICS_CLAIMED,
    TOPICS_FAILED,
    TOPICS_READY,
    Condition,
    DeploymentState,
    TopicsOutcome,
    condition,
    degraded_condition,
    ready_condition,
    scaling_condition,
    services_condition,
    topics_condition,
)
from fleetpipe.core.topics import TopicAction

NORMAL = "Normal"
# A child the API server refuses (its server-side dry-run failed); nothing was applied.
APPLY_REFUSED = "ApplyRefused"
WARNING = "Warning"

Problem = tuple[str, str]  # (condition reason, message) of something degrading the pipeline


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # NORMAL or WARNING
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    events: tuple[Event, ...] = ()
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class Prior:
    """The pipeline as read at the start of a reconcile: its generation and last status."""

    generation: int
    # The status was written for the current generation (metadata.generation as read).
    same_generation: bool
    conditions: Sequence[Mapping[str, Any]] = ()
    replicas: Mapping[str, Any] = field(default_factory=dict)
    partitions_desired: int | None = None

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Prior:
        meta = obj["metadata"]
        status = obj.get("status") or {}
        return cls(
            generation=int(meta.get("generation") or 0),
            same_generation=status.get("observedGeneration") == meta.get("generation"),
            conditions=status.get("conditions") or [],
            replicas=status.get("replicas") or {},
            partitions_desired=(status.get("partitions") or {}).get("desired"),
        )

    def condition(self, type_: str) -> Mapping[str, Any]:
        return condition(self.conditions, type_) or {}


# ---- validating the spec -----------------------------------------------------------------
def invalid_spec(prior: Prior, message: str) -> Decision:
    return _refused(prior, INVALID_SPEC, message)


def _refused(
    prior: Prior, reason: str, message: str, *, also: tuple[Condition, ...] = ()
) -> Decision:
    """Nothing was applied for ``reason``: Degraded and not Ready, and a Warning the first time
    this very message is seen (``also`` adds conditions; the first one decides what is new)."""
    watched = also[0].type if also else DEGRADED
    before = prior.condition(watched)
    repeated = before.get("reason") == reason and before.get("message") == message
    return Decision(
        events=() if repeated else (Event(WARNING, reason, message),),
        conditions=(
            *also,
            Condition.of(DEGRADED, True, reason, message),
            Condition.of(READY, False, reason, message),
        ),
    )


TOPICS_CONFLICT = "TopicsConflict"


def topics_conflict(prior: Prior, message: str) -> Decision:
    """Another pipeline holds this one's topics (claims.py): nothing is applied."""
    return _refused(
        prior,
        TOPICS_CONFLICT,
        message,
        also=(Condition.of(TOPICS_CLAIMED, False, TOPICS_CONFLICT, message),),
    )


def invalid_rules(prior: Prior, message: str) -> Decision:
    """``spec.rules`` detection would refuse: nothing rendered, the last good rules stay."""
    return _refused(prior, INVALID_RULES, message)


def topics_claimed(prior: Prior) -> tuple[list[Event], Condition]:
    """This pipeline holds its topics; an Event when it takes them over from a conflict."""
    before = prior.condition(TOPICS_CLAIMED)
    events = (
        [Event(NORMAL, "TopicsClaimed", "no other FleetPipeline holds these topics any more")]
        if before.get("reason") == TOPICS_CONFLICT
        else []
    )
    return events, Condition.of(
        TOPICS_CLAIMED,
        True,
        "Claimed",
        "no other FleetPipeline names these topics on these brokers",
    )


def topics_kept_for(held: Mapping[str, str]) -> Event:
    """Deleting a pipeline whose topics another pipeline holds: those are not deleted."""
    names = ", ".join(sorted(held))
    holders = ", ".join(sorted(set(held.values())))
    return Event(
        NORMAL,
        "TopicsKept",
        f"topics {names} are not deleted: FleetPipeline {holders} names them too",
    )


def paused(prior: Prior) -> Decision:
    already = prior.condition(SCALING).get("reason") == PAUSED
    return Decision(
        events=()
        if already
        else (Event(NORMAL, PAUSED, "spec.paused: topics, Deployments and scaling left alone"),),
        conditions=(Condition.of(SCALING, False, PAUSED, "spec.paused is true"),),
    )


def resumed(prior: Prior) -> list[Event]:
    if prior.condition(SCALING).get("reason") != PAUSED:
        return []
    return [Event(NORMAL, "Resumed", "spec.paused is false: reconciling again")]


def missing_secrets(
    named: Mapping[str, str], missing: Sequence[str], namespace: str
) -> list[Problem]:
    """``named``: Secret name → the spec field naming it; ``missing``: those not found."""
    return [
        (SECRET_MISSING, f"Secret {name} ({named[name]}) not found in {namespace}")
        for name in missing
    ]


# ---- topics ------------------------------------------------------------------------------
def kafka_failed(
    prior: Prior, message: str, problems: Sequence[Problem], *, unreachable: bool
) -> Decision:
    """Kafka unreachable, or refusing a topic operation: the pipeline is degraded."""
    reason = KAFKA_UNREACHABLE if unreachable else TOPICS_FAILED
    repeated = prior.condition(DEGRADED).get("reason") == reason
    return Decision(
        events=() if repeated else (Event(WARNING, reason, message),),
        conditions=(
            # Unreachable brokers say nothing about the topics; a refusal says they are wrong.
            Condition(TOPICS_READY, "Unknown" if unreachable else "False", reason, message),
            degraded_condition([(reason, message), *problems]),
            Condition.of(READY, False, reason, message),
        ),
    )


def topic_events(
    prior: Prior, spec: FleetPipelineSpec, outcome: TopicsOutcome, altered: Sequence[str]
) -> list[Event]:
    events = []
    created = outcome.named(TopicAction.CREATED)
    grown = outcome.named(TopicAction.GROWN)
    if created:
        events.append(
            Event(
                NORMAL,
                "TopicsCreated",
                f"created {len(created)} topics with {outcome.desired} partitions "
                f"(replication factor {spec.kafka.replication_factor}): {', '.join(created)}",
            )
        )
    if grown:
        changes = [outcome.actions[n] for n in grown]
        steps = sorted({f"{c.before}->{c.after}" for c in changes})
        events.append(
            Event(
                NORMAL,
                "PartitionsIncreased",
                f"grew {len(grown)} topics ({', '.join(steps)}) before scaling: {', '.join(grown)}",
            )
        )
    if altered:
        events.append(
            Event(
                NORMAL,
                "TopicConfigChanged",
                f"retention.ms set to {spec.kafka.retention_hours} h on {', '.join(altered)}",
            )
        )
    if outcome.current > outcome.desired:
        # Said once per asked count: the condition carries it while the spec stays.
        told = (
            prior.condition(TOPICS_READY).get("reason") == NOT_SUPPORTED
            and prior.partitions_desired == outcome.desired
        )
        if not told:
            events.append(
                Event(
                    WARNING,
                    "PartitionDecreaseNotSupported",
                    f"Kafka cannot decrease partitions: topics keep {outcome.current}, the spec "
                    f"asks {outcome.desired}",
                )
            )
    return events


# ---- children ----------------------------------------------------------------------------
def scaling_events(
    prior: Prior,
    spec: FleetPipelineSpec,
    plan: SizingPlan,
    before: Mapping[Component, DeploymentState | None],
    *,
    pipeline: str,
    edited: set[Component],
) -> list[Event]:
    """What applying ``plan`` did to Deployments found as ``before``.

    ``edited``: Deployments someone else changed since our last apply, already put back.
    """
    events = []
    created = []
    for component, service_plan in plan.services.items():
        state = before.get(component)
        desired = service_plan.desired
        prior_replicas = prior.replicas.get(component.key) or {}
        lag = service_plan.lag
        if (
            lag is not None
            and spec.autoscaling.mode is AutoscalingMode.RECOMMEND
            and lag.recommended != desired
            and prior_replicas.get("recommended") != lag.recommended
        ):
            events.append(
                Event(
                    NORMAL,
                    "ScalingRecommended",
                    f"{component.value}: {lag.recommended} replicas recommended (lag "
                    f"{lag.lag} records, {lag.lag_replicas} by lagThreshold "
                    f"{spec.autoscaling.lag_threshold}); Recommend mode keeps {desired}",
                )
            )
        if state is None:
            created.append(f"{component.value}={desired}")
            continue
        deployment = f"Deployment {pipeline}-{component.value}"
        if state.spec_replicas == desired:
            if component in edited:
                events.append(
                    Event(
                        WARNING,
                        "DriftReverted",
                        f"{deployment} was changed outside the operator; put back to "
                        f"{desired} replicas",
                    )
                )
            continue
        if prior.same_generation and prior_replicas.get("desired") == desired:
            # Nothing we asked changed, yet the Deployment differs: someone scaled it.
            events.append(
                Event(
                    WARNING,
                    "DriftReverted",
                    f"{deployment} was set to {state.spec_replicas} replicas outside the "
                    f"operator; put back to {desired} replicas",
                )
            )
        elif lag is not None and desired == lag.recommended and desired != service_plan.sized:
            events.append(
                Event(
                    NORMAL,
                    "AutoScaled",
                    f"{component.value} {state.spec_replicas}→{desired} replicas: lag {lag.lag} "
                    f"records, lagThreshold {spec.autoscaling.lag_threshold}",
                )
            )
        else:
            events.append(
                Event(
                    NORMAL,
                    "Scaled",
                    f"{component.value} {state.spec_replicas}→{desired} replicas for "
                    f"{spec.fleet.events_per_second:g} events/s",
                )
            )
    if created:
        events.append(
            Event(NORMAL, "ServicesCreated", "Deployments with replicas " + ", ".join(created))
        )
    return events


def apply_refused(prior: Prior, message: str) -> Decision:
    """The API server would refuse a child: nothing applied, the spec must change."""
    return _refused(prior, APPLY_REFUSED, message)


# ---- status ------------------------------------------------------------------------------
def reconciled(
    prior: Prior,
    outcome: TopicsOutcome,
    after: Mapping[Component, DeploymentState | None],
    plan: SizingPlan,
    *,
    mode: AutoscalingMode,
    decisions: Mapping[Component, LagDecision],
    problems: Sequence[Problem],
    schema: Condition | None = None,
) -> Decision:
    """The conditions once topics and children are in place, and a Warning for new problems
    (``schema``: SchemaMigrated, written with them and heeded by Ready)."""
    desired = {c: plan.desired(c) for c in plan.services}
    topics_c = topics_condition(outcome)
    services_c = services_condition(after, desired)
    degraded_c = degraded_condition(problems)
    repeated = prior.condition(DEGRADED).get("message") == degraded_c.message
    return Decision(
        events=(Event(WARNING, problems[0][0], degraded_c.message),)
        if problems and not repeated
        else (),
        conditions=(
            topics_c,
            services_c,
            scaling_condition(after, desired, mode, decisions),
            degraded_c,
            *((schema,) if schema is not None else ()),
            ready_condition(topics_c, services_c, degraded_c, schema=schema),
        ),
    )


def refreshed(
    prior: Prior,
    states: Mapping[Component, DeploymentState | None],
    desired: Mapping[Component, int],
    *,
    mode: AutoscalingMode,
    decisions: Mapping[Component, LagDecision],
    schema: Condition | None = None,
) -> tuple[list[Condition], dict[str, Any]] | None:
    """Readiness after a Deployment or the migration Job moved: the conditions and replicas
    figures to write.

    None when the status already says all of it. Topics and problems are not looked at
    again: they keep what the last reconcile wrote. ``schema``: SchemaMigrated as the
    migration Job says now (None: no Job, the last reconcile's word stands).
    """
    services_c = services_condition(states, desired)
    topics_c = Condition.from_status(prior.condition(TOPICS_READY) or {"type": TOPICS_READY})
    degraded_c = Condition.from_status(
        prior.condition(DEGRADED) or {"type": DEGRADED, "status": "False"}
    )
    if schema is None and prior.condition(SCHEMA_MIGRATED):
        schema = Condition.from_status(prior.condition(SCHEMA_MIGRATED))
    updates = [
        services_c,
        scaling_condition(states, desired, mode, decisions),
        *((schema,) if schema is not None else ()),
        ready_condition(topics_c, services_c, degraded_c, schema=schema),
    ]
    by_key = {c.key: states.get(c) or _EMPTY for c in Component}
    replicas = {
        key: {**entry, "current": by_key[key].replicas, "ready": by_key[key].ready}
        for key, entry in prior.replicas.items()
        if key in by_key
    }
    if replicas == prior.replicas and all(_same(prior.condition(u.type), u) for u in updates):
        return None
    return updates, replicas


def drifted(
    states: Mapping[Component, DeploymentState | None], desired: Mapping[Component, int]
) -> bool:
    """A Deployment deleted, or scaled to other than what the status says we asked."""
    return any(
        (state := states.get(c)) is None or state.spec_replicas != want
        for c, want in desired.items()
    )


def ready_event(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]], generation: int
) -> Event | None:
    """PipelineReady when Ready turns True, or stays True for a new generation."""
    was = condition(before, READY)
    now = condition(after, READY)
    if now is None or now.get("status") != "True":
        return None
    if (
        was is not None
        and was.get("status") == "True"
        and was.get("observedGeneration") == generation
    ):
        return None
    return Event(NORMAL, "PipelineReady", f"generation {generation}: {now.get('message', '')}")


# ---- deletion ----------------------------------------------------------------------------
def deleted_invalid(message: str) -> Event:
    return Event(WARNING, INVALID_SPEC, f"deleted without touching Kafka: {message}")


def deletion_failed(message: str) -> Event:
    return Event(WARNING, "TopicDeletionFailed", message)


def topics_finalized(policy: DeletionPolicy, names: Sequence[str]) -> Event:
    if policy is DeletionPolicy.DELETE:
        return Event(NORMAL, "TopicsDeleted", f"deletionPolicy Delete: {', '.join(names)}")
    return Event(
        NORMAL, "TopicsRetained", f"deletionPolicy Retain: the {len(names)} topics keep the data"
    )


_EMPTY = DeploymentState(0, 0, 0, 0, True)


def _same(before: Mapping[str, Any], after: Condition) -> bool:
    return (
        bool(before)
        and before.get("status") == after.status
        and before.get("reason") == after.reason
        and before.get("message") == after.message
    )
