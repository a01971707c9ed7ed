"""``fleetpipe-operator-uninstall``: the chart's pre-delete hook, run by ``helm uninstall``.

A FleetPipeline with ``deletionPolicy: Delete`` carries the operator's finalizer: only the
operator deletes its topics and lets it go. ``helm uninstall`` removes the operator together
with the release's FleetPipeline, so without this hook the pipeline would stay Terminating for
ever and its Deployments and ConfigMaps with it. The hook runs before Helm deletes anything,
while the operator still runs: it deletes the release's FleetPipelines with foreground
propagation (the garbage collector removes their children first) and waits until they are gone.

A pipeline still there at the deadline fails the hook, and so ``helm uninstall``, with what
holds it; nothing is forced, a finalizer is never removed by hand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleet_operator.spec import GROUP, PLURAL, VERSION
from fleetpipe.core.logs import configure_logging

log = logging.getLogger(__name__)


class UninstallSettings(BaseSettings):
    """``FLEET_UNINSTALL_*``, set by the chart's hook Job."""

    # Defaults validated too: an unset namespace or list fails with the setting's name.
    model_config = SettingsConfigDict(
        env_prefix="FLEET_UNINSTALL_", frozen=True, extra="ignore", validate_default=True
    )

    namespace: str = Field(default="", min_length=1)
    # The release's FleetPipelines (a JSON list of names).
    pipelines: list[str] = Field(default_factory=list, min_length=1)
    # Below the hook's activeDeadlineSeconds and helm's --timeout (5 minutes by default).
    timeout_s: float = Field(default=240.0, gt=0, le=3600)
    interval_s: float = Field(default=2.0, gt=0, le=60)


class PipelinesStuck(RuntimeError):
    """FleetPipelines still there at the deadline; the message names what holds each."""


@dataclass(frozen=True, slots=True)
class Remaining:
    name: str
    finalizers: tuple[str, ...]
    terminating: bool

    def describe(self) -> str:
        if not self.terminating:
            return f"{self.name}: not being deleted"
        held = ", ".join(self.finalizers) or "its children (foreground deletion)"
        return f"{self.name}: held by {held}"


class PipelineApi(Protocol):
    def delete(self, namespace: str, name: str) -> bool:
        """Ask for a foreground deletion; False when there is no such pipeline."""
        ...

    def get(self, namespace: str, name: str) -> dict[str, Any] | None: ...


class KubePipelines:
    """FleetPipelines through the Kubernetes API."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self._api = client.CustomObjectsApi(api_client)

    @classmethod
    def connect(cls, *, kubeconfig: str | None = None) -> KubePipelines:
        """In a pod: its ServiceAccount; elsewhere (or given one): a kubeconfig file."""
        from kubernetes import client, config

        if kubeconfig is None:
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
                return cls(client.ApiClient())
            except config.ConfigException:
                pass
        return cls(config.new_client_from_config(config_file=kubeconfig))  # type: ignore[no-untyped-call]

    def delete(self, namespace: str, name: str) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            self._api.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, propagation_policy="Foreground"
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            found = self._api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found if isinstance(found, dict) else None


def remove_pipelines(
    api: PipelineApi,
    namespace: str,
    names: Sequence[str],
    *,
    timeout_s: float,
    interval_s: float,
    say: Callable[[str], None] = log.info,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Delete the pipelines and wait until they are gone; the seconds it took."""
    start = clock()
    for name in names:
        asked = api.delete(namespace, name)
        say(f"{namespace}/{name}: {'deleting' if asked else 'not there'}")
    said: list[Remaining] = []
    while True:
        remaining = [r for r in (_remaining(api, namespace, n) for n in names) if r is not None]
        elapsed = clock() - start
        if not remaining:
            say(f"every FleetPipeline of the release gone after {elapsed:.1f} s")
            return elapsed
        if elapsed >= timeout_s:
            raise PipelinesStuck(
                f"still there after {timeout_s:g} s in {namespace}: "
                + "; ".join(r.describe() for r in remaining)
                + ". Is the operator running? Its Events: kubectl get events -n "
                + namespace
            )
        if remaining != said:
            say(f"waiting ({elapsed:.0f} s): " + "; ".join(r.describe() for r in remaining))
            said = remaining
        sleep(interval_s)


def _remaining(api: PipelineApi, namespace: str, name: str) -> Remaining | None:
    obj = api.get(namespace, name)
    if obj is None:
        return None
    meta = obj.get("metadata") or {}
    return Remaining(
        name,
        tuple(str(f) for f in meta.get("finalizers") or ()),
        bool(meta.get("deletionTimestamp")),
    )


def main() -> None:
    settings = UninstallSettings()
    configure_logging(service="operator-uninstall", level="INFO", fmt="text")
    try:
        remove_pipelines(
            KubePipelines.connect(),
            settings.namespace,
            settings.pipelines,
            timeout_s=settings.timeout_s,
            interval_s=settings.interval_s,
        )
    except PipelinesStuck as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
