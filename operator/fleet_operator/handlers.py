"""kopf handlers: translate kopf's calls into the reconciler's, and its outcomes into kopf's.

Handlers are registered on an explicit registry built by :func:`build_registry` (nothing is
registered at import time). They are plain functions: kopf runs them in its thread pool, which
suits the blocking Kubernetes and Kafka clients underneath.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import kopf

from fleet_operator.ports import Backoff, InvalidSpec, PipelineRef
from fleet_operator.reconcile import Reconciler
from fleet_operator.render import MANAGER, PIPELINE_LABEL
from fleet_operator.settings import OperatorSettings
from fleet_operator.spec import GROUP, PLURAL, VERSION

FINALIZER = f"{GROUP}/finalizer"


class KopfEvents:
    """Kubernetes Events through kopf's poster (batched, thread-safe, never blocking)."""

    def post(self, ref: PipelineRef, type_: str, reason: str, message: str) -> None:
        body = kopf.Body(cast(kopf.RawBody, ref.body()))
        kopf.event(body, type=type_, reason=reason, message=message)


def configure(settings: kopf.OperatorSettings) -> kopf.OperatorSettings:
    """kopf's own settings: our finalizer, state in annotations, Events for our decisions."""
    settings.persistence.finalizer = FINALIZER
    # Handler progress and the last-handled spec live in annotations, not in the status: the
    # status schema is structural and belongs to the pipeline's figures and conditions.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.enabled = True
    settings.posting.reporting_component = MANAGER
    # Only explicit decisions become Events; kopf's own log lines (every handler run) do not.
    settings.posting.loggers = False
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = 8
    # A timer between ticks exits at once when its pipeline is deleted; without these, kopf
    # re-checks it only every 60 s and the finalizer (hence `kubectl delete`) waits that long.
    settings.background.instant_exit_timeout = 0.5
    settings.background.cancellation_polling = 2
    # kopf's retries of the Kubernetes API itself; our handlers set their own backoff.
    settings.networking.error_backoffs = [1, 2, 5, 10, 20, 30]
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    return settings


def _ref(body: kopf.Body) -> PipelineRef:
    meta = body["metadata"]
    return PipelineRef(str(meta["namespace"]), str(meta["name"]), str(meta["uid"]))


def build_registry(reconciler: Reconciler, settings: OperatorSettings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same sources as the reconciler's client: ServiceAccount, else $KUBECONFIG.
        return kopf.login_via_client(**kwargs)

    def reconcile(*, body: kopf.Body, retry: int, measure_lag: bool) -> None:
        try:
            reconciler.reconcile(_ref(body), measure_lag=measure_lag, retry=retry)
        except Backoff as exc:
            raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc
        except InvalidSpec as exc:
            raise kopf.PermanentError(str(exc)) from exc

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    def on_change(body: kopf.Body, retry: int, **_: Any) -> None:
        reconcile(body=body, retry=retry, measure_lag=False)

    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        registry=registry,
        interval=settings.timer_interval_s,
        initial_delay=settings.timer_interval_s,
        # A timer run that overlaps the next tick is skipped rather than queued.
        sharp=False,
    )
    def on_timer(body: kopf.Body, **kwargs: Any) -> None:
        reconcile(body=body, retry=int(kwargs.get("retry") or 0), measure_lag=True)

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
    def on_delete(body: kopf.Body, spec: kopf.Spec, retry: int, **_: Any) -> None:
        try:
            reconciler.delete(_ref(body), dict(spec), retry=retry)
        except Backoff as exc:
            raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc

    @kopf.on.event(
        "apps",
        "v1",
        "deployments",
        registry=registry,
        labels={"app.kubernetes.io/managed-by": MANAGER, PIPELINE_LABEL: kopf.PRESENT},
    )
    def on_deployment(body: kopf.Body, type: str | None, **_: Any) -> None:
        # A child moved (rolled out, scaled, deleted): re-check the owner's readiness now
        # instead of waiting for the timer.
        meta = body["metadata"]
        reconciler.refresh(str(meta["namespace"]), str(meta["labels"][PIPELINE_LABEL]))

    @kopf.on.probe(id="pipelines", registry=registry)
    def probe(**_: Any) -> str:
        return "ok"

    return registry
