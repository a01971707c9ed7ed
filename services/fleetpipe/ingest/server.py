"""The grpc.aio servicer of ``fleetpipe.v1.TelemetryIngest``, with health and reflection.

Per call: authenticate the bearer token (UNAUTHENTICATED), then hand each batch to the
:class:`~fleetpipe.ingest.intake.Intake` (validation, Kafka, the ack) and say its refusals as
gRPC statuses: another fleet's event PERMISSION_DENIED, a batch that does not parse or is too
large INVALID_ARGUMENT, too much awaiting Kafka RESOURCE_EXHAUSTED, Kafka failing or not
answering in ``ack_timeout_s`` UNAVAILABLE (a retry is safe: downstream de-duplicates by
vehicle and seq).

A Stream is read and produced in order and acknowledged in order; up to ``stream_window`` of its
batches may await Kafka at once, after which the server stops reading the stream (HTTP/2 flow
control pushes back on the client).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import _async as health_aio  # what health.aio names, typed
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from fleetpipe.ingest.auth import TokenStore, bearer_token
from fleetpipe.ingest.intake import Intake, Pending, Refusal, Refused
from fleetpipe.ingest.settings import IngestSettings
from fleetpipe.pb.v1 import ingest_pb2

# Requests arrive as bytes: ingest parses them itself and forwards each event's own bytes.
_Context = grpc.aio.ServicerContext[bytes, ingest_pb2.PublishAck]

SERVICE_NAME = ingest_pb2.DESCRIPTOR.services_by_name["TelemetryIngest"].full_name

_STATUS = {
    Refusal.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Refusal.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    Refusal.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    Refusal.BUSY: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Refusal.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}


class _Refusal(Exception):
    """Answer the call with this status instead of an ack."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details

    @classmethod
    def of(cls, refused: Refused) -> _Refusal:
        return cls(_STATUS[refused.kind], refused.details)


class IngestServicer:
    def __init__(self, settings: IngestSettings, intake: Intake, tokens: TokenStore) -> None:
        self.settings = settings
        self.intake = intake
        self.tokens = tokens
        self.metrics = intake.metrics

    # --- RPCs ---------------------------------------------------------------------------------

    def handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        """The service's methods, taking the request bytes as they came off the wire."""
        ack = ingest_pb2.PublishAck.SerializeToString
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Publish": grpc.unary_unary_rpc_method_handler(
                    self.Publish, request_deserializer=None, response_serializer=ack
                ),
                "Stream": grpc.stream_stream_rpc_method_handler(
                    self.Stream, request_deserializer=None, response_serializer=ack
                ),
            },
        )

    async def Publish(self, request: bytes, context: _Context) -> ingest_pb2.PublishAck:
        try:
            fleet = self._authenticate(context)
            pending = self._accept(request, fleet)
            return await self._acknowledge(pending)
        except _Refusal as r:
            self.metrics.calls.labels(r.code.name).inc()
            await context.abort(r.code, r.details)
            raise AssertionError("unreachable") from None  # abort raises

    async def Stream(
        self,
        request_iterator: AsyncIterator[bytes],
        context: _Context,
    ) -> None:
        try:
            fleet = self._authenticate(context)
        except _Refusal as r:
            self.metrics.calls.labels(r.code.name).inc()
            await context.abort(r.code, r.details)
            return
        window: asyncio.Queue[Pending | _Refusal | None] = asyncio.Queue(
            self.settings.stream_window
        )

        async def read() -> None:
            try:
                async for batch in request_iterator:
                    # Blocks while the window is full: the stream is not read until acks go out.
                    await window.put(self._accept(batch, fleet))
            except _Refusal as r:
                # Acknowledge what came before the refused batch, then end the stream.
                await window.put(r)
                return
            await window.put(None)

        async def write() -> None:
            while (item := await window.get()) is not None:
                if isinstance(item, _Refusal):
                    raise item
                await context.write(await self._acknowledge(item))

        reader, writer = asyncio.create_task(read()), asyncio.create_task(write())
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # raises the first failure
            await writer
        except _Refusal as r:
            self.metrics.calls.labels(r.code.name).inc()
            await context.abort(r.code, r.details)
        finally:
            for task in (reader, writer):
                task.cancel()
            while not window.empty():
                left = window.get_nowait()
                if isinstance(left, Pending):
                    left.delivery.abandon()

    # --- the work -----------------------------------------------------------------------------

    def _authenticate(self, context: _Context) -> str:
        token = bearer_token(context.invocation_metadata())
        if token is None:
            raise _Refusal(
                grpc.StatusCode.UNAUTHENTICATED, "missing 'authorization: Bearer <token>'"
            )
        fleet = self.tokens.fleet_for(token)
        if fleet is None:
            raise _Refusal(grpc.StatusCode.UNAUTHENTICATED, "unknown token")
        return fleet

    def _accept(self, raw: bytes, fleet: str) -> Pending:
        try:
            return self.intake.accept(raw, fleet)
        except Refused as r:
            raise _Refusal.of(r) from None

    async def _acknowledge(self, pending: Pending) -> ingest_pb2.PublishAck:
        try:
            return await self.intake.acknowledge(pending)
        except Refused as r:
            raise _Refusal.of(r) from None


class HealthService:
    """grpc.health.v1 for the whole server ("") and for TelemetryIngest."""

    def __init__(self) -> None:
        self.servicer = health_aio.HealthServicer()

    async def set(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await self.servicer.set(name, status)


def build_server(
    settings: IngestSettings, servicer: IngestServicer, health_service: HealthService
) -> tuple[grpc.aio.Server, int]:
    """The server with every service registered and its port bound; returns the bound port."""
    limit = settings.max_message_bytes
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            ("grpc.so_reuseport", 0),
            # Keep idle device connections open through NATs and load balancers.
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ]
    )
    server.add_generic_rpc_handlers((servicer.handler(),))
    health_pb2_grpc.add_HealthServicer_to_server(health_service.servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    tls = settings.tls
    if tls.enabled:
        assert tls.cert_file is not None and tls.key_file is not None
        credentials = grpc.ssl_server_credentials(
            [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())],
            root_certificates=tls.client_ca_file.read_bytes() if tls.client_ca_file else None,
            require_client_auth=tls.client_ca_file is not None,
        )
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind gRPC to {address}")
    return server, port
