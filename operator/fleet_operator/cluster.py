"""The operator's edges: the Kubernetes API and Kafka's AdminClient. Everything else is pure.

Children are written with server-side apply under the operator's field manager, forced: the
operator owns the fields it renders (replicas included), so a hand edit of those fields is
taken back at the next reconcile while fields it does not render stay untouched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from fleet_operator.objects import MANAGER, PIPELINE_LABEL, Manifest
from fleet_operator.ports import (
    AccessRefused,
    ApplyRefused,
    KafkaUnavailable,
    KubeApiError,
    PipelineRef,
    StatusConflict,
    TopicsFailed,
)
from fleet_operator.spec import API_VERSION, KIND
from fleetpipe.core import acls
from fleetpipe.core.access import AccessRule
from fleetpipe.core.errors import KafkaError
from fleetpipe.core.kafka import Admin, KafkaException, build_admin, is_unreachable
from fleetpipe.core.lag import group_lag
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.topics import TopicChange, TopicSpec

log = logging.getLogger(__name__)


@contextmanager
def _kube_call(what: str) -> Iterator[None]:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as exc:
        message = _server_message(exc)
        # 400/422: the object is invalid. An apply whose quantity cannot be parsed comes back
        # as a 500 "failed to convert ... to proper version": as invalid, not transient.
        invalid = exc.status in (400, 422) or (exc.status == 500 and "unable to convert" in message)
        error = ApplyRefused if invalid else KubeApiError
        raise error(f"{what}: {exc.status} {exc.reason}: {message}") from exc
    except HTTPError as exc:
        raise KubeApiError(f"{what}: {exc}") from exc


def _server_message(exc: Any) -> str:
    """The API server's own words (the Status object's message), not only the HTTP reason."""
    import json

    try:
        status = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return str(exc.body or "")
    return str(status.get("message") or "") if isinstance(status, dict) else str(status)


# ---- Kubernetes --------------------------------------------------------------------------
class KubeGateway:
    """Reads and writes through one API client (thread-safe: kopf runs handlers in threads)."""

    def __init__(self, api_client: Any, *, field_manager: str = MANAGER) -> None:
        from kubernetes import dynamic

        self._api = api_client
        self._dynamic = dynamic.DynamicClient(api_client)  # type: ignore[no-untyped-call]
        self._field_manager = field_manager
        self._resources: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> KubeGateway:
        """In a pod: its ServiceAccount; elsewhere: $KUBECONFIG or ~/.kube/config."""
        from kubernetes import client, config

        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            api = client.ApiClient()
        except config.ConfigException:
            api = config.new_client_from_config()  # type: ignore[no-untyped-call]
        return cls(api)

    def _resource(self, api_version: str, kind: str) -> Any:
        with self._lock:
            key = (api_version, kind)
            if key not in self._resources:
                self._resources[key] = self._dynamic.resources.get(
                    api_version=api_version, kind=kind
                )
            return self._resources[key]

    def apply(self, manifest: Manifest) -> dict[str, Any]:
        result: dict[str, Any] = self._apply(manifest, dry_run=False).to_dict()
        return result

    def dry_run(self, manifest: Manifest) -> None:
        self._apply(manifest, dry_run=True)

    def _apply(self, manifest: Manifest, *, dry_run: bool) -> Any:
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        meta = manifest["metadata"]
        extra = {"dry_run": "All"} if dry_run else {}
        with _kube_call(f"applying {manifest['kind']} {meta.get('namespace')}/{meta['name']}"):
            return self._dynamic.server_side_apply(  # type: ignore[no-untyped-call]
                resource,
                body=manifest,
                name=meta["name"],
                namespace=meta.get("namespace"),
                field_manager=self._field_manager,
                force_conflicts=True,
                **extra,
            )

    def create(self, manifest: Manifest) -> None:
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        meta = manifest["metadata"]
        with _kube_call(f"creating {manifest['kind']} {meta.get('namespace')}/{meta['name']}"):
            resource.create(body=manifest, namespace=meta.get("namespace"))

    def list_pipelines(self, namespace: str | None) -> list[dict[str, Any]]:
        where = namespace or "every namespace"
        with _kube_call(f"listing FleetPipelines of {where}"):
            found = self._resource(API_VERSION, KIND).get(namespace=namespace)
        items: list[dict[str, Any]] = found.to_dict().get("items") or []
        return items

    def deployments(self, namespace: str, pipeline: str) -> dict[str, dict[str, Any]]:
        """The pipeline's Deployments by name."""
        resource = self._resource("apps/v1", "Deployment")
        with _kube_call(f"listing the Deployments of {namespace}/{pipeline}"):
            found = resource.get(namespace=namespace, label_selector=f"{PIPELINE_LABEL}={pipeline}")
        return {item["metadata"]["name"]: item for item in found.to_dict()["items"]}

    def jobs(self, namespace: str, pipeline: str) -> dict[str, dict[str, Any]]:
        """The pipeline's Jobs by name."""
        resource = self._resource("batch/v1", "Job")
        with _kube_call(f"listing the Jobs of {namespace}/{pipeline}"):
            found = resource.get(namespace=namespace, label_selector=f"{PIPELINE_LABEL}={pipeline}")
        return {item["metadata"]["name"]: item for item in found.to_dict()["items"]}

    def pipeline(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            with _kube_call(f"reading FleetPipeline {namespace}/{name}"):
                obj = self._resource(API_VERSION, KIND).get(name=name, namespace=namespace)
        except KubeApiError as exc:
            if isinstance(exc.__cause__, NotFoundError):
                return None
            raise
        result: dict[str, Any] = obj.to_dict()
        return result

    def delete_child(
        self, api_version: str, kind: str, namespace: str, name: str, *, pipeline: str
    ) -> None:
        from kubernetes.dynamic.exceptions import NotFoundError

        resource = self._resource(api_version, kind)
        what = f"{kind} {namespace}/{name}"
        try:
            with _kube_call(f"reading {what}"):
                found = resource.get(name=name, namespace=namespace).to_dict()
            labels = found["metadata"].get("labels") or {}
            if labels.get(PIPELINE_LABEL) != pipeline:
                return
            # The uid as a precondition: an object recreated meanwhile is not ours to delete.
            uid = found["metadata"]["uid"]
            with _kube_call(f"deleting {what}"):
                resource.delete(
                    name=name,
                    namespace=namespace,
                    body={"preconditions": {"uid": uid}, "propagationPolicy": "Background"},
                )
        except KubeApiError as exc:
            if isinstance(exc.__cause__, NotFoundError):
                return
            raise

    def patch_status(
        self,
        namespace: str,
        name: str,
        status: Mapping[str, Any],
        *,
        resource_version: str | None = None,
    ) -> None:
        body: dict[str, Any] = {"status": dict(status)}
        if resource_version is not None:
            # A resourceVersion in a patch is a precondition: 409 when the object moved on.
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            with _kube_call(f"patching the status of {namespace}/{name}"):
                self._resource(API_VERSION, KIND).status.patch(
                    body=body,
                    name=name,
                    namespace=namespace,
                    content_type="application/merge-patch+json",
                )
        except KubeApiError as exc:
            if getattr(exc.__cause__, "status", None) == 409:
                raise StatusConflict(str(exc)) from exc.__cause__
            raise

    def missing_secrets(self, namespace: str, names: Iterable[str]) -> list[str]:
        from kubernetes.dynamic.exceptions import NotFoundError

        secrets = self._resource("v1", "Secret")
        missing = []
        for name in names:
            try:
                with _kube_call(f"reading Secret {namespace}/{name}"):
                    secrets.get(name=name, namespace=namespace)
            except KubeApiError as exc:
                if not isinstance(exc.__cause__, NotFoundError):
                    raise
                missing.append(name)
        return missing

    def secret_values(self, namespace: str, name: str, keys: Sequence[str]) -> dict[str, str]:
        import base64

        with _kube_call(f"reading Secret {namespace}/{name}"):
            obj = self._resource("v1", "Secret").get(name=name, namespace=namespace).to_dict()
        data = obj.get("data") or {}
        return {k: base64.b64decode(data[k]).decode() for k in keys if k in data}


class KubeEvents:
    """Events posted by the calling thread, each on the API server when ``post`` returns.

    kopf's poster queues Events for a task of its event loop, which is cancelled as soon as
    the operator is told to stop: the Events of a reconcile finishing during SIGTERM (a
    rollout) were queued and never sent. Posting in the reconcile's own thread costs a call
    per decision and leaves nothing to flush; the shutdown only waits for reconciles to end.
    """

    # The API server refuses an Event message above 1 KiB (core/v1 Event validation).
    MAX_MESSAGE = 1024

    def __init__(self, gateway: KubeGateway, *, component: str = MANAGER) -> None:
        self._gateway = gateway
        self._component = component
        self._instance = socket.gethostname()

    def post(self, ref: PipelineRef, type_: str, reason: str, message: str) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{ref.name}.{uuid.uuid4().hex[:16]}",
                "namespace": ref.namespace,
            },
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": ref.name,
                "namespace": ref.namespace,
                "uid": ref.uid,
            },
            "type": type_,
            "reason": reason,
            "message": message[: self.MAX_MESSAGE],
            "source": {"component": self._component},
            "reportingComponent": self._component,
            "reportingInstance": self._instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self._gateway.create(event)
        except KubeApiError as exc:
            # An Event is a report, never a reason to fail the reconcile that made it.
            log.warning("%s/%s: Event %s not posted: %s", ref.namespace, ref.name, reason, exc)


# ---- Kafka -------------------------------------------------------------------------------
def login_key(kafka: KafkaSettings) -> str:
    """A digest of every setting of ``kafka``, its secrets' real values included.

    The settings' JSON masks a ``SecretStr`` as ``**********``: keyed on it, a rotated password
    would keep finding the client logged in with the old one. The digest names the login
    without holding the secret, and is never logged."""
    values = {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in kafka
    }
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


class KafkaGateway:
    """Admin clients per login (connection settings and secrets), reused across reconciles,
    dropped when they fail or when the same connection's secrets change."""

    def __init__(self, *, timeout_s: float) -> None:
        self._timeout = timeout_s
        # login key -> (the settings' JSON with secrets masked, the client)
        self._admins: dict[str, tuple[str, Admin]] = {}
        self._lock = threading.Lock()

    def _admin(self, kafka: KafkaSettings) -> Admin:
        key = login_key(kafka)
        with self._lock:
            found = self._admins.get(key)
            if found is not None:
                return found[1]
            # The same connection with other secrets (a rotated password): its old client
            # goes, it would only fail to log in.
            public = kafka.model_dump_json()
            for old in [k for k, (p, _) in self._admins.items() if p == public]:
                del self._admins[old]
            admin = build_admin(kafka, timeout_s=self._timeout)
            self._admins[key] = (public, admin)
            return admin

    @property
    def logins(self) -> int:
        """How many admin clients are kept."""
        with self._lock:
            return len(self._admins)

    def _forget(self, kafka: KafkaSettings) -> None:
        with self._lock:
            self._admins.pop(login_key(kafka), None)

    def _call(self, kafka: KafkaSettings, what: str, call: Any) -> Any:
        try:
            return call(self._admin(kafka))
        except KafkaException as exc:
            self._forget(kafka)
            if is_unreachable(exc):
                raise KafkaUnavailable(
                    f"Kafka at {kafka.bootstrap_servers} unreachable ({what}): {exc.args[0]}"
                ) from exc
            raise TopicsFailed(f"{what} failed: {exc.args[0]}") from exc
        except KafkaError as exc:
            self._forget(kafka)
            if is_unreachable(exc.__cause__):
                raise KafkaUnavailable(
                    f"Kafka at {kafka.bootstrap_servers} unreachable ({what}): {exc}"
                ) from exc
            raise TopicsFailed(str(exc)) from exc

    def ensure_topics(
        self, kafka: KafkaSettings, specs: Sequence[TopicSpec]
    ) -> tuple[dict[str, TopicChange], dict[str, int]]:
        """Create and grow (never shrink); returns the actions and the partitions now."""

        def run(admin: Admin) -> tuple[dict[str, TopicChange], dict[str, int]]:
            # Its first step is a metadata read, which fails fast (and _call names "unreachable")
            # when no broker answers. It returns once the brokers' metadata shows what it
            # created or grew, and each change's count is what that metadata showed, so the
            # partitions the status reports are never 0 or 50 for topics that already have 100;
            # metadata that does not catch up in time raises a KafkaError, which _call turns
            # into TopicsFailed.
            actions = admin.ensure_topics(specs)
            return actions, {name: change.after for name, change in actions.items()}

        result: tuple[dict[str, TopicChange], dict[str, int]] = self._call(
            kafka, "ensuring topics", run
        )
        return result

    def align_configs(self, kafka: KafkaSettings, specs: Sequence[TopicSpec]) -> list[str]:
        """Set the topic configs the specs name where they differ; returns the topics changed.

        Only ``retention.ms`` can differ from what creation set (the spec's retentionHours);
        the changelog's compaction settings are never touched once the topic exists.
        """

        def run(admin: Admin) -> list[str]:
            wanted = {
                s.name: (s.config or {})["retention.ms"]
                for s in specs
                if "retention.ms" in (s.config or {})
            }
            if not wanted:
                return []
            found = admin.topic_config(wanted, "retention.ms")
            changes = {name: value for name, value in wanted.items() if found.get(name) != value}
            admin.set_topic_config("retention.ms", changes)
            return sorted(changes)

        result: list[str] = self._call(kafka, "aligning topic configs", run)
        return result

    def lag(self, kafka: KafkaSettings, group_id: str, topics: Sequence[str]) -> int:
        """Records the group is behind on ``topics`` (all of them if it never committed)."""
        lags: int = self._call(
            kafka,
            f"reading the lag of {group_id}",
            lambda a: sum(p.lag for p in group_lag(a, group_id, topics)),
        )
        return lags

    def delete_topics(self, kafka: KafkaSettings, names: Sequence[str]) -> None:
        self._call(kafka, "deleting topics", lambda a: a.delete_topics(names))

    # ---- access (spec.kafka.access Managed) ----------------------------------------------
    def _grant(self, kafka: KafkaSettings, what: str, call: Any) -> Any:
        """``call`` through :meth:`_call`, a refusal by the brokers as :class:`AccessRefused`
        naming the operator's principal and the right it lacks."""
        try:
            return self._call(kafka, what, call)
        except TopicsFailed as exc:
            cause = exc.__cause__.__cause__ if exc.__cause__ is not None else None
            said = acls.refusal(cause) if cause is not None else None
            if said is None:
                raise
            who = f"User:{kafka.sasl_username or 'ANONYMOUS'}"
            raise AccessRefused(
                f"Kafka principal {who} may not {what} ({said}); grant {who} ALTER on the "
                "cluster (resource kafka-cluster) to let the operator manage the pipeline's "
                "access, or set spec.kafka.access to Unmanaged"
            ) from exc

    def create_acls(self, kafka: KafkaSettings, rules: Sequence[AccessRule]) -> None:
        self._grant(kafka, "create ACLs", lambda a: acls.apply_acls(a, rules))

    def delete_acls(self, kafka: KafkaSettings, rules: Sequence[AccessRule]) -> int:
        deleted: int = self._grant(kafka, "delete ACLs", lambda a: acls.delete_acls(a, rules))
        return deleted

    def set_scram_logins(
        self, kafka: KafkaSettings, passwords: Mapping[str, str], *, mechanism: str
    ) -> None:
        self._grant(
            kafka,
            "set SCRAM logins",
            lambda a: acls.upsert_scram_users(a, passwords, mechanism=mechanism),
        )
