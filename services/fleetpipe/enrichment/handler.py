"""Translates a batch of raw records into a call to the enricher and its outputs."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from fleetpipe.core.kafka import Headers
from fleetpipe.core.loop import BaseHandler
from fleetpipe.core.metrics import Instruments, Metrics
from fleetpipe.core.packs import PackLimits, send_packed
from fleetpipe.core.records import Output, Record
from fleetpipe.core.watch import WatchedFile
from fleetpipe.enrichment.enrich import Enricher, SpeedLimits
from fleetpipe.pb.v1 import telemetry_pb2
from fleetpipe.registry import RegistryWatcher


class EnrichmentMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        m = Instruments(registry, "fleetpipe_enrichment")
        self.unknown = m.counter(
            "unknown_vehicle_events",
            "Events from vehicles missing from the registry (passed on with known=false)",
        )
        self.vehicles = m.gauge("registry_vehicles", "Vehicles in the current registry")
        self.reloads = m.counter("registry_reloads", "Registry reloads by outcome", ["outcome"])
        self.limits_reloads = m.counter(
            "speed_limits_reloads", "Speed-limit table reloads by outcome", ["outcome"]
        )


class EnrichmentHandler(BaseHandler):
    def __init__(
        self,
        enricher: Enricher,
        *,
        output_topic: str,
        metrics: EnrichmentMetrics,
        watcher: RegistryWatcher | None = None,
        limits: WatchedFile[SpeedLimits] | None = None,
        clock: Callable[[], float] = time.time,
        shared: Metrics | None = None,
        packing: PackLimits | None = None,
    ) -> None:
        # None (or one event a pack): one record per event, keyed by vehicle id.
        self.packing = packing if packing is not None and packing.packing else None
        self.enricher = enricher
        self.output_topic = output_topic
        self.metrics = metrics
        self.shared = shared
        self.watcher = watcher
        self.limits = limits
        self._clock = clock
        metrics.vehicles.set(len(enricher.registry))

    def _maybe_reload(self) -> None:
        limits = self.limits
        if limits is not None:
            failed = limits.failed_reloads
            if limits.maybe_reload():
                self.enricher.use_limits(limits.current)
                self.metrics.limits_reloads.labels("ok").inc()
            elif limits.failed_reloads != failed:
                self.metrics.limits_reloads.labels("failed").inc()
        watcher = self.watcher
        if watcher is None:
            return
        failed = watcher.failed_reloads
        if watcher.maybe_reload():
            self.enricher.use_registry(watcher.current)
            self.metrics.vehicles.set(len(watcher.current))
            self.metrics.reloads.labels("ok").inc()
        elif watcher.failed_reloads != failed:
            self.metrics.reloads.labels("failed").inc()

    def handle(self, records: list[Record[telemetry_pb2.Telemetry]], out: Output) -> None:
        self._maybe_reload()
        now = self._clock()
        batch = self.enricher.enrich(
            # The codec refused value-less records, so every payload here is bytes: the
            # record's value, or an event's own bytes in a pack.
            ((r.value, r.payload) for r in records),  # type: ignore[misc]
            now_us=int(now * 1e6),
        )
        headers = _output_headers(out, batch.invalid) if out.traced else None
        if self.packing is not None:
            # The batch's events as packs, one (or more) per partition, closed with the batch.
            send_packed(out, self.output_topic, batch.values, self.packing, headers)  # type: ignore[arg-type]
        else:
            out.send_many(self.output_topic, batch.values, headers)  # type: ignore[arg-type]
        if self.shared is not None:
            # One observation per batch (its newest event): per event it would cost more than
            # the enrichment of a small event.
            self.shared.observe_end_to_end(records[-1].value.ingest_time_us, now)
        if batch.unknown:
            self.metrics.unknown.inc(batch.unknown)
        for index, reason in batch.invalid:
            out.dead_letter(records[index], reason="invalid", error=reason)

    def on_tick(self, now: float, out: Output) -> None:
        # A quiet input still picks up registry edits.
        self._maybe_reload()


def _output_headers(out: Output, invalid: list[tuple[int, str]]) -> dict[int, Headers]:
    """Trace headers by position among the outputs: the inputs, less the invalid ones."""
    skipped = sorted(index for index, _ in invalid)
    gone = set(skipped)
    return {
        index - bisect.bisect_left(skipped, index): span.headers
        for index, span in out.traced.items()
        if index not in gone
    }
