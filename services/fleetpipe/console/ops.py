"""The operations view's API: an alert's traces and the pipeline's health.

``GET /api/v1/alerts/{id}/trace`` answers the alert's traces from Jaeger's query API, as
waterfalls, for any token that may see the alert. ``GET /api/v1/health`` answers the services'
rates, times, lag, dead letters and Twilio outcomes, and their history for the charts; the
pipeline is shared by every fleet, so only an all-fleets token reads it. The health is sampled
in the background every ``health.interval_s`` while the console runs, so the charts have a
history and every reader sees the same figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from fleetpipe.console.api import Caller, Deps
from fleetpipe.console.health import HealthHistory
from fleetpipe.console.jaeger import JaegerQuery, TraceStoreUnavailable
from fleetpipe.console.scrape import Endpoints, MetricsSource, Prometheus
from fleetpipe.console.settings import ConsoleSettings
from fleetpipe.query import execute
from fleetpipe.query import explain as explaining
from fleetpipe.query.errors import Forbidden, NotFound

log = logging.getLogger(__name__)

# How far around an alert's episode its traces are looked for: detection's span is stamped
# when the transition is decided, a little after the episode's own times.
AROUND = timedelta(minutes=10)


def metrics_source(settings: ConsoleSettings) -> MetricsSource | None:
    h = settings.health
    if h.prometheus_url:
        return Prometheus(
            h.prometheus_url,
            service_label=h.service_label,
            services=h.services,
            timeout_s=h.timeout_s,
        )
    if h.targets:
        return Endpoints(h.targets, timeout_s=h.timeout_s)
    return None


class Ops:
    """What the operations routes need, held by the app."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.jaeger = JaegerQuery(settings.traces)
        self.source = metrics_source(settings)
        self.history = HealthHistory(
            window_s=settings.health.window_s, points=settings.health.history
        )
        self._task: asyncio.Task[None] | None = None

    async def sample_once(self) -> None:
        if self.source is not None:
            self.history.add(await self.source.read())

    async def _sample_forever(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.sample_once()
            except Exception:
                # A read that fails in a way the source did not foresee must not end sampling.
                log.exception("reading the services' metrics failed")
            spent = time.monotonic() - started
            await asyncio.sleep(max(0.05, self.settings.health.interval_s - spent))

    def start(self) -> None:
        if self.source is not None and self._task is None:
            self._task = asyncio.create_task(self._sample_forever(), name="health-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _ops(request: Request) -> Ops:
    ops: Ops = request.app.state.ops
    return ops


def _store(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


router = APIRouter(prefix="/api/v1")


@router.get("/alerts/{alert_id}/trace", summary="An alert's traces, as waterfalls (from Jaeger)")
async def alert_trace(
    request: Request,
    scope: Caller,
    alert_id: Annotated[str, Path(min_length=1, max_length=500)],
) -> Any:
    async with _store(request).pool.connection() as conn:
        found = (await execute.afetch(conn, explaining.alert_statement(alert_id, scope))).rows
    if not found:
        raise NotFound(f"alert {alert_id} is not known")
    alert = found[0]
    ops = _ops(request)
    start = alert["episode_start"] - AROUND
    end = (alert["episode_end"] or datetime.now(UTC)) + AROUND
    try:
        traces = await ops.jaeger.alert_traces(alert_id, around_us=(_micros(start), _micros(end)))
    except TraceStoreUnavailable as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503)
    return {
        "alert_id": alert_id,
        "rule": alert["rule"],
        "vehicle_id": alert["vehicle_id"],
        "ui_url": ops.settings.traces.ui_url or None,
        "traces": [t.as_dict() for t in traces],
    }


@router.get("/health", summary="The pipeline's health: rates, times, lag, dead letters")
async def health(request: Request, scope: Caller) -> Any:
    if not scope.unrestricted:
        raise Forbidden(
            "the pipeline serves every fleet: only an all-fleets token reads its health"
        )
    ops = _ops(request)
    if ops.source is None:
        return JSONResponse(
            {
                "detail": "no metrics source is configured "
                "(FLEET_HEALTH__TARGETS or FLEET_HEALTH__PROMETHEUS_URL)"
            },
            status_code=503,
        )
    source = "prometheus" if ops.settings.health.prometheus_url else "metrics endpoints"
    return {
        "source": source,
        "interval_s": ops.settings.health.interval_s,
        **ops.history.as_dict(),
    }
