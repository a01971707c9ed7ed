"""The FleetPipeline's status: conditions and figures, computed from observations. Pure.

Conditions follow the Kubernetes API conventions (``metav1.Condition``): a fixed set of types, each
with status, a CamelCase reason, a human message, lastTransitionTime (changed only when the status
changes) and the generation it was computed for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleet_operator.sizing import CONSUMERS, LagDecision, SizingPlan
from fleet_operator.spec import AutoscalingMode, Component
from fleetpipe.core.topics import TopicAction, TopicChange

READY = "Ready"
TOPICS_READY = "TopicsReady"
SERVICES_READY = "ServicesReady"
SCALING = "Scaling"
DEGRADED = "Degraded"
TOPICS_CLAIMED = "TopicsClaimed"  # see claims.py
KAFKA_ACCESS_APPLIED = "KafkaAccessApplied"  # see kafka_access.py
SCHEMA_MIGRATED = "SchemaMigrated"  # see migration.py
CONDITION_TYPES = (
    READY,
    TOPICS_READY,
    SERVICES_READY,
    SCALING,
    DEGRADED,
    TOPICS_CLAIMED,
    KAFKA_ACCESS_APPLIED,
    SCHEMA_MIGRATED,
)

# Reasons other code and tests refer to.
NOT_SUPPORTED = "NotSupported"
KAFKA_UNREACHABLE = "KafkaUnreachable"
TOPICS_FAILED = "TopicsFailed"
SECRET_MISSING = "SecretMissing"  # noqa: S105 - a condition reason, not a secret
INVALID_SPEC = "InvalidSpec"
INVALID_RULES = "InvalidRules"
PAUSED = "Paused"


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str = ""

    @classmethod
    def of(cls, type_: str, ok: bool, reason: str, message: str = "") -> Condition:
        return cls(type_, "True" if ok else "False", reason, message)

    @classmethod
    def from_status(cls, obj: Mapping[str, Any]) -> Condition:
        return cls(
            str(obj.get("type")),
            str(obj.get("status", "Unknown")),
            str(obj.get("reason", "")),
            str(obj.get("message", "")),
        )


def merge_conditions(
    previous: Sequence[Mapping[str, Any]],
    updates: Sequence[Condition],
    *,
    now: str,
    generation: int,
) -> list[dict[str, Any]]:
    """The new conditions list: updates replace their type, others stay as they were."""
    old = {c.get("type"): c for c in previous}
    new = {u.type: u for u in updates}
    out = []
    for type_ in CONDITION_TYPES:
        if type_ in new:
            u = new[type_]
            before = old.get(type_)
            since = now
            if before is not None and before.get("status") == u.status:
                since = before.get("lastTransitionTime") or now
            out.append(
                {
                    "type": u.type,
                    "status": u.status,
                    "reason": u.reason,
                    "message": u.message,
                    "lastTransitionTime": since,
                    "observedGeneration": generation,
                }
            )
        elif type_ in old:
            out.append(dict(old[type_]))
    return out


def condition(conditions: Sequence[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


# ---- observations ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DeploymentState:
    """What a Deployment reports; ``settled`` means its controller has seen the latest spec."""

    spec_replicas: int
    replicas: int
    ready: int
    updated: int
    settled: bool

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> DeploymentState:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        return cls(
            spec_replicas=int(spec.get("replicas") or 0),
            replicas=int(status.get("replicas") or 0),
            ready=int(status.get("readyReplicas") or 0),
            updated=int(status.get("updatedReplicas") or 0),
            settled=int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0),
        )

    def done(self, desired: int) -> bool:
        """Rolled out at ``desired`` replicas: all of them updated and ready, no old ones left."""
        return (
            self.settled
            and self.spec_replicas == desired
            and self.replicas == desired
            and self.updated == desired
            and self.ready == desired
        )


@dataclass(frozen=True, slots=True)
class TopicsOutcome:
    desired: int  # partitions the spec asks for
    current: int  # partitions the co-partitioned topics have now (the smallest of them)
    actions: Mapping[str, TopicChange]  # what ensuring each topic did

    def named(self, action: TopicAction) -> list[str]:
        """The topics ensuring did ``action`` to, sorted."""
        return sorted(name for name, change in self.actions.items() if change.action is action)


# ---- conditions --------------------------------------------------------------------------
def topics_condition(outcome: TopicsOutcome) -> Condition:
    if outcome.current < outcome.desired:
        return Condition.of(
            TOPICS_READY,
            False,
            "PartitionsPending",
            f"topics have {outcome.current} partitions, {outcome.desired} asked",
        )
    if outcome.current > outcome.desired:
        return Condition.of(
            TOPICS_READY,
            True,
            NOT_SUPPORTED,
            f"Kafka cannot decrease partitions: topics keep {outcome.current} "
            f"(the spec asks {outcome.desired}); consumers stay capped at {outcome.current}",
        )
    return Condition.of(
        TOPICS_READY,
        True,
        "TopicsReconciled",
        f"{len(outcome.actions)} topics at {outcome.current} partitions",
    )


def services_condition(
    states: Mapping[Component, DeploymentState | None], desired: Mapping[Component, int]
) -> Condition:
    waiting = []
    # The services the plan runs (a disabled KPI stage is not waited for).
    for component in desired:
        state = states.get(component)
        want = desired[component]
        if state is None:
            waiting.append(f"{component.value} missing")
        elif state.replicas > want:
            waiting.append(f"{component.value} {state.replicas}→{want} replicas")
        elif not state.done(want):
            waiting.append(f"{component.value} {state.ready}/{want} ready")
    if waiting:
        return Condition.of(SERVICES_READY, False, "ReplicasNotReady", ", ".join(waiting))
    total = sum(desired.values())
    return Condition.of(SERVICES_READY, True, "AllReplicasReady", f"{total} replicas ready")


def scaling_condition(
    states: Mapping[Component, DeploymentState | None],
    desired: Mapping[Component, int],
    mode: AutoscalingMode,
    decisions: Mapping[Component, LagDecision],
) -> Condition:
    moves = []
    directions = set()
    for component in desired:
        state = states.get(component)
        want = desired[component]
        if state is not None and state.replicas != want:
            moves.append(f"{component.value} {state.replicas}→{want}")
            directions.add("ScalingUp" if want > state.replicas else "ScalingDown")
    if moves:
        reason = directions.pop() if len(directions) == 1 else "Rescaling"
        return Condition.of(SCALING, True, reason, ", ".join(moves))
    if mode is AutoscalingMode.RECOMMEND:
        advice = [
            f"{c.value} {desired[c]}→{d.recommended} (lag {d.lag})"
            for c, d in decisions.items()
            if d.recommended != desired[c]
        ]
        if advice:
            return Condition.of(
                SCALING, False, "Recommendation", "not applied (Recommend): " + ", ".join(advice)
            )
    return Condition.of(SCALING, False, "Stable", f"autoscaling {mode.value}")


def ready_condition(
    topics: Condition,
    services: Condition,
    degraded: Condition,
    *,
    schema: Condition | None = None,
) -> Condition:
    """``schema``: SchemaMigrated, when this look at the pipeline has it (a service with a
    restricted role waits, not ready, for the migration; Ready waits with it)."""
    if degraded.status == "True":
        return Condition.of(READY, False, degraded.reason, degraded.message)
    if topics.status != "True":
        return Condition.of(READY, False, topics.reason, topics.message)
    if schema is not None and schema.status != "True":
        return Condition.of(READY, False, schema.reason, schema.message)
    if services.status != "True":
        return Condition.of(READY, False, services.reason, services.message)
    return Condition.of(READY, True, "PipelineReady", services.message)


def degraded_condition(problems: Sequence[tuple[str, str]]) -> Condition:
    """``problems``: (reason, message) pairs; the first reason names the condition."""
    if not problems:
        return Condition.of(DEGRADED, False, "AsExpected")
    return Condition.of(DEGRADED, True, problems[0][0], "; ".join(m for _r, m in problems))


# ---- figures -----------------------------------------------------------------------------
def replicas_status(
    plan: SizingPlan, states: Mapping[Component, DeploymentState | None]
) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for component, service_plan in plan.services.items():
        state = states.get(component)
        entry = {
            "sized": service_plan.sized,
            "desired": service_plan.desired,
            "current": state.replicas if state else 0,
            "ready": state.ready if state else 0,
        }
        if service_plan.lag is not None:
            entry["lagReplicas"] = service_plan.lag.lag_replicas
            entry["recommended"] = service_plan.lag.recommended
        out[component.key] = entry
    return out


def lag_status(lag: Mapping[Component, int]) -> dict[str, int]:
    out = {c.key: int(lag[c]) for c in CONSUMERS if c in lag}
    out["total"] = sum(out.values())
    return out
