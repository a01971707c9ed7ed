"""The pipeline's topics, said once: name, message, key, cleanup policy and partition sizing.

Every place that names, creates or sizes a topic reads this table: the services' settings take
their default names from it (``core.settings.Topics``), the local stack and the tests create the
topics from it, and the operator renders a pipeline's topics and reads which of them are
co-partitioned from it. Adding a topic is one row here and one field in ``Topics``.

The value types of topic administration live here too (what a topic should be, what ensuring it
did), so that this module, the settings and the Kafka edge import each other without a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from google.protobuf.message import Message

from fleetpipe.pb.v1 import (
    alert_pb2,
    deadletter_pb2,
    enriched_pb2,
    kpi_pb2,
    notification_pb2,
    state_pb2,
    telemetry_pb2,
    trip_pb2,
)

if TYPE_CHECKING:
    from fleetpipe.core.settings import Topics


class Cleanup(StrEnum):
    """Kafka's ``cleanup.policy``."""

    DELETE = "delete"
    COMPACT = "compact"


# Compaction settings of a compacted topic. Detection's changelog is read back at start-up:
# compacting soon after a write (and rolling segments every 10 minutes, as only closed segments
# are compacted) keeps that read close to one record per vehicle.
_COMPACTION = {"min.compaction.lag.ms": "0", "segment.ms": "600000"}


@dataclass(frozen=True, slots=True)
class TopicContract:
    """One pipeline topic: what it is called, what it carries and how it is kept."""

    field: str  # the attribute of core.settings.Topics holding the topic's name
    name: str  # the default name
    message: type[Message]  # the protobuf message of every record's value
    key: str  # what every record's key is
    cleanup: Cleanup = Cleanup.DELETE
    # None: the pipeline's partition count, so that a vehicle's records of every topic land on
    # partitions with the same number (co-partitioned). A number: at most that many partitions.
    max_partitions: int | None = None

    @property
    def co_partitioned(self) -> bool:
        return self.max_partitions is None

    def partitions(self, pipeline: int) -> int:
        """Partitions of this topic in a pipeline sized at ``pipeline`` partitions."""
        if self.max_partitions is None:
            return pipeline
        return max(1, min(pipeline, self.max_partitions))

    def config(self) -> dict[str, str]:
        """Topic configs set at creation (Kafka's defaults otherwise)."""
        if self.cleanup is Cleanup.COMPACT:
            return {"cleanup.policy": Cleanup.COMPACT.value, **_COMPACTION}
        return {}


_BY_VEHICLE = "vehicle_id"

RAW = TopicContract("raw", "fleet.telemetry.raw.v1", telemetry_pb2.Telemetry, _BY_VEHICLE)
ENRICHED = TopicContract(
    "enriched", "fleet.telemetry.enriched.v1", enriched_pb2.EnrichedTelemetry, _BY_VEHICLE
)
ALERTS = TopicContract("alerts", "fleet.alerts.v1", alert_pb2.Alert, _BY_VEHICLE)
TRIPS = TopicContract("trips", "fleet.trips.v1", trip_pb2.Trip, _BY_VEHICLE)
SCORES = TopicContract("scores", "fleet.driver-scores.v1", trip_pb2.DriverScore, _BY_VEHICLE)
NOTIFICATIONS = TopicContract(
    "notifications",
    "fleet.notifications.v1",
    notification_pb2.NotificationOutcome,
    _BY_VEHICLE,
)
# Dead letters are rare and read by people, not by co-partitioned consumers: a few partitions do.
DEADLETTER = TopicContract(
    "deadletter",
    "fleet.deadletter.v1",
    deadletter_pb2.DeadLetter,
    "the failed record's own key",
    max_partitions=6,
)
# Detection's state per vehicle: only the latest record of a key matters, however old it is.
DETECTION_STATE = TopicContract(
    "detection_state",
    "fleet.detection.state.v1",
    state_pb2.VehicleState,
    _BY_VEHICLE,
    cleanup=Cleanup.COMPACT,
)

# Windowed fleet KPIs: a record per window, group and input partition, a few a minute per
# fleet; read by the storage writer. A handful of partitions do.
KPIS = TopicContract("kpis", "fleet.kpis.v1", kpi_pb2.FleetKpi, "fleet_id", max_partitions=6)
# The KPI stage's state: per vehicle its panes of open windows, per input partition its
# progress (key "#partition/<n>"); only the latest record of a key matters.
KPI_STATE = TopicContract(
    "kpi_state",
    "fleet.kpis.state.v1",
    kpi_pb2.KpiState,
    "vehicle_id, or #partition/<n>",
    cleanup=Cleanup.COMPACT,
)

CONTRACTS: tuple[TopicContract, ...] = (
    RAW,
    ENRICHED,
    ALERTS,
    TRIPS,
    SCORES,
    NOTIFICATIONS,
    DEADLETTER,
    DETECTION_STATE,
    KPIS,
    KPI_STATE,
)


# ---- topic administration ----------------------------------------------------------------
@dataclass(frozen=True)
class TopicSpec:
    """A topic as it should be (core.kafka.Admin creates and grows it)."""

    name: str
    partitions: int
    replication_factor: int = 1
    config: Mapping[str, str] | None = None


class TopicAction(StrEnum):
    """What ensuring a topic did."""

    CREATED = "created"
    GROWN = "grown"
    OK = "ok"  # it had the partitions asked
    KEPT = "kept"  # it had more partitions than asked: Kafka cannot shrink a topic


@dataclass(frozen=True, slots=True)
class TopicChange:
    action: TopicAction
    before: int  # partitions before (0 when created)
    after: int  # partitions after
    asked: int

    def __str__(self) -> str:
        if self.action is TopicAction.GROWN:
            return f"grown {self.before}->{self.after}"
        if self.action is TopicAction.KEPT:
            return f"kept {self.after} (asked {self.asked})"
        return self.action.value


def topic_specs(
    topics: Topics,
    partitions: int,
    *,
    replication_factor: int = 1,
    retention_ms: int | None = None,
) -> list[TopicSpec]:
    """Every pipeline topic under the names of ``topics``, for ``partitions`` partitions.

    ``retention_ms`` applies to the deleted (not compacted) topics only: time retention would
    throw a compacted topic's state away.
    """
    names = topics.model_dump()
    specs = []
    for contract in CONTRACTS:
        config = contract.config()
        if retention_ms is not None and contract.cleanup is Cleanup.DELETE:
            config["retention.ms"] = str(retention_ms)
        specs.append(
            TopicSpec(
                names[contract.field],
                contract.partitions(partitions),
                replication_factor=replication_factor,
                config=config or None,
            )
        )
    return specs


def co_partitioned(topics: Topics) -> list[str]:
    """Names of the topics whose partition count is the pipeline's."""
    names = topics.model_dump()
    return [names[c.field] for c in CONTRACTS if c.co_partitioned]
