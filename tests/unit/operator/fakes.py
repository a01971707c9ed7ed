"""Hand-written stand-ins for the reconciler's ports: Kubernetes, Kafka and the Event recorder.

Each implements its Protocol explicitly (a method missing or mistyped fails mypy here, not in
a test run) and keeps what the tests look at in plain fields.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fleet_operator.ports import (
    AccessRefused,
    Events,
    KafkaApi,
    KafkaUnavailable,
    KubeApi,
    PipelineRef,
    StatusConflict,
)
from fleetpipe.core.access import AccessRule
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.core.topics import TopicAction, TopicChange, TopicSpec


@dataclass
class Journal:
    """The order of calls across both fakes."""

    calls: list[str] = field(default_factory=list)


@dataclass
class FakeKube(KubeApi):
    journal: Journal
    pipelines: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=lambda: {"db", "twilio"})
    # Secret name → its keys and values, where a test needs real ones (a DSN).
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    # Called once, with the kind and name of the next object about to be applied (to
    # interleave a hand edit), then forgotten.
    on_apply: Callable[[str, str], bool] | None = None
    # Called once just before the next status write is checked and made (a concurrent
    # writer), then forgotten.
    before_status_write: Callable[[], None] | None = None

    def add_pipeline(
        self, name: str, spec: Mapping[str, Any], *, namespace: str = "ns"
    ) -> PipelineRef:
        uid = f"uid-{namespace}-{name}"
        # Creation times in the order the pipelines were added.
        created = f"2026-01-01T00:00:{len(self.pipelines):02d}Z"
        self.pipelines[(namespace, name)] = {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": uid,
                "generation": 1,
                "creationTimestamp": created,
                "resourceVersion": "1",
            },
            "spec": copy.deepcopy(dict(spec)),
        }
        return PipelineRef(namespace, name, uid)

    def update_spec(self, ref: PipelineRef, **changes: Any) -> None:
        obj = self.pipelines[(ref.namespace, ref.name)]
        obj["spec"].update(copy.deepcopy(changes))
        obj["metadata"]["generation"] += 1
        _moved(obj)

    def status(self, ref: PipelineRef) -> dict[str, Any]:
        return dict(self.pipelines[(ref.namespace, ref.name)].get("status") or {})

    def condition(self, ref: PipelineRef, type_: str) -> dict[str, Any]:
        return next(c for c in self.status(ref)["conditions"] if c["type"] == type_)

    # -- the KubeApi protocol --
    def pipeline(self, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.pipelines.get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def list_pipelines(self, namespace: str | None) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(obj)
            for (ns, _name), obj in self.pipelines.items()
            if namespace is None or ns == namespace
        ]

    def deployments(self, namespace: str, pipeline: str) -> dict[str, dict[str, Any]]:
        return {
            name: copy.deepcopy(obj)
            for (kind, name), obj in self.objects.items()
            if kind == "Deployment"
            and obj["metadata"]["labels"]["fleetpipe.io/pipeline"] == pipeline
        }

    def jobs(self, namespace: str, pipeline: str) -> dict[str, dict[str, Any]]:
        return {
            name: copy.deepcopy(obj)
            for (kind, name), obj in self.objects.items()
            if kind == "Job" and obj["metadata"]["labels"]["fleetpipe.io/pipeline"] == pipeline
        }

    def dry_run(self, manifest: Mapping[str, Any]) -> None:
        self.journal.calls.append(f"dry-run {manifest['kind']}/{manifest['metadata']['name']}")

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        key = (manifest["kind"], manifest["metadata"]["name"])
        self.journal.calls.append(f"apply {key[0]}/{key[1]}")
        if self.on_apply is not None and self.on_apply(*key):
            self.on_apply = None
        obj = copy.deepcopy(dict(manifest))
        before = self.objects.get(key)
        if manifest["kind"] == "Deployment":
            generation = (before or {}).get("metadata", {}).get("generation", 0)
            changed = before is None or before["spec"] != obj["spec"]
            obj["metadata"]["generation"] = generation + (1 if changed else 0)
            obj["status"] = (before or {}).get("status", {})
        if manifest["kind"] == "Job":
            # A Job's status is its controller's: an apply leaves it as it was.
            obj["status"] = (before or {}).get("status", {})
        self.objects[key] = obj
        return obj

    def delete_child(
        self, api_version: str, kind: str, namespace: str, name: str, *, pipeline: str
    ) -> None:
        obj = self.objects.get((kind, name))
        if obj is not None and obj["metadata"]["labels"].get("fleetpipe.io/pipeline") == pipeline:
            self.journal.calls.append(f"delete {kind}/{name}")
            del self.objects[(kind, name)]

    def roll_out(self) -> None:
        """What the Deployment controller and kwok do: every replica up and ready."""
        for (kind, _name), obj in self.objects.items():
            if kind == "Deployment":
                n = obj["spec"]["replicas"]
                obj["status"] = {
                    "observedGeneration": obj["metadata"]["generation"],
                    "replicas": n,
                    "readyReplicas": n,
                    "updatedReplicas": n,
                }

    def scale_by_hand(self, name: str, replicas: int) -> None:
        obj = self.objects[("Deployment", name)]
        obj["spec"]["replicas"] = replicas
        obj["metadata"]["generation"] += 1

    def patch_status(
        self,
        namespace: str,
        name: str,
        status: Mapping[str, Any],
        *,
        resource_version: str | None = None,
    ) -> None:
        self.journal.calls.append("patch status")
        obj = self.pipelines[(namespace, name)]
        if self.before_status_write is not None:
            hook, self.before_status_write = self.before_status_write, None
            hook()
        if resource_version is not None and resource_version != obj["metadata"]["resourceVersion"]:
            raise StatusConflict(f"{namespace}/{name} is past resourceVersion {resource_version}")
        obj["status"] = _merge_patch(obj.get("status") or {}, copy.deepcopy(dict(status)))
        _moved(obj)

    def missing_secrets(self, namespace: str, names: Iterable[str]) -> list[str]:
        return [n for n in names if n not in self.secrets]

    def secret_values(self, namespace: str, name: str, keys: Sequence[str]) -> dict[str, str]:
        if name in self.values:
            return {k: v for k, v in self.values[name].items() if k in keys}
        return {k: f"{name}-{k}" for k in keys}


@dataclass
class FakeKafka(KafkaApi):
    journal: Journal
    topics: dict[str, int] = field(default_factory=dict)
    lags: dict[str, int] = field(default_factory=dict)
    reachable: bool = True
    deleted: list[str] = field(default_factory=list)
    # The client settings of every call, in order: what the operator logged in with.
    logins: list[KafkaSettings] = field(default_factory=list)
    acls: set[AccessRule] = field(default_factory=set)
    # The passwords of each set_scram_logins call (user → password).
    scram_logins: list[dict[str, str]] = field(default_factory=list)
    # The brokers' refusal of ACL changes, when set.
    refuse_access: str | None = None

    def _check(self, kafka: KafkaSettings) -> None:
        self.logins.append(kafka)
        if not self.reachable:
            raise KafkaUnavailable(f"Kafka at {kafka.bootstrap_servers} unreachable")

    def ensure_topics(
        self, kafka: KafkaSettings, specs: Sequence[TopicSpec]
    ) -> tuple[dict[str, TopicChange], dict[str, int]]:
        self._check(kafka)
        self.journal.calls.append("ensure topics")
        actions = {}
        for s in specs:
            have = self.topics.get(s.name)
            if have is None:
                self.topics[s.name] = s.partitions
                actions[s.name] = TopicChange(TopicAction.CREATED, 0, s.partitions, s.partitions)
            elif have < s.partitions:
                self.topics[s.name] = s.partitions
                actions[s.name] = TopicChange(TopicAction.GROWN, have, s.partitions, s.partitions)
            elif have > s.partitions:
                actions[s.name] = TopicChange(TopicAction.KEPT, have, have, s.partitions)
            else:
                actions[s.name] = TopicChange(TopicAction.OK, have, have, s.partitions)
        return actions, {s.name: self.topics[s.name] for s in specs}

    def align_configs(self, kafka: KafkaSettings, specs: Sequence[TopicSpec]) -> list[str]:
        self._check(kafka)
        return []

    def lag(self, kafka: KafkaSettings, group_id: str, topics: Sequence[str]) -> int:
        self._check(kafka)
        return self.lags.get(group_id, 0)

    def delete_topics(self, kafka: KafkaSettings, names: Sequence[str]) -> None:
        self._check(kafka)
        self.deleted += list(names)

    def create_acls(self, kafka: KafkaSettings, rules: Sequence[AccessRule]) -> None:
        self._check(kafka)
        if self.refuse_access is not None:
            raise AccessRefused(self.refuse_access)
        self.acls.update(rules)

    def delete_acls(self, kafka: KafkaSettings, rules: Sequence[AccessRule]) -> int:
        self._check(kafka)
        gone = self.acls & set(rules)
        self.acls -= gone
        return len(gone)

    def set_scram_logins(
        self, kafka: KafkaSettings, passwords: Mapping[str, str], *, mechanism: str
    ) -> None:
        self._check(kafka)
        self.scram_logins.append(dict(passwords))


@dataclass
class RecordingEvents(Events):
    posted: list[tuple[str, str, str]] = field(default_factory=list)

    def post(self, ref: PipelineRef, type_: str, reason: str, message: str) -> None:
        self.posted.append((type_, reason, message))

    def reasons(self) -> list[str]:
        return [reason for _t, reason, _m in self.posted]


def _merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies the status patch: null removes a key, an object
    merges into the object it replaces, anything else replaces."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge_patch(out[key], value)
        else:
            out[key] = value
    return out


def _moved(obj: dict[str, Any]) -> None:
    """Every write gives the object a new resourceVersion, as the API server does."""
    meta = obj["metadata"]
    meta["resourceVersion"] = str(int(meta.get("resourceVersion", "0")) + 1)
