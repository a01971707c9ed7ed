"""The console's HTTP API: read-only answers of the shared query layer, scoped to a token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from psycopg_pool import AsyncConnectionPool
from sse_starlette.sse import EventSourceResponse

from fleetpipe.console.auth import Tokens, bearer
from fleetpipe.console.stream import Hub
from fleetpipe.query import execute, formats, statements
from fleetpipe.query.errors import BadQuery
from fleetpipe.query.scope import BBox, Scope
from fleetpipe.query.statements import Statement, Status
from fleetpipe.query.window import Window, resolve

Fmt = Literal["json", "geojson", "csv"]
# What the page loads 100K vehicles with: four columns as arrays, no repeated keys.
COMPACT_COLUMNS = ("vehicle_id", "lat", "lon", "status")
ListFmt = Literal["json", "csv"]


def bad(field: str, message: str) -> RequestValidationError:
    """A 422 naming the query parameter, shaped like FastAPI's own validation errors."""
    return RequestValidationError(
        [{"loc": ("query", field), "msg": message, "type": "value_error", "input": None}]
    )


class Deps:
    """What the routes need, held by the app (no module-level state)."""

    def __init__(self, pool: AsyncConnectionPool[Any], tokens: Tokens, hub: Hub) -> None:
        self.pool = pool
        self.tokens = tokens
        self.hub = hub


def _deps(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


def caller(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    access_token: Annotated[str | None, Query(include_in_schema=False)] = None,
    fleet: Annotated[list[str] | None, Query(description="only these fleets")] = None,
) -> Scope:
    """The caller's scope, narrowed to the fleets it asked for (a fleet outside it: 403)."""
    return _deps(request).tokens.scope(bearer(authorization, access_token)).narrow(fleet)


Caller = Annotated[Scope, Depends(caller)]
Hours = Annotated[float | None, Query(gt=0, description="look back this many hours")]
Since = Annotated[datetime | None, Query(description="from this time (ISO 8601)")]
Until = Annotated[datetime | None, Query(description="up to this time (default: now)")]
Limit = Annotated[int, Query(ge=1, le=statements.MAX_LIMIT)]


def _window(
    hours: float | None, since: datetime | None, until: datetime | None, default: float | None
) -> Window:
    try:
        return resolve(hours=hours, since=since, until=until, default_hours=default)
    except BadQuery as exc:
        raise bad(exc.field, exc.reason) from exc


def windowed(default: float | None) -> Any:
    """The window a route reads (?hours, or ?since and ?until), ``default`` hours back from now
    when none is given (None: all time), as a dependency."""

    def window(hours: Hours = None, since: Since = None, until: Until = None) -> Window:
        return _window(hours, since, until, default)

    return Depends(window)


async def _rows(deps: Deps, build: Callable[[], Statement]) -> execute.Result:
    try:
        statement = build()
    except BadQuery as exc:
        raise bad(exc.field, exc.reason) from exc
    async with deps.pool.connection() as conn:
        return await execute.afetch(conn, statement)


def _answer(result: execute.Result, fmt: str) -> Response:
    if fmt == "csv":
        return Response(formats.to_csv(result.columns, result.rows), media_type="text/csv")
    if fmt == "geojson":
        body = formats.to_geojson(result.rows, result.geometry)
        return Response(json.dumps(body), media_type="application/geo+json")
    return JSONResponse(formats.records(result.rows))


router = APIRouter(prefix="/api/v1")


@router.get("/vehicles", summary="Vehicles with their latest position and status")
async def vehicles(
    request: Request,
    scope: Caller,
    window: Annotated[Window, windowed(None)],
    status: Annotated[list[Status] | None, Query()] = None,
    bbox: Annotated[str | None, Query(description="west,south,east,north")] = None,
    limit: Limit = statements.MAX_LIMIT,
    format: Literal["json", "geojson", "csv", "compact"] = "json",
) -> Response:
    try:
        box = BBox.parse(bbox) if bbox else None
    except BadQuery as exc:
        raise bad(exc.field, exc.reason) from exc
    result = await _rows(
        _deps(request),
        lambda: statements.latest(window, scope, statuses=status or (), bbox=box, limit=limit),
    )
    if format == "compact":
        rows = [[r[c] for c in COMPACT_COLUMNS] for r in result.rows]
        return Response(
            json.dumps({"columns": COMPACT_COLUMNS, "rows": rows}), media_type="application/json"
        )
    return _answer(result, format)


@router.get("/vehicles/{vehicle_id}/trace", summary="One vehicle's trace (default: last hour)")
async def trace(
    request: Request,
    scope: Caller,
    vehicle_id: Annotated[str, Path(min_length=1, max_length=200)],
    window: Annotated[Window, windowed(1.0)],
    limit: Limit = 3600,
    format: Fmt = "json",
) -> Response:
    result = await _rows(
        _deps(request), lambda: statements.trace(vehicle_id, window, scope, limit=limit)
    )
    return _answer(result, format)


@router.get("/alerts", summary="Alert episodes: open now, or the history with filters")
async def alerts(
    request: Request,
    scope: Caller,
    open: bool = False,
    rule: str | None = None,
    severity: Literal["info", "warning", "critical"] | None = None,
    vehicle: str | None = None,
    hours: Hours = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 500,
    format: Fmt = "json",
) -> Response:
    window = _window(hours, since, until, None if open else 24.0)
    result = await _rows(
        _deps(request),
        lambda: statements.alerts(
            window,
            scope,
            open_only=open,
            rule=rule,
            severity=severity,
            vehicle=vehicle,
            limit=limit,
        ),
    )
    return _answer(result, format)


@router.get("/alerts/{alert_id}", summary="One alert explained")
async def alert(
    request: Request,
    scope: Caller,
    alert_id: Annotated[str, Path(min_length=1, max_length=500)],
    hours: Hours = None,
    since: Since = None,
    until: Until = None,
) -> Response:
    asked = hours is not None or since is not None or until is not None
    window = _window(hours, since, until, 24.0) if asked else None
    async with _deps(request).pool.connection() as conn:
        found = await execute.aexplain(conn, alert_id, scope, window)
    return JSONResponse(formats.plain(found))


def _windowed(
    path: str, query: Callable[..., Statement], summary: str, *, default: float | None = 24.0
) -> None:
    async def endpoint(
        request: Request,
        scope: Caller,
        window: Annotated[Window, windowed(default)],
        limit: Limit = 1000,
        format: ListFmt = "json",
    ) -> Response:
        result = await _rows(_deps(request), lambda: query(window, scope, limit=limit))
        return _answer(result, format)

    # The annotation names this call's ``default``: FastAPI evaluates string annotations in the
    # module's globals, so the window's is given as an object.
    endpoint.__annotations__["window"] = Annotated[Window, windowed(default)]
    endpoint.__name__ = path.strip("/").replace("-", "_")
    router.get(path, summary=summary)(endpoint)


_windowed("/trips", statements.trips, "Trips per vehicle (default: last 24 h)")
_windowed("/scorecards", statements.scorecards, "Driver scorecards, worst first")
_windowed("/utilisation", statements.utilisation, "Fleet utilisation", default=None)
_windowed("/kpis", statements.kpis, "Fleet KPIs")
_windowed("/self-driving", statements.self_driving, "Self-driving metrics")
_windowed("/alerts-per-hour", statements.alerts_per_hour, "Alerts per hour by rule")
_windowed("/deadletters", statements.dead_letters, "Dead letters by reason (all-fleet tokens)")
_windowed("/notifications", statements.notifications, "Notification outcomes")


@router.get("/stream", summary="Live alerts and positions (Server-Sent Events)")
async def stream(request: Request, scope: Caller) -> EventSourceResponse:
    hub = _deps(request).hub
    ident, queue = hub.listen(scope)

    async def events() -> AsyncIterator[dict[str, str]]:
        try:
            yield {"event": "hello", "data": json.dumps({"fleets": scope.param()})}
            while True:
                event = await queue.get()
                yield {"event": event.kind, "data": json.dumps(formats.plain(event.data))}
        finally:
            hub.leave(ident)

    return EventSourceResponse(events(), ping=15)


async def ready(pool: AsyncConnectionPool[Any]) -> bool:
    try:
        async with asyncio.timeout(2.0), pool.connection() as conn:
            await conn.execute("SELECT 1 FROM vehicle_latest LIMIT 1")
        return True
    except (psycopg.Error, OSError, TimeoutError):
        return False
