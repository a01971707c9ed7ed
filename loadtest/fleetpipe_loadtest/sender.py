"""Sending serialised batches to ingest over several gRPC streams, retrying until acknowledged.

Each stream is one ``TelemetryIngest/Stream`` call on its own channel. A batch stays in the
stream's window until its ack arrives (acks come in order); when the call fails with a status
worth retrying (UNAVAILABLE, RESOURCE_EXHAUSTED, …) the stream reopens after a jittered backoff
and resends every unacknowledged batch in order, so a vehicle whose events all travel on one
stream keeps its order and loses nothing. Ingest may then hold some records twice; downstream
de-duplicates by (vehicle_id, seq).

Batches are sent as bytes (``wire.batch_header`` + body): the request is never parsed or built
as a message on this side.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc

from fleetpipe.pb.v1 import ingest_pb2
from fleetpipe_loadtest.sendcounts import SendCounts
from fleetpipe_loadtest.wire import batch_header

log = logging.getLogger(__name__)

STREAM_METHOD = "/fleetpipe.v1.TelemetryIngest/Stream"
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
    }
)


class SenderError(Exception):
    """The server refused in a way a retry cannot fix (e.g. UNAUTHENTICATED)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


@dataclass(kw_only=True)
class SendStats(SendCounts):
    batches_acked: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # status code → failed calls
    rejections: Counter[str] = field(default_factory=Counter)  # reject code → events
    ack_latency_s: list[float] = field(default_factory=list)  # per batch, a bounded sample


class _EndedEarly(Exception):
    pass


_StreamMethod = grpc.aio.StreamStreamMultiCallable[bytes, ingest_pb2.PublishAck]


@dataclass
class _Batch:
    batch_id: int
    payload: bytes
    count: int
    first_sent: float = 0.0


class _Stream:
    def __init__(self, sender: Sender, index: int) -> None:
        self.sender = sender
        self.index = index
        self.queue: asyncio.Queue[tuple[bytes, int] | None] = asyncio.Queue(sender.window * 2)
        self.unacked: deque[_Batch] = deque()
        self.next_id = 1
        self.pending_events = 0  # queued or awaiting an ack
        self.closing = False
        self.room = asyncio.Event()
        self.channel: grpc.aio.Channel | None = None

    async def run(self) -> None:
        s = self.sender
        backoff = s.backoff_s[0]
        self.channel = s.make_channel()
        method = self.channel.stream_stream(
            STREAM_METHOD,
            request_serializer=None,  # requests are already bytes
            response_deserializer=ingest_pb2.PublishAck.FromString,
        )
        try:
            while True:
                try:
                    if await self._session(method):
                        return
                    backoff = s.backoff_s[0]
                    continue
                except grpc.aio.AioRpcError as exc:
                    code, details = exc.code(), exc.details() or ""
                except _EndedEarly:
                    code, details = grpc.StatusCode.UNAVAILABLE, "the server ended the stream"
                s.stats.errors[code.name] += 1
                if code not in RETRYABLE:
                    raise SenderError(code, details)
                s.stats.reconnects += 1
                log.debug("stream %d: %s (%s), retrying", self.index, code.name, details)
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, s.backoff_s[1])
        finally:
            await self.channel.close(None)

    async def _session(self, method: _StreamMethod) -> bool:
        """One call: resend what is unacknowledged, then send new batches. True when done."""
        s = self.sender
        call = method(None, metadata=s.metadata)  # requests go through call.write()

        async def write() -> None:
            for b in list(self.unacked):
                s.stats.resent_batches += 1
                await call.write(b.payload)
            while True:
                if self.closing:
                    await call.done_writing()
                    return
                while len(self.unacked) >= s.window:
                    self.room.clear()
                    await self.room.wait()
                item = await self.queue.get()
                if item is None:
                    self.closing = True
                    continue
                body, count = item
                b = _Batch(self.next_id, batch_header(self.next_id) + body, count, time.monotonic())
                self.next_id += 1
                self.unacked.append(b)
                s.stats.sent += count
                await call.write(b.payload)

        writer = asyncio.create_task(write())
        try:
            async for ack in call:
                b = self.unacked.popleft()
                if ack.batch_id != b.batch_id:
                    raise RuntimeError(f"ack for batch {ack.batch_id}, expected {b.batch_id}")
                self._count(ack, b)
                self.pending_events -= b.count
                self.room.set()
            if not writer.done():
                raise _EndedEarly  # without an error status, before we were done: reopen
            await writer
            return self.closing and not self.unacked
        finally:
            writer.cancel()

    def _count(self, ack: ingest_pb2.PublishAck, b: _Batch) -> None:
        st = self.sender.stats
        st.accepted += ack.accepted
        st.rejected += len(ack.rejected)
        st.late += ack.late
        st.batches_acked += 1
        for r in ack.rejected:
            st.rejections[ingest_pb2.RejectCode.Name(r.code)] += 1
        if len(st.ack_latency_s) < 200_000:
            st.ack_latency_s.append(time.monotonic() - b.first_sent)


class Sender:
    """Several retrying streams to one ingest server. Use as ``async with Sender(...) as s``."""

    def __init__(
        self,
        target: str,
        *,
        token: str,
        streams: int = 4,
        window: int = 8,
        root_certificates: bytes | None = None,
        max_message_bytes: int = 64 * 1024 * 1024,
        backoff_s: tuple[float, float] = (0.05, 5.0),
    ) -> None:
        if streams < 1 or window < 1:
            raise ValueError("streams and window must be ≥ 1")
        self.target = target
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.window = window
        self.root_certificates = root_certificates
        self.max_message_bytes = max_message_bytes
        self.backoff_s = backoff_s
        self.stats = SendStats()
        self._streams = [_Stream(self, i) for i in range(streams)]
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def streams(self) -> int:
        return len(self._streams)

    def make_channel(self) -> grpc.aio.Channel:
        options: Sequence[tuple[str, int]] = [
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.keepalive_time_ms", 30_000),
        ]
        if self.root_certificates is not None:
            creds = grpc.ssl_channel_credentials(root_certificates=self.root_certificates)
            return grpc.aio.secure_channel(self.target, creds, options=options)
        return grpc.aio.insecure_channel(self.target, options=options)

    async def __aenter__(self) -> Sender:
        self._tasks = [asyncio.create_task(s.run()) for s in self._streams]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def send(self, stream: int, body: bytes, count: int) -> None:
        """Queue a batch body on a stream; waits while that stream's queue is full."""
        self._check()
        s = self._streams[stream]
        if not s.queue.full():
            # The usual case, without the task ``wait_for`` makes per call (tens of µs a batch).
            s.queue.put_nowait((body, count))
            s.pending_events += count
            return
        while True:
            try:
                await asyncio.wait_for(s.queue.put((body, count)), timeout=1.0)
                s.pending_events += count
                return
            except TimeoutError:
                self._check()

    def unacked(self) -> int:
        """Events queued or sent but not yet acknowledged."""
        return sum(s.pending_events for s in self._streams)

    async def drain(self, timeout: float | None = None) -> bool:
        """Close every stream once its batches are acknowledged; False on timeout."""
        for s in self._streams:
            await s.queue.put(None)
        done, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for t in done:
            t.result()  # raises a SenderError
        return not pending

    def _check(self) -> None:
        for t in self._tasks:
            if t.done() and not t.cancelled():
                exc = t.exception()
                if exc is not None:
                    raise exc
