"""The console's ASGI app: the API, the live stream's readers, probes, metrics and the page."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import psycopg
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from opentelemetry.trace import SpanKind
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from psycopg_pool import AsyncConnectionPool
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from fleetpipe.console import api, erasure, ops
from fleetpipe.console.auth import Tokens, Unauthorized
from fleetpipe.console.settings import ConsoleSettings
from fleetpipe.console.stream import Hub, Positions, TopicTail, alert_event
from fleetpipe.core.metrics import Instruments
from fleetpipe.core.tracing import Tracing
from fleetpipe.pb.v1 import alert_pb2
from fleetpipe.query.errors import Forbidden, NotFound

log = logging.getLogger(__name__)


class ConsoleMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        m = Instruments(registry, "fleetpipe_console")
        self.requests = m.counter("requests", "HTTP requests answered", ["route", "status"])
        self.seconds = Histogram(
            "fleetpipe_console_request_seconds",
            "Time to answer an HTTP request",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )


def _conninfo(settings: ConsoleSettings) -> tuple[str, dict[str, Any]]:
    pg = settings.postgres
    return pg.dsn.get_secret_value(), {
        "application_name": "fleetpipe-console",
        "connect_timeout": pg.connect_timeout_s,
        "options": f"-c search_path={pg.schema_name},public -c default_transaction_read_only=on",
        "autocommit": True,
    }


def create_app(
    settings: ConsoleSettings,
    *,
    tracing: Tracing | None = None,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    tracer = tracing or Tracing.disabled()
    registry = registry or CollectorRegistry()
    metrics = ConsoleMetrics(registry)
    tokens = Tokens(settings.token_fleets())
    hub = Hub()
    operations = ops.Ops(settings)
    dsn, kwargs = _conninfo(settings)
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, kwargs=kwargs, min_size=settings.pool_min, max_size=settings.pool_max, open=False
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # wait=False: the console starts (and says it is not ready) while PostgreSQL starts.
        await pool.open(wait=False)
        for tail in tails:
            tail.start()
        operations.start()
        try:
            yield
        finally:
            await operations.stop()
            for tail in tails:
                tail.stop()
            await pool.close()

    app = FastAPI(
        title="FleetPipe console",
        version="1",
        description="API over the hot store (read-only, but for erasure when enabled); bearer "
        "tokens scoped to fleets.",
        lifespan=lifespan,
        # FastAPI's /docs and /redoc pages load their scripts from a CDN: only the document.
        docs_url=None,
        redoc_url=None,
    )
    app.state.deps = api.Deps(pool, tokens, hub)
    app.state.ops = operations
    tails = _tails(settings, hub)
    app.include_router(api.router)
    app.include_router(ops.router)
    app.state.eraser = (
        erasure.Eraser(settings.erasure, settings.postgres) if settings.erasure.enabled else None
    )
    app.include_router(erasure.router)

    @app.exception_handler(Unauthorized)
    async def unauthorized(_: Request, exc: Unauthorized) -> Response:
        return JSONResponse(
            {"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, exc: Forbidden) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(psycopg.Error)
    async def store_down(_: Request, exc: psycopg.Error) -> Response:
        log.warning("the hot store did not answer: %s", exc)
        return JSONResponse({"detail": "the hot store is unavailable"}, status_code=503)

    class Observe(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            started = time.perf_counter()
            span = tracer.start_root(
                f"{request.method} {request.url.path}",
                kind=SpanKind.SERVER,
                attributes={"http.request.method": request.method, "url.path": request.url.path},
            )
            try:
                response = await call_next(request)
            except Exception as exc:
                if span is not None:
                    span.fail(exc)
                    span.end()
                raise
            route = request.scope.get("route")
            name = getattr(route, "path", "unmatched")
            metrics.requests.labels(name, str(response.status_code)).inc()
            metrics.seconds.labels(name).observe(time.perf_counter() - started)
            if span is not None:
                span.set("http.route", name)
                span.set("http.response.status_code", response.status_code)
                span.end()
            return response

    app.add_middleware(Observe)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        # Ready once the store answers and the live stream reads from the end of its topics.
        if await api.ready(pool) and all(t.ready.is_set() for t in tails):
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "the hot store is not reachable"}, status_code=503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/config.json", include_in_schema=False)
    async def page_config() -> dict[str, Any]:
        # What the page needs to know of the operations view: whether traces and health are
        # there to show (their addresses stay the console's own).
        return {
            **settings.map.model_dump(),
            "traces": bool(settings.traces.query_url),
            "health": settings.health.configured,
        }

    static = resources.files("fleetpipe.console") / "static"
    app.mount("/", StaticFiles(directory=str(static), html=True), name="page")
    return app


def _tails(settings: ConsoleSettings, hub: Hub) -> list[TopicTail]:
    client = f"fleetpipe-console-{settings.instance_id}"
    tails = [
        TopicTail(
            settings.kafka,
            settings.topics.alerts,
            lambda value: hub.publish(alert_event(alert_pb2.Alert.FromString(value))),
            client_id=f"{client}-alerts",
        )
    ]
    if settings.stream_positions:
        positions = Positions(hub, period_s=settings.positions_period_s)
        tails.append(
            TopicTail(
                settings.kafka,
                settings.topics.enriched,
                positions.take,
                client_id=f"{client}-positions",
                on_idle=positions.flush,
            )
        )
    return tails
