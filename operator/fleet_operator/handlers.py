"""kopf handlers: translate kopf's calls into the reconciler's, and its outcomes into kopf's.

Handlers are registered on an explicit registry built by :func:`build_registry` (nothing is
registered at import time). They are plain functions: kopf runs them in its thread pool, which
suits the blocking Kubernetes and Kafka clients underneath. The periodic reconcile is the
operator's own (ticker.py), not a kopf timer, which would put a finalizer on every pipeline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from fleet_operator.objects import COMPONENT_LABEL, MANAGER, PIPELINE_LABEL
from fleet_operator.ports import Backoff, InvalidSpec, PipelineRef
from fleet_operator.reconcile import Reconciler
from fleet_operator.render_migration import COMPONENT as MIGRATION
from fleet_operator.settings import OperatorSettings
from fleet_operator.spec import GROUP, PLURAL, VERSION, DeletionPolicy, KafkaAccess
from fleet_operator.ticker import Ticker

FINALIZER = f"{GROUP}/finalizer"

log = logging.getLogger(__name__)


def deletes_topics(spec: Mapping[str, Any], **_: Any) -> bool:
    """Whether deleting the pipeline has work to do: deletionPolicy Delete (its topics) or
    kafka.access Managed (the ACLs the operator applied).

    kopf adds its finalizer only to the objects a mandatory deletion handler matches, so a
    Retain pipeline (the default) carries none and goes at once, with or without an operator.
    """
    managed = (spec.get("kafka") or {}).get("access") == KafkaAccess.MANAGED.value
    return managed or bool(spec.get("deletionPolicy") == DeletionPolicy.DELETE.value)


def configure(settings: kopf.OperatorSettings) -> kopf.OperatorSettings:
    """kopf's own settings: our finalizer, state in annotations, Events for our decisions."""
    settings.persistence.finalizer = FINALIZER
    # Handler progress and the last-handled spec live in annotations, not in the status: the
    # status schema is structural and belongs to the pipeline's figures and conditions.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Our Events are posted by cluster.KubeEvents; kopf's own log lines (every handler run)
    # are not Events.
    settings.posting.enabled = False
    settings.posting.loggers = False
    settings.execution.max_workers = 8
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

    def tick(ref: PipelineRef) -> None:
        try:
            reconciler.reconcile(ref, measure_lag=True)
        except (Backoff, InvalidSpec) as exc:
            # Said in the status and an Event already; the next tick tries again.
            log.info("%s/%s: %s", ref.namespace, ref.name, exc)

    ticker = Ticker(tick, interval_s=settings.timer_interval_s)

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    def on_pipeline(body: kopf.Body, type: str | None, **_: Any) -> None:
        # The ticker's list of pipelines, from the watch kopf keeps anyway.
        ref = _ref(body)
        if type == "DELETED" or body["metadata"].get("deletionTimestamp"):
            ticker.forget(ref.uid)
        else:
            ticker.track(ref)
        spec = body.get("spec") or {}
        if type == "DELETED" and not deletes_topics(spec):
            # Retain: nothing to undo, so no finalizer held it; say what became of the topics
            # (the children go with their owner, by the garbage collector).
            reconciler.delete(ref, dict(spec))

    @kopf.on.startup(registry=registry)
    def start_ticker(**_: Any) -> None:
        ticker.start()

    @kopf.on.cleanup(registry=registry)
    async def finish(**_: Any) -> None:
        # SIGTERM: kopf has stopped watching and cancelled its handler tasks, but a reconcile
        # already running goes on in its thread. Wait for it, so that its status and Events
        # (posted by that thread, see cluster.KubeEvents) are all written before we exit.
        def wait() -> None:
            if not reconciler.drain(timeout_s=settings.shutdown_grace_s):
                log.warning("exiting with a reconcile still running")
            ticker.stop(timeout_s=1)

        await asyncio.to_thread(wait)

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, when=deletes_topics)
    def on_delete(body: kopf.Body, spec: kopf.Spec, retry: int, **_: Any) -> None:
        try:
            status = dict(body.get("status") or {})
            reconciler.delete(_ref(body), dict(spec), status=status, retry=retry)
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

    @kopf.on.event(
        "batch",
        "v1",
        "jobs",
        registry=registry,
        labels={
            "app.kubernetes.io/managed-by": MANAGER,
            PIPELINE_LABEL: kopf.PRESENT,
            COMPONENT_LABEL: MIGRATION,
        },
    )
    def on_migration_job(body: kopf.Body, **_: Any) -> None:
        # The schema's migration finished (or failed): Ready follows now, not at the timer.
        meta = body["metadata"]
        reconciler.refresh(str(meta["namespace"]), str(meta["labels"][PIPELINE_LABEL]))

    @kopf.on.probe(id="pipelines", registry=registry)
    def probe(**_: Any) -> str:
        return "ok"

    return registry
