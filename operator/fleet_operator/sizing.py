"""Sizing arithmetic: partitions and replicas from the fleet, and lag-based scaling. Pure.

DESIGN §4: partitions = ceil(vehicles / vehiclesPerPartition); replicas per service =
clamp(ceil(events/s ÷ capacity per replica ÷ target utilisation), min, max); a Kafka consumer
never gets more replicas than its input topic has partitions (ingest, a gRPC server, is not capped).
Lag-based scaling follows KEDA's Kafka scaler: ceil(total lag ÷ lagThreshold), capped at the
partitions, with HPA-style down-scale stabilisation so that a noisy lag does not flap replicas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from fleet_operator.spec import AutoscalingMode, Component, FleetPipelineSpec, ServiceScaling

# The Topics fields each service consumes (ingest consumes nothing: it is fed over gRPC).
INPUT_TOPICS: dict[Component, tuple[str, ...]] = {
    Component.INGEST: (),
    Component.ENRICHMENT: ("raw",),
    Component.DETECTION: ("enriched",),
    Component.NOTIFICATION: ("alerts",),
    Component.STORAGE_WRITER: ("enriched", "alerts", "trips", "scores"),
    Component.KPIS: ("enriched", "alerts"),
}
CONSUMERS = tuple(c for c in Component if INPUT_TOPICS[c])


def partitions_for(vehicles: int, vehicles_per_partition: int) -> int:
    """Partitions of each co-partitioned pipeline topic for a fleet."""
    if vehicles < 1 or vehicles_per_partition < 1:
        raise ValueError("vehicles and vehicles_per_partition must be at least 1")
    return math.ceil(vehicles / vehicles_per_partition)


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def exact(value: float | Fraction) -> Fraction:
    """The decimal the user wrote, exactly: 0.7 is 7/10, not the binary float nearest it.

    ``repr`` gives the shortest decimal that reads back as the same float, which is what a
    spec's YAML said; sizing on it keeps exact multiples exact.
    """
    return value if isinstance(value, Fraction) else Fraction(repr(float(value)))


def replicas_for(
    events_per_second: float | Fraction, scaling: ServiceScaling, utilisation: float
) -> int:
    """Replicas that carry ``events_per_second`` at ``utilisation`` of each one's capacity.

    In rational arithmetic: in floats, 42000 / 20000 / 0.7 is 3.0000000000000004 and a fleet
    that exactly fills 3 replicas at 70 % would get 4.
    """
    per_replica = scaling.capacity_per_replica * exact(utilisation)
    needed = math.ceil(exact(events_per_second) / per_replica)
    return clamp(needed, scaling.min_replicas, scaling.max_replicas)


def lag_replicas(total_lag: int, lag_threshold: int, partitions: int) -> int:
    """KEDA's Kafka scaler: one replica per ``lag_threshold`` records, never beyond partitions."""
    if total_lag <= 0:
        return 0
    return min(math.ceil(total_lag / lag_threshold), partitions)


@dataclass(frozen=True, slots=True)
class Recommendation:
    at: float  # seconds, monotonic or wall clock: only differences matter
    replicas: int


def stabilised(
    history: Sequence[Recommendation], *, now: float, window_s: float, proposal: int
) -> tuple[int, tuple[Recommendation, ...]]:
    """The HPA's down-scale stabilisation: the highest recommendation within the window.

    A rise applies at once (the new proposal is the highest); a fall applies only once every
    recommendation of the last ``window_s`` seconds allows it. Returns the value to use and the
    history to keep for next time.
    """
    kept = (*(r for r in history if now - r.at < window_s), Recommendation(now, proposal))
    return max(r.replicas for r in kept), kept


def consumer_cap(spec: FleetPipelineSpec, topic_partitions: int | None = None) -> int:
    """Most replicas a consumer can use: the partitions its input topics have (or will have)."""
    wanted = partitions_for(spec.fleet.vehicles, spec.fleet.vehicles_per_partition)
    return max(wanted, topic_partitions or 0)


def sized_replicas(spec: FleetPipelineSpec, component: Component, cap: int) -> int:
    """Replicas from the fleet size alone; consumers capped at ``cap`` partitions."""
    fleet = spec.fleet
    events = fleet.vehicles * exact(fleet.events_per_vehicle_per_second)
    sized = replicas_for(events, spec.services.of(component), spec.target_utilisation)
    return min(sized, cap) if component in CONSUMERS else sized


def lag_proposal(spec: FleetPipelineSpec, component: Component, lag_reps: int, cap: int) -> int:
    """What lag asks for on top of the fleet sizing, within the service's bounds and the cap."""
    scaling = spec.services.of(component)
    wanted = max(sized_replicas(spec, component, cap), lag_reps)
    return min(clamp(wanted, scaling.min_replicas, scaling.max_replicas), cap)


@dataclass(frozen=True, slots=True)
class LagDecision:
    lag: int  # records behind, summed over the input topics' partitions
    lag_replicas: int  # ceil(lag / lagThreshold), capped at partitions
    recommended: int  # the stabilised proposal: what Auto mode applies


class Autoscaler:
    """Lag-based recommendations with per-service stabilisation history (kept in memory).

    After an operator restart the history starts from the replicas the Deployments have, so a
    restart never lets replicas drop before a whole window has passed.
    """

    def __init__(self) -> None:
        self._history: dict[Component, tuple[Recommendation, ...]] = {}

    def seed(self, component: Component, *, now: float, replicas: int) -> None:
        if component not in self._history:
            self._history[component] = (Recommendation(now, replicas),)

    def decide(
        self,
        spec: FleetPipelineSpec,
        lag_by_service: Mapping[Component, int],
        *,
        now: float,
        topic_partitions: int | None = None,
    ) -> dict[Component, LagDecision]:
        cap = consumer_cap(spec, topic_partitions)
        window = spec.autoscaling.stabilisation_seconds
        decisions: dict[Component, LagDecision] = {}
        for component, lag in lag_by_service.items():
            reps = lag_replicas(lag, spec.autoscaling.lag_threshold, cap)
            proposal = lag_proposal(spec, component, reps, cap)
            value, self._history[component] = stabilised(
                self._history.get(component, ()), now=now, window_s=window, proposal=proposal
            )
            decisions[component] = LagDecision(lag=lag, lag_replicas=reps, recommended=value)
        return decisions


@dataclass(frozen=True, slots=True)
class ServicePlan:
    component: Component
    sized: int  # from the fleet size alone
    desired: int  # what the Deployment is set to
    lag: LagDecision | None = None  # when lag was measured and the mode asks for it


@dataclass(frozen=True, slots=True)
class SizingPlan:
    partitions: int  # what the spec asks for
    services: Mapping[Component, ServicePlan]

    def desired(self, component: Component) -> int:
        return self.services[component].desired


def plan(
    spec: FleetPipelineSpec,
    *,
    topic_partitions: int | None = None,
    lag: Mapping[Component, LagDecision] | None = None,
) -> SizingPlan:
    """Partitions and replicas for ``spec``.

    ``topic_partitions`` is what the topics have now (after growing them): it may exceed the
    spec's count, since partitions never shrink, and it is what caps the consumers. ``lag``
    holds the autoscaler's decisions: Recommend mode only reports them, Auto mode applies them.
    """
    cap = consumer_cap(spec, topic_partitions)
    mode = spec.autoscaling.mode
    services: dict[Component, ServicePlan] = {}
    for component in spec.components():
        sized = sized_replicas(spec, component, cap)
        decision = None if mode is AutoscalingMode.OFF else (lag or {}).get(component)
        desired = sized
        if decision is not None and mode is AutoscalingMode.AUTO:
            # The decision may predate a spec change: the current bounds and sizing still hold.
            scaling = spec.services.of(component)
            wanted = max(sized, decision.recommended)
            desired = min(clamp(wanted, scaling.min_replicas, scaling.max_replicas), cap)
        services[component] = ServicePlan(component, sized, desired, decision)
    return SizingPlan(
        partitions=partitions_for(spec.fleet.vehicles, spec.fleet.vehicles_per_partition),
        services=services,
    )
