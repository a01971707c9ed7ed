"""Least privilege on Kafka: which principal may do what, said once for every service.

Each service runs as its own Kafka principal (a SCRAM user in the dev stack, a ``KafkaUser`` or
the cluster's own accounts elsewhere) and is allowed only what its place in the data flow needs:

| principal | reads | writes | groups and transactional ids |
| --- | --- | --- | --- |
| ingest (and the MQTT bridge) | — | raw, dead letters | — |
| enrichment | raw | enriched, dead letters | its group, its transactional ids |
| detection | enriched, its changelog | alerts, trips, scores, changelog, dead letters | same |
| notification | alerts | notifications, dead letters | its group |
| storage-writer | enriched, alerts, trips, scores, KPIs, dead letters | dead letters | its group |
| kpis | enriched, alerts, its state | KPIs, its state, dead letters | same as enrichment |
| console | alerts, enriched (live positions), notifications | — | — (assigned partitions) |
| operator | topics' metadata and configs, groups' offsets | creates and grows topics | — |

Pure: names in, rules out. :mod:`fleetpipe.core.acls` turns the rules into the broker's ACL
bindings. Topic names come from :class:`~fleetpipe.core.settings.Topics`; with
``Pattern.PREFIXED`` a rule also covers every topic whose name starts with it (side-by-side
pipelines, or tests that add a suffix to each name). Group and transactional-id rules are always
prefixes: a transactional id is ``<group>-<instance>`` (see :mod:`fleetpipe.core.loop`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from fleetpipe.core.settings import Topics


class Resource(StrEnum):
    TOPIC = "topic"
    GROUP = "group"
    TRANSACTIONAL_ID = "transactional-id"
    CLUSTER = "cluster"


class Operation(StrEnum):
    """Kafka's ACL operations that FleetPipe grants (READ and WRITE imply DESCRIBE)."""

    READ = "read"
    WRITE = "write"
    DESCRIBE = "describe"
    CREATE = "create"
    ALTER = "alter"
    DESCRIBE_CONFIGS = "describe-configs"
    ALTER_CONFIGS = "alter-configs"


class Pattern(StrEnum):
    LITERAL = "literal"
    PREFIXED = "prefixed"


class Principal(StrEnum):
    """The pipeline's Kafka principals, by the service they belong to (``User:<value>``)."""

    INGEST = "ingest"
    ENRICHMENT = "enrichment"
    DETECTION = "detection"
    NOTIFICATION = "notification"
    STORAGE_WRITER = "storage-writer"
    CONSOLE = "console"
    OPERATOR = "operator"
    KPIS = "kpis"


@dataclass(frozen=True, slots=True)
class AccessRule:
    """One allowed operation of one principal on one resource (or name prefix)."""

    principal: str
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation

    def describe(self) -> str:
        star = "*" if self.pattern is Pattern.PREFIXED else ""
        return f"User:{self.principal} {self.operation} {self.resource} {self.name}{star}"


# What a principal does with its topics, by field of core.settings.Topics.
_READS: dict[Principal, tuple[str, ...]] = {
    Principal.ENRICHMENT: ("raw",),
    Principal.DETECTION: ("enriched", "detection_state"),
    Principal.NOTIFICATION: ("alerts",),
    Principal.STORAGE_WRITER: ("enriched", "alerts", "trips", "scores", "deadletter", "kpis"),
    Principal.CONSOLE: ("alerts", "enriched", "notifications"),
    Principal.KPIS: ("enriched", "alerts", "kpi_state"),
}
_WRITES: dict[Principal, tuple[str, ...]] = {
    Principal.INGEST: ("raw", "deadletter"),
    Principal.ENRICHMENT: ("enriched", "deadletter"),
    Principal.DETECTION: ("alerts", "trips", "scores", "detection_state", "deadletter"),
    Principal.NOTIFICATION: ("notifications", "deadletter"),
    Principal.STORAGE_WRITER: ("deadletter",),
    Principal.KPIS: ("kpis", "kpi_state", "deadletter"),
}
# The stages that run a consumer group, and those of them that write in Kafka transactions.
_GROUPS = (
    Principal.ENRICHMENT,
    Principal.DETECTION,
    Principal.NOTIFICATION,
    Principal.STORAGE_WRITER,
    Principal.KPIS,
)
_TRANSACTIONAL = (Principal.ENRICHMENT, Principal.DETECTION, Principal.KPIS)
_OPERATOR_TOPICS = (
    Operation.DESCRIBE,
    Operation.CREATE,
    Operation.ALTER,
    Operation.DESCRIBE_CONFIGS,
    Operation.ALTER_CONFIGS,
)


def written_topics(principal: Principal, topics: Topics) -> list[str]:
    """The topics ``principal`` writes: what its service must be allowed to produce to."""
    names = topics.model_dump()
    return [names[field] for field in _WRITES.get(principal, ())]


def default_group(principal: Principal) -> str:
    """The consumer group a stage runs in by default (its ``group_id`` setting)."""
    return f"fleetpipe-{principal.value}"


def access_rules(
    principal: Principal,
    topics: Topics,
    *,
    groups: Iterable[str] | None = None,
    pattern: Pattern = Pattern.LITERAL,
    user: str | None = None,
) -> list[AccessRule]:
    """Everything ``principal`` (as Kafka user ``user``, by default its own name) may do.

    ``groups`` are the consumer-group names (prefixes) of a stage, its default group without;
    they also prefix its transactional ids.
    """
    name = user or principal.value
    names = topics.model_dump()
    rules: list[AccessRule] = []

    def allow(resource: Resource, target: str, how: Pattern, *ops: Operation) -> None:
        rules.extend(AccessRule(name, resource, target, how, op) for op in ops)

    for field in _READS.get(principal, ()):
        allow(Resource.TOPIC, names[field], pattern, Operation.READ)
    for field in _WRITES.get(principal, ()):
        allow(Resource.TOPIC, names[field], pattern, Operation.WRITE)
    stage_groups = list(groups) if groups is not None else [default_group(principal)]
    if principal in _GROUPS:
        for group in stage_groups:
            allow(Resource.GROUP, group, Pattern.PREFIXED, Operation.READ)
    if principal in _TRANSACTIONAL:
        for group in stage_groups:
            allow(
                Resource.TRANSACTIONAL_ID,
                group,
                Pattern.PREFIXED,
                Operation.WRITE,
                Operation.DESCRIBE,
            )
    if principal is Principal.OPERATOR:
        for topic in names.values():
            allow(Resource.TOPIC, topic, pattern, *_OPERATOR_TOPICS)
        # Lag: the committed offsets of every group (describe), never joining one.
        allow(Resource.GROUP, "*", Pattern.LITERAL, Operation.DESCRIBE)
        allow(Resource.CLUSTER, "kafka-cluster", Pattern.LITERAL, Operation.DESCRIBE)
    return rules


def pipeline_rules(
    topics: Topics,
    *,
    pattern: Pattern = Pattern.LITERAL,
    users: dict[Principal, str] | None = None,
) -> list[AccessRule]:
    """The rules of every principal of one pipeline (each under its default group)."""
    users = users or {}
    return [
        rule
        for principal in Principal
        for rule in access_rules(principal, topics, pattern=pattern, user=users.get(principal))
    ]


def access_manager_rules(user: str) -> list[AccessRule]:
    """What a principal needs on top of its own rules to manage the others' SCRAM logins and
    ACLs (the operator with ``spec.kafka.access: Managed``): ALTER on the cluster, which
    Kafka asks for CreateAcls, DeleteAcls and AlterUserScramCredentials alike."""
    return [AccessRule(user, Resource.CLUSTER, "kafka-cluster", Pattern.LITERAL, Operation.ALTER)]
