"""HTTP/JSON ingest: ``POST /v1/fleets/{fleet}/telemetry``, beside gRPC in the ingest process.

For devices and integrations that can only do HTTP. The body is JSON telemetry (an array, one
event, ``{"events": [...]}``; or NDJSON with ``Content-Type: application/x-ndjson``, see
``jsonevents.py``) and the answer is the gRPC ack in JSON: ``accepted``, ``late`` and each
rejected event's ``index``, ``code``, ``field`` and ``reason``, sent once Kafka holds every
accepted event. Statuses: 401 for a missing or unknown bearer token, 403 when the token is for
another fleet or an event claims another fleet, 400/413 for a body that is not JSON telemetry or
is too large, 429 with ``Retry-After`` when too much awaits Kafka, 503 with ``Retry-After`` when
Kafka fails, does not confirm in time, or a topic is missing. Every refusal is
``{"detail": "..."}``. It shares the gRPC server's intake, so one budget of events awaiting
Kafka (``max_inflight_events``) holds for both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Annotated

import uvicorn
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from pydantic import BaseModel

from fleetpipe.ingest.auth import TokenStore, bearer_token
from fleetpipe.ingest.intake import Intake, Refusal, Refused
from fleetpipe.ingest.jsonevents import BodyError, parse_events
from fleetpipe.ingest.settings import HttpSettings
from fleetpipe.pb.v1 import ingest_pb2

_STATUS = {
    Refusal.UNAUTHENTICATED: 401,
    Refusal.FORBIDDEN: 403,
    Refusal.INVALID: 400,
    Refusal.BUSY: 429,
    Refusal.UNAVAILABLE: 503,
}


class RejectedEvent(BaseModel):
    index: int
    code: str
    field: str
    reason: str


class Ack(BaseModel):
    """What became of each event of the body, as the gRPC PublishAck says it."""

    accepted: int
    late: int
    rejected: list[RejectedEvent]


def ack_json(ack: ingest_pb2.PublishAck) -> Ack:
    return Ack(
        accepted=ack.accepted,
        late=ack.late,
        rejected=[
            RejectedEvent(
                index=r.index,
                code=ingest_pb2.RejectCode.Name(r.code),
                field=r.field,
                reason=r.reason,
            )
            for r in ack.rejected
        ],
    )


@contextlib.contextmanager
def _refusals(settings: HttpSettings) -> Iterator[None]:
    try:
        yield
    except Refused as r:
        headers = None
        if r.kind in (Refusal.BUSY, Refusal.UNAVAILABLE):
            headers = {"Retry-After": str(settings.retry_after_s)}
        elif r.kind is Refusal.UNAUTHENTICATED:
            headers = {"WWW-Authenticate": "Bearer"}
        raise HTTPException(_STATUS[r.kind], r.details, headers=headers) from None


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(settings: HttpSettings, intake: Intake, tokens: TokenStore) -> FastAPI:
    """The ASGI application; it only translates HTTP into the intake's calls."""
    app = FastAPI(title="FleetPipe ingest", version="v1", docs_url=None, redoc_url=None)
    calls = intake.metrics.calls

    def authorize(fleet: str, authorization: str | None) -> None:
        token = bearer_token([("authorization", authorization)] if authorization else None)
        if token is None:
            raise Refused(Refusal.UNAUTHENTICATED, "missing 'Authorization: Bearer <token>'")
        bound = tokens.fleet_for(token)
        if bound is None:
            raise Refused(Refusal.UNAUTHENTICATED, "unknown token")
        if bound != fleet:
            raise Refused(
                Refusal.FORBIDDEN, f"the token is for fleet {bound!r}, not {fleet[:64]!r}"
            )

    @app.post("/v1/fleets/{fleet}/telemetry", response_model=Ack)
    async def publish(
        fleet: str,
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        content_type: Annotated[str, Header()] = "application/json",
    ) -> Ack:
        try:
            with _refusals(settings):
                authorize(fleet, authorization)
                body = await _body(request, settings.max_body_bytes)
                ndjson = content_type.split(";")[0].strip().lower() in (
                    "application/x-ndjson",
                    "application/jsonl",
                )
                try:
                    parsed = parse_events(body, ndjson=ndjson)
                except BodyError as exc:
                    raise Refused(Refusal.INVALID, str(exc)) from None
                if parsed.total > intake.settings.max_batch_events:
                    raise Refused(
                        Refusal.INVALID,
                        f"{parsed.total} events (limit {intake.settings.max_batch_events})",
                    )
                pendings = [intake.accept(parsed.raw, fleet)] if parsed.positions else []
                pendings += [
                    intake.dead_letter(
                        payload,
                        key=None,
                        reason="invalid_event",
                        error=next(p.reason for p in parsed.problems if p.index == index),
                    )
                    for index, payload in parsed.payloads.items()
                ]
                acks = await asyncio.gather(*(intake.acknowledge(p) for p in pendings))
        except HTTPException as exc:
            calls.labels(f"HTTP_{exc.status_code}").inc()
            raise
        batch_ack = acks[0] if parsed.positions else ingest_pb2.PublishAck()
        return ack_json(parsed.ack(batch_ack))

    @app.exception_handler(json_format.ParseError)
    async def _unparsable(request: Request, exc: json_format.ParseError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    return app


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside ingest's own event loop: the process's signal handlers stay ingest's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpIngest:
    """The HTTP listener, run as a task of ingest's event loop."""

    def __init__(self, settings: HttpSettings, app: FastAPI) -> None:
        assert settings.port is not None
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
        )
        self.server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Listen; returns the bound port."""
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start
                raise OSError("HTTP ingest stopped at start")
            await asyncio.sleep(0.05)
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task
