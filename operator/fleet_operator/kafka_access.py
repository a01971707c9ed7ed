"""Kafka rights the operator grants with ``spec.kafka.access: Managed``: which, and how said.

Each service logs in as the SCRAM user its ``kafka.serviceCredentials`` Secret names and may do
exactly what :mod:`fleetpipe.core.access` gives its principal, on this pipeline's names: its
topics (literal, with the pipeline's suffix), its consumer group and transactional ids (by the
group's prefix). The ACLs the operator applied are recorded in ``status.kafkaAccess.acls``:
that record, not the principals, says what it may remove, so an ACL the administrator added for
the same user, or another pipeline's, is never touched. Pure: spec and names in, rules and
conditions out; ``access_step.py`` talks to the Secrets and the brokers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fleet_operator.credentials import kafka_secret
from fleet_operator.decisions import NORMAL, WARNING, Event, Prior
from fleet_operator.render import group_id, topics_for
from fleet_operator.spec import Component, FleetPipelineSpec
from fleet_operator.status import KAFKA_ACCESS_APPLIED, Condition
from fleetpipe.core.access import AccessRule, Operation, Pattern, Principal, Resource, access_rules

APPLIED = "Applied"
ACCESS_REFUSED = "KafkaAccessRefused"
KAFKA_ACCESS_REMOVED = "KafkaAccessRemoved"
UNMANAGED = "Unmanaged"

# The service principals a pipeline may run, with the stage (and so the group) of each.
_STAGES: dict[Principal, Component | None] = {
    Principal.INGEST: Component.INGEST,
    Principal.ENRICHMENT: Component.ENRICHMENT,
    Principal.DETECTION: Component.DETECTION,
    Principal.NOTIFICATION: Component.NOTIFICATION,
    Principal.STORAGE_WRITER: Component.STORAGE_WRITER,
    Principal.KPIS: Component.KPIS,
    Principal.CONSOLE: None,
}


def login_secrets(spec: FleetPipelineSpec) -> dict[Principal, str]:
    """The Secret (``username``, ``password``) of each service principal the pipeline runs."""
    running = spec.components()
    found: dict[Principal, str] = {}
    for principal, stage in _STAGES.items():
        if stage is None and not spec.console.enabled:
            continue
        if stage is not None and stage not in running:
            continue
        secret = kafka_secret(spec, principal.value)
        if secret:
            found[principal] = secret
    return found


def wanted_rules(spec: FleetPipelineSpec, users: Mapping[Principal, str]) -> list[AccessRule]:
    """Every ACL of the pipeline's service principals, ``users`` naming each one's SCRAM user."""
    topics = topics_for(spec)
    rules: list[AccessRule] = []
    for principal, user in sorted(users.items()):
        stage = _STAGES[principal]
        groups = [group_id(spec, stage)] if stage is not None else []
        rules += access_rules(principal, topics, groups=groups, user=user)
    # Once each, in a stable order: two services may share a user.
    return sorted(set(rules), key=_key)


def _key(rule: AccessRule) -> tuple[str, ...]:
    return (rule.principal, rule.resource, rule.name, rule.pattern, rule.operation)


def record(rules: Sequence[AccessRule]) -> list[dict[str, str]]:
    """``rules`` as ``status.kafkaAccess.acls`` holds them."""
    return [
        {
            "principal": r.principal,
            "resource": r.resource.value,
            "name": r.name,
            "pattern": r.pattern.value,
            "operation": r.operation.value,
        }
        for r in sorted(set(rules), key=_key)
    ]


def recorded(status: Mapping[str, Any]) -> list[AccessRule]:
    """The ACLs a status says the operator applied (an entry it cannot read is skipped: the
    status is the operator's own, but anyone with the status subresource may write it)."""
    found: list[AccessRule] = []
    for item in (status.get("kafkaAccess") or {}).get("acls") or []:
        try:
            found.append(
                AccessRule(
                    str(item["principal"]),
                    Resource(item["resource"]),
                    str(item["name"]),
                    Pattern(item["pattern"]),
                    Operation(item["operation"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return found


@dataclass(frozen=True, slots=True)
class AccessOutcome:
    """What one reconcile did about the pipeline's Kafka rights."""

    condition: Condition
    # status.kafkaAccess as a merge patch (None removes it).
    status: Mapping[str, Any] | None
    events: tuple[Event, ...] = ()
    problems: list[tuple[str, str]] = field(default_factory=list)


def applied(
    prior: Prior,
    rules: Sequence[AccessRule],
    *,
    logins: int,
    added: int,
    removed: int,
    logins_set: bool,
) -> AccessOutcome:
    principals = len({r.principal for r in rules})
    message = (
        f"{len(rules)} ACLs of {principals} service principals in place; {logins} SCRAM logins"
    )
    events: tuple[Event, ...] = ()
    if (
        added
        or removed
        or logins_set
        or prior.condition(KAFKA_ACCESS_APPLIED).get("status") != "True"
    ):
        said = f"{added} ACLs added, {removed} removed" + (
            f", {logins} SCRAM logins set" if logins_set else ""
        )
        events = (Event(NORMAL, KAFKA_ACCESS_APPLIED, f"{said}: {message}"),)
    return AccessOutcome(
        Condition.of(KAFKA_ACCESS_APPLIED, True, APPLIED, message),
        {"principals": principals, "logins": logins, "acls": record(rules)},
        events,
    )


def refused(prior: Prior, message: str, *, kept: Sequence[AccessRule]) -> AccessOutcome:
    """The operator could not apply the rights: a Warning (once per message) and Degraded."""
    repeated = prior.condition(KAFKA_ACCESS_APPLIED).get("message") == message
    return AccessOutcome(
        Condition.of(KAFKA_ACCESS_APPLIED, False, ACCESS_REFUSED, message),
        # What was applied before stays recorded: it is still to be removed some day.
        {"principals": None, "logins": None, "acls": record(kept)},
        () if repeated else (Event(WARNING, ACCESS_REFUSED, message),),
        [(ACCESS_REFUSED, message)],
    )


def unmanaged(prior: Prior, kept: Sequence[AccessRule]) -> AccessOutcome | None:
    """Managed before, Unmanaged now: the administrator takes the ACLs over as they are."""
    if not kept and not prior.condition(KAFKA_ACCESS_APPLIED):
        return None
    message = (
        f"spec.kafka.access is Unmanaged: the {len(kept)} ACLs applied before are left "
        "in place for the cluster's administrator"
    )
    return AccessOutcome(Condition.of(KAFKA_ACCESS_APPLIED, False, UNMANAGED, message), None)
