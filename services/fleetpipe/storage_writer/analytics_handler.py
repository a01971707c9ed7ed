"""The writer's analytics beside its hot store: KPI records in, the vehicles table kept in sync.

Wraps the :class:`~fleetpipe.storage_writer.handler.StorageHandler`: records of the KPI topic
are taken out of each batch and stored here, in a transaction of their own before the batch's
offsets are committed (the writer is at least once; a replay inserts nothing new); the rest go
to the hot store as before. The registry sync runs with the writer's periodic work (``on_tick``,
about once a second): at the first tick, then whenever the registry file changed, and again on
the next tick when the database was away.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from fleetpipe.core.db import DatabaseUnavailable
from fleetpipe.core.kafka import TopicPartition
from fleetpipe.core.loop import BaseHandler, Handler, RetryLater
from fleetpipe.core.metrics import Instruments
from fleetpipe.core.records import Output, Record
from fleetpipe.core.watch import WatchedFile
from fleetpipe.registry import VehicleRegistry
from fleetpipe.storage_writer.analytics import kpi_problem, kpi_row, vehicle_rows

log = logging.getLogger(__name__)


class AnalyticsPort(Protocol):
    def sync_vehicles(self, rows: Any) -> int: ...
    def write_kpis(self, rows: Any) -> None: ...
    def expire_kpis(self, *, older_than_days: float) -> int: ...


class AnalyticsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        m = Instruments(registry, "fleetpipe_storage")
        self.kpi_rows = m.counter("kpi_rows", "KPI window records written to PostgreSQL")
        self.vehicle_syncs = m.counter(
            "vehicle_syncs", "Syncs of the vehicles table with the registry", ["outcome"]
        )


class AnalyticsHandler(BaseHandler):
    def __init__(
        self,
        inner: Handler,
        *,
        store: AnalyticsPort,
        kpis_topic: str,
        registry: WatchedFile[VehicleRegistry] | None,
        metrics: AnalyticsMetrics,
        retention_days: float = 90.0,
        expire_interval_s: float = 600.0,
    ) -> None:
        self.inner = inner
        self.store = store
        self.kpis_topic = kpis_topic
        self.registry = registry
        self.metrics = metrics
        self.retention_days = retention_days
        self.expire_interval_s = expire_interval_s
        self._next_expiry = 0.0
        # Synced at the first chance; then after each registry change.
        self._sync_due = registry is not None

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        self.inner.on_assign(partitions)

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        self.inner.on_revoke(partitions)

    def on_tick(self, now: float, out: Output) -> None:
        self._sync_vehicles()
        if now >= self._next_expiry:
            try:
                self.store.expire_kpis(older_than_days=self.retention_days)
                self._next_expiry = now + self.expire_interval_s
            except DatabaseUnavailable as exc:
                log.warning("KPI rows not expired, trying again: %s", exc)
        self.inner.on_tick(now, out)

    def handle(self, records: list[Record[Any]], out: Output) -> None:
        kpis = [r for r in records if r.topic == self.kpis_topic]
        rest = [r for r in records if r.topic != self.kpis_topic] if kpis else records
        if kpis:
            rows = []
            for record in kpis:
                why = kpi_problem(record.value)
                if why:
                    out.dead_letter(
                        record, reason="invalid", error=f"{why} (offset {record.offset})"
                    )
                    continue
                rows.append(kpi_row(record.value))
            if rows:
                try:
                    self.store.write_kpis(rows)
                except DatabaseUnavailable as exc:
                    raise RetryLater(str(exc)) from exc
                self.metrics.kpi_rows.inc(len(rows))
        if rest:
            self.inner.handle(rest, out)

    def _sync_vehicles(self) -> None:
        watcher = self.registry
        if watcher is None:
            return
        if watcher.maybe_reload():
            self._sync_due = True
        if not self._sync_due:
            return
        try:
            self.store.sync_vehicles(vehicle_rows(watcher.current))
        except DatabaseUnavailable as exc:
            log.warning("vehicles table not synced, trying again: %s", exc)
            self.metrics.vehicle_syncs.labels("failed").inc()
            return
        self._sync_due = False
        self.metrics.vehicle_syncs.labels("ok").inc()
