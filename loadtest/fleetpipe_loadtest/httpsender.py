"""Sending a simulated fleet over HTTP/JSON: ``POST /v1/fleets/{fleet}/telemetry``.

Each stream posts its batches one after another, as JSON arrays of events (protobuf's JSON
mapping, the field names as in the .proto), and counts the per-event answer. A 429 or 503
(backpressure, Kafka unavailable) or a dropped connection is retried after ``Retry-After`` or a
backoff, the same batch again, so a vehicle's events stay in order and nothing is lost; ingest
may then hold some twice, which downstream absorbs by (vehicle, seq). A 401 or 403 ends the run.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import grpc
from google.protobuf import json_format

from fleetpipe.pb.v1 import ingest_pb2
from fleetpipe_loadtest.sender import SenderError, SendStats

_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_LATENCY_SAMPLE = 200_000
# What a status the sender cannot retry ends the run with, in the gRPC sender's terms.
_REFUSALS = {401: grpc.StatusCode.UNAUTHENTICATED, 403: grpc.StatusCode.PERMISSION_DENIED}


def json_body(body: bytes) -> bytes:
    """An encoded batch body (``TelemetryBatch.events`` entries) as a JSON array of events."""
    events = ingest_pb2.TelemetryBatch.FromString(body).events
    return json.dumps(
        [json_format.MessageToDict(e, preserving_proto_field_name=True) for e in events]
    ).encode()


class HttpSender:
    def __init__(
        self,
        target: str,
        *,
        token: str,
        fleet_id: str,
        streams: int = 4,
        window: int = 8,
        backoff_s: tuple[float, float] = (0.05, 5.0),
    ) -> None:
        base = target if "://" in target else f"http://{target}"
        self.url = f"{base.rstrip('/')}/v1/fleets/{fleet_id}/telemetry"
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.backoff_s = backoff_s
        self.stats = SendStats()
        self.pending = 0
        self._queues: list[asyncio.Queue[tuple[bytes, int] | None]] = [
            asyncio.Queue(window) for _ in range(streams)
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpSender:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        self._tasks = [asyncio.create_task(self._run(q)) for q in self._queues]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def send(self, stream: int, body: bytes, count: int) -> None:
        self._check()
        await self._queues[stream % len(self._queues)].put((body, count))
        self.pending += count

    def unacked(self) -> int:
        return self.pending

    async def drain(self, timeout: float | None = None) -> bool:
        for q in self._queues:
            await q.put(None)
        done, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for t in done:
            t.result()
        return not pending

    def _check(self) -> None:
        for t in self._tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]

    async def _run(self, queue: asyncio.Queue[tuple[bytes, int] | None]) -> None:
        while (item := await queue.get()) is not None:
            body, count = item
            payload = json_body(body)
            self.stats.sent += count
            await self._post(payload, count)
            self.pending -= count

    async def _post(self, payload: bytes, count: int) -> None:
        assert self._session is not None
        st = self.stats
        backoff = self.backoff_s[0]
        first = time.monotonic()
        while True:
            wait = backoff
            try:
                async with self._session.post(
                    self.url, data=payload, headers=self.headers
                ) as reply:
                    if reply.status == 200:
                        ack = await reply.json()
                        break
                    detail = (await reply.text())[:300]
                    if reply.status in (401, 403):
                        code = grpc.StatusCode.UNAUTHENTICATED
                        if reply.status == 403:
                            code = grpc.StatusCode.PERMISSION_DENIED
                        raise SenderError(code, f"HTTP {reply.status}: {detail}")
                    if reply.status not in _RETRY_STATUSES:
                        raise SenderError(
                            grpc.StatusCode.INVALID_ARGUMENT, f"HTTP {reply.status}: {detail}"
                        )
                    st.errors[f"HTTP_{reply.status}"] += 1
                    retry_after = reply.headers.get("Retry-After", "")
                    if retry_after.isdigit():
                        wait = float(retry_after)
            except (aiohttp.ClientError, TimeoutError) as exc:
                st.errors[type(exc).__name__] += 1
            st.reconnects += 1
            st.resent_batches += 1
            await asyncio.sleep(wait)
            backoff = min(backoff * 2, self.backoff_s[1])
        st.accepted += int(ack["accepted"])
        st.late += int(ack["late"])
        st.rejected += len(ack["rejected"])
        for r in ack["rejected"]:
            st.rejections[str(r["code"])] += 1
        st.batches_acked += 1
        if len(st.ack_latency_s) < _LATENCY_SAMPLE:
            st.ack_latency_s.append(time.monotonic() - first)
