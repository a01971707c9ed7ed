"""What the reconciler needs from the outside world, and the errors crossing that boundary.

The reconciler reaches the Kubernetes API, Kafka and the Event recorder only through these
Protocols: ``cluster.py`` implements the first two, ``cluster.KubeEvents`` the third, and the
unit tests hand in fakes. The edges turn their clients' errors into the ones below, so that the
reconciler decides on the project's own exceptions and never imports a client library.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fleet_operator.objects import Manifest
from fleet_operator.spec import API_VERSION, KIND
from fleetpipe.core.access import AccessRule
from fleetpipe.core.errors import FleetPipeError
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.topics import TopicChange, TopicSpec


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


class KubeApi(Protocol):
    def pipeline(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def list_pipelines(self, namespace: str | None) -> list[dict[str, Any]]:
        """Every FleetPipeline of ``namespace``, or of the cluster with None."""
        ...

    def deployments(self, namespace: str, pipeline: str) -> dict[str, dict[str, Any]]: ...
    def jobs(self, namespace: str, pipeline: str) -> dict[str, dict[str, Any]]:
        """The pipeline's Jobs by name."""
        ...

    def apply(self, manifest: Manifest) -> dict[str, Any]: ...
    def dry_run(self, manifest: Manifest) -> None:
        """Server-side apply with dryRun=All: ApplyRefused when the API server would refuse."""
        ...

    def delete_child(
        self, api_version: str, kind: str, namespace: str, name: str, *, pipeline: str
    ) -> None:
        """Delete a child of ``pipeline`` if it exists; an object of that name not labelled
        as the pipeline's is left alone."""
        ...

    def patch_status(
        self,
        namespace: str,
        name: str,
        status: Mapping[str, Any],
        *,
        resource_version: str | None = None,
    ) -> None:
        """Merge ``status`` in; with ``resource_version``, only if the resource is still at it
        (StatusConflict otherwise)."""
        ...

    def missing_secrets(self, namespace: str, names: Iterable[str]) -> list[str]: ...
    def secret_values(self, namespace: str, name: str, keys: Sequence[str]) -> dict[str, str]: ...


class KafkaApi(Protocol):
    def ensure_topics(
        self, kafka: KafkaSettings, specs: Sequence[TopicSpec]
    ) -> tuple[dict[str, TopicChange], dict[str, int]]:
        """Create and grow (never shrink); what was done per topic and the partitions now."""
        ...

    def align_configs(self, kafka: KafkaSettings, specs: Sequence[TopicSpec]) -> list[str]: ...
    def lag(self, kafka: KafkaSettings, group_id: str, topics: Sequence[str]) -> int: ...
    def delete_topics(self, kafka: KafkaSettings, names: Sequence[str]) -> None: ...
    def create_acls(self, kafka: KafkaSettings, rules: Sequence[AccessRule]) -> None:
        """An ALLOW ACL per rule (AccessRefused when the login may not alter the cluster)."""
        ...

    def delete_acls(self, kafka: KafkaSettings, rules: Sequence[AccessRule]) -> int:
        """Remove the ACL of each rule; how many the brokers removed."""
        ...

    def set_scram_logins(
        self, kafka: KafkaSettings, passwords: Mapping[str, str], *, mechanism: str
    ) -> None:
        """Create each SCRAM user or set its password (user → password)."""
        ...


class Events(Protocol):
    def post(self, ref: PipelineRef, type_: str, reason: str, message: str) -> None: ...


# ---- errors the edges raise --------------------------------------------------------------
class KafkaUnavailable(FleetPipeError):
    """The brokers cannot be reached (or do not answer in time)."""


class TopicsFailed(FleetPipeError):
    """The brokers answered but refused a topic operation (replication factor, policy...)."""


class AccessRefused(FleetPipeError):
    """The brokers refused the operator's login a right it needs (ALTER on the cluster to
    manage ACLs and SCRAM logins); the message names the principal and the right."""


class KubeApiError(FleetPipeError):
    """The Kubernetes API refused or failed a call (a terminating namespace, a conflict...)."""


class StatusConflict(KubeApiError):
    """A status write's precondition failed: the resource changed since it was read."""


class ApplyRefused(KubeApiError):
    """The API server refused a child as invalid (422, 400): the spec must change, not time."""


# ---- errors the reconciler raises (the handlers turn them into kopf's) -------------------
class Backoff(Exception):
    """Try again after ``delay`` seconds (kopf.TemporaryError in the handlers)."""

    def __init__(self, message: str, *, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


class InvalidSpec(Exception):
    """The spec cannot be used; retrying will not help until it changes."""
