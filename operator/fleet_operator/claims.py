"""Which FleetPipeline holds a topic: one pipeline per topic of a Kafka cluster. Pure.

Two FleetPipelines that name the same topics on the same brokers (the shipped sample applied in
two namespaces) would read and write each other's records with the same consumer groups, and one
pipeline's status would report growth the other asked for. As Strimzi's topic operator does, the
operator lets one of them hold the topics and marks the other with a conflict condition, applying
nothing for it. The holder is, among the pipelines that overlap, the one whose status already
says it holds them (a running pipeline keeps its topics when another is edited onto them), then
the oldest, then by namespace and name: every reconcile of either pipeline reaches the same
answer, and when the holder is deleted the other takes over at its next reconcile.

Brokers are compared by their bootstrap addresses, with a bare Service name qualified by the
pipeline's namespace (``kafka:9092`` in two namespaces is two clusters) and the cluster domain
removed (``kafka.ns.svc.cluster.local`` is ``kafka.ns.svc``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fleet_operator.render import pipeline_topics
from fleet_operator.spec import SpecError, parse_spec
from fleet_operator.status import TOPICS_CLAIMED


@dataclass(frozen=True, slots=True)
class Claim:
    namespace: str
    name: str
    uid: str
    created: str  # metadata.creationTimestamp (RFC 3339, so it sorts as text)
    holds: bool  # its status says it holds its topics
    brokers: frozenset[str]
    topics: frozenset[str]

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def overlaps(self, other: Claim) -> frozenset[str]:
        """The topics both name on the same brokers (empty when they are apart)."""
        if not self.brokers & other.brokers:
            return frozenset()
        return self.topics & other.topics

    def precedence(self) -> tuple[bool, str, str, str]:
        return (not self.holds, self.created, self.namespace, self.name)


def broker_addresses(bootstrap: str, namespace: str) -> frozenset[str]:
    """The bootstrap list as comparable ``host:port`` strings (see the module's docstring)."""
    out = set()
    for raw in bootstrap.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        host, _, port = entry.rpartition(":") if ":" in entry else (entry, "", "9092")
        host = host.strip("[]").rstrip(".")
        host = host.removesuffix(".cluster.local")
        if "." not in host and host != "localhost" and not _is_ip(host):
            host = f"{host}.{namespace}.svc"
        out.add(f"{host}:{port}")
    return frozenset(out)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def claim_of(obj: Mapping[str, Any]) -> Claim | None:
    """The claim of a FleetPipeline object; None when its spec is unusable (it claims nothing)."""
    meta = obj.get("metadata") or {}
    try:
        spec = parse_spec(obj.get("spec") or {})
    except SpecError:
        return None
    namespace = str(meta.get("namespace", ""))
    conditions = (obj.get("status") or {}).get("conditions") or []
    holds = any(c.get("type") == TOPICS_CLAIMED and c.get("status") == "True" for c in conditions)
    return Claim(
        namespace=namespace,
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        created=str(meta.get("creationTimestamp") or ""),
        holds=holds,
        brokers=broker_addresses(spec.kafka.bootstrap_servers, namespace),
        topics=frozenset(t.name for t in pipeline_topics(spec, 1)),
    )


@dataclass(frozen=True, slots=True)
class Conflict:
    holder: Claim
    topics: frozenset[str]

    @property
    def message(self) -> str:
        shown = ", ".join(sorted(self.topics)[:3])
        more = f" and {len(self.topics) - 3} more" if len(self.topics) > 3 else ""
        return (
            f"topics {shown}{more} on the same brokers are held by FleetPipeline "
            f"{self.holder.ref}: set spec.kafka.topicSuffix (or other brokers) to run apart; "
            "nothing is applied for this pipeline until then"
        )


def conflict(me: Claim, others: Iterable[Claim]) -> Conflict | None:
    """The pipeline that holds some of ``me``'s topics before it, if any."""
    ahead = [
        other
        for other in others
        if other.uid != me.uid and other.precedence() < me.precedence() and me.overlaps(other)
    ]
    if not ahead:
        return None
    holder = min(ahead, key=Claim.precedence)
    return Conflict(holder, me.overlaps(holder))


def held_by_others(me: Claim, others: Iterable[Claim]) -> dict[str, Claim]:
    """Topics of ``me`` that another pipeline names on the same brokers, with that pipeline:
    a pipeline being deleted must not delete them, whatever its deletionPolicy."""
    found: dict[str, Claim] = {}
    for other in others:
        if other.uid != me.uid:
            for topic in me.overlaps(other):
                found.setdefault(topic, other)
    return found
