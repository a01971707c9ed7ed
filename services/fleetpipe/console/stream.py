"""The live stream: alerts and positions read from Kafka, fanned out to every listener.

One reader thread per topic reads from the end of every partition (outside any consumer group,
so the pipeline's consumers never rebalance for the console) and hands each decoded event to
the :class:`Hub`, which puts it on the asyncio queue of every listener whose scope covers the
event's fleet. Positions are many (one per vehicle a second at full load): they are coalesced
to each vehicle's newest and sent as one batch a period. A listener that falls behind loses
its oldest events rather than holding the process's memory.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fleetpipe.core.packs import events_of
from fleetpipe.core.readers import build_reader, is_partition_eof
from fleetpipe.core.settings import KafkaSettings
from fleetpipe.pb.v1 import alert_pb2, enriched_pb2
from fleetpipe.query.scope import Scope

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
_STATE = {
    alert_pb2.ALERT_STATE_OPEN: "OPEN",
    alert_pb2.ALERT_STATE_UPDATE: "UPDATE",
    alert_pb2.ALERT_STATE_RESOLVED: "RESOLVED",
}
_SEVERITY = {
    alert_pb2.SEVERITY_INFO: "info",
    alert_pb2.SEVERITY_WARNING: "warning",
    alert_pb2.SEVERITY_CRITICAL: "critical",
}


@dataclass(frozen=True)
class Event:
    kind: str  # "alert" or "positions"
    fleet: str
    data: Any


def alert_event(a: alert_pb2.Alert) -> Event:
    return Event(
        "alert",
        a.fleet_id,
        {
            "alert_id": a.alert_id,
            "vehicle_id": a.vehicle_id,
            "fleet_id": a.fleet_id,
            "driver_id": a.driver_id or None,
            "rule": a.rule,
            "severity": _SEVERITY.get(a.severity, "unspecified"),
            "state": _STATE.get(a.state, "UNSPECIFIED"),
            "episode_start_us": a.episode_start_us,
            "detected_time_us": a.detected_time_us,
            "lat": a.location.lat if a.HasField("location") else None,
            "lon": a.location.lon if a.HasField("location") else None,
            "message": a.message,
            "values": dict(a.values),
        },
    )


@dataclass
class _Listener:
    scope: Scope
    queue: asyncio.Queue[Event]
    loop: asyncio.AbstractEventLoop


@dataclass
class Hub:
    """Listeners by id; ``publish`` is called from the reader threads."""

    _listeners: dict[int, _Listener] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next: int = 0

    def listen(self, scope: Scope) -> tuple[int, asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        with self._lock:
            self._next += 1
            self._listeners[self._next] = _Listener(scope, queue, asyncio.get_running_loop())
            return self._next, queue

    def leave(self, ident: int) -> None:
        with self._lock:
            self._listeners.pop(ident, None)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def publish(self, event: Event) -> None:
        with self._lock:
            targets = list(self._listeners.values())
        for listener in targets:
            fleets = listener.scope.fleets
            if fleets is not None and event.fleet not in fleets:
                continue
            listener.loop.call_soon_threadsafe(_offer, listener.queue, event)


def _offer(queue: asyncio.Queue[Event], event: Event) -> None:
    if queue.full():
        queue.get_nowait()  # a slow listener loses its oldest event, not the process's memory
    queue.put_nowait(event)


class TopicTail(threading.Thread):
    """Reads one topic from its end and hands each record's value to ``handle``."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        handle: Callable[[bytes], None],
        *,
        client_id: str,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name=f"tail-{topic}", daemon=True)
        self._kafka = kafka
        self._topic = topic
        self._handle = handle
        self._client_id = client_id
        self._on_idle = on_idle
        self._stop = threading.Event()
        self.ready = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception:
                log.exception("reading %s failed; reading again from its end", self._topic)
                self._stop.wait(2.0)

    def _follow(self) -> None:
        reader = build_reader(self._kafka, client_id=self._client_id, read_committed=True)
        try:
            ends = {p: reader.watermarks(self._topic, p)[1] for p in reader.partitions(self._topic)}
            reader.assign(self._topic, ends)
            self.ready.set()
            while not self._stop.is_set():
                for msg in reader.consume(500, 0.2):
                    if msg.error() is not None:
                        if not is_partition_eof(msg):
                            log.warning("reading %s: %s", self._topic, msg.error())
                        continue
                    try:
                        # A pack holds many vehicles' events: each is taken on its own.
                        for event in events_of(msg):
                            value = event.value()
                            if value is not None:
                                self._handle(value)
                    except Exception as exc:  # a record the console cannot read is skipped
                        log.warning("skipped a record of %s: %s", self._topic, exc)
                if self._on_idle is not None:
                    self._on_idle()
        finally:
            reader.close()


class Positions:
    """Each vehicle's newest position, published as one batch per fleet every ``period_s``."""

    def __init__(self, hub: Hub, *, period_s: float) -> None:
        self._hub = hub
        self._period_s = period_s
        self._pending: dict[str, tuple[str, list[Any]]] = {}
        self._last = time.monotonic()

    def take(self, value: bytes) -> None:
        if not self._hub.listeners:
            # Nobody watches: decoding every position (100K a second at full load) would cost
            # a core and hold the interpreter lock the API needs.
            return
        e = enriched_pb2.EnrichedTelemetry.FromString(value)
        t = e.telemetry
        fleet = e.vehicle.fleet_id or t.fleet_id
        self._pending[t.vehicle_id] = (
            fleet,
            [t.vehicle_id, round(t.location.lat, 6), round(t.location.lon, 6), t.motion.speed_kmh],
        )
        self.flush()

    def flush(self) -> None:
        now = time.monotonic()
        if now - self._last < self._period_s or not self._pending:
            return
        self._last = now
        by_fleet: dict[str, list[Any]] = {}
        for fleet, row in self._pending.values():
            by_fleet.setdefault(fleet, []).append(row)
        self._pending.clear()
        for fleet, rows in by_fleet.items():
            self._hub.publish(Event("positions", fleet, rows))
