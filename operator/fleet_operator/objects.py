"""The pieces every child manifest is built from: the owner, names, labels, metadata, env
entries and the restricted security contexts. Pure; render.py and the render_* modules use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fleet_operator.spec import API_VERSION, KIND, Component

Manifest = dict[str, Any]

MANAGER = "fleetpipe-operator"
PIPELINE_LABEL = "fleetpipe.io/pipeline"
COMPONENT_LABEL = "app.kubernetes.io/component"
# The image's unprivileged user and group (the Containerfile makes them).
RUN_AS = 10001


@dataclass(frozen=True, slots=True)
class Owner:
    """The FleetPipeline the children belong to."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> Manifest:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def child_name(owner: Owner, component: Component | str) -> str:
    value = component.value if isinstance(component, Component) else component
    return f"{owner.name}-{value}"


def selector_labels(owner: Owner, component: Component) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "fleetpipe",
        "app.kubernetes.io/instance": owner.name,
        COMPONENT_LABEL: component.value,
    }


def labels(owner: Owner, component: Component | str) -> dict[str, str]:
    value = component.value if isinstance(component, Component) else component
    return {
        "app.kubernetes.io/name": "fleetpipe",
        "app.kubernetes.io/instance": owner.name,
        COMPONENT_LABEL: value,
        "app.kubernetes.io/part-of": "fleetpipe",
        "app.kubernetes.io/managed-by": MANAGER,
        PIPELINE_LABEL: owner.name,
    }


def child_metadata(owner: Owner, name: str, component: Component | str) -> Manifest:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner, component),
        "ownerReferences": [owner.reference()],
    }


def env_value(name: str, value: object) -> Manifest:
    return {"name": name, "value": str(value)}


def env_secret(name: str, secret: str, key: str, *, optional: bool = False) -> Manifest:
    """An env entry read from a Secret's key: secrets only ever appear as references."""
    ref: Manifest = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def pod_security(*, fs_group: bool = True) -> Manifest:
    """The pod's restricted context: the image's user, never root, the runtime's seccomp
    profile; ``fs_group`` makes the pod's volumes writable by that user's group."""
    context: Manifest = {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS}
    if fs_group:
        context["fsGroup"] = RUN_AS
    context["seccompProfile"] = {"type": "RuntimeDefault"}
    return context


def container_security() -> Manifest:
    """The container's restricted context: no privilege escalation, read-only root, no
    capabilities (writable places are volumes)."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
