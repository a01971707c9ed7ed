"""Feeds telemetry and alerts into the partitions' windows, ships emitted windows and state.

Everything the batches of a commit change leaves in the commit's transaction (the loop's
exactly-once mode): the emitted windows on the KPI topic (with their batch), each changed
vehicle's panes (or a tombstone once it has none) and each changed partition's progress on the
changelog (once per commit, ``before_commit``), the too-late events on the dead-letter topic,
and the consumed offsets. A crash anywhere repeats the batches since the last commit from the
state the changelog holds, so every window is emitted once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from fleetpipe.core.kafka import TopicPartition
from fleetpipe.core.loop import BaseHandler
from fleetpipe.core.metrics import Instruments
from fleetpipe.core.records import Output, Record
from fleetpipe.kpis.changelog import StateSource
from fleetpipe.kpis.state import (
    encode_figures,
    encode_progress,
    encode_vehicle,
    partition_key,
    progress_from,
    vehicle_from,
)
from fleetpipe.kpis.windows import PartitionProgress, PartitionWindows, WindowSpec
from fleetpipe.pb.v1 import alert_pb2, enriched_pb2

log = logging.getLogger(__name__)

OPEN = alert_pb2.ALERT_STATE_OPEN


class KpiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        m = Instruments(registry, "fleetpipe_kpis")
        self.windows = m.counter("windows", "KPI records emitted (a window, group and partition)")
        self.too_late = m.counter(
            "too_late_events",
            "Events dropped (and dead-lettered) because a window they belong to was emitted",
            ["topic"],
        )
        self.vehicles = m.gauge("vehicles", "Vehicles with panes held by this process")
        self.restore_seconds = m.histogram(
            "restore_seconds",
            "Time to read the state changelog on assignment",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.watermark_lag = m.gauge(
            "watermark_lag_seconds",
            "Processing time minus the partition's watermark",
            ["partition"],
        )


class KpiHandler(BaseHandler):
    def __init__(
        self,
        spec: WindowSpec,
        store: StateSource,
        *,
        telemetry_topic: str,
        alerts_topic: str,
        kpis_topic: str,
        state_topic: str,
        metrics: KpiMetrics,
        max_batch: int = 0,
        clock: Callable[[], float] = time.monotonic,
        hold_s: float = 0.0,
    ) -> None:
        self.spec = spec
        self.store = store
        self.telemetry_topic = telemetry_topic
        self.alerts_topic = alerts_topic
        self.kpis_topic = kpis_topic
        self.state_topic = state_topic
        self.metrics = metrics
        self.max_batch = max_batch
        self.hold_s = hold_s
        self._clock = clock
        self.partitions: dict[int, PartitionWindows] = {}
        self._dirty_vehicles: set[tuple[int, str]] = set()
        self._gone_vehicles: set[str] = set()
        self._dirty_partitions: set[int] = set()
        self._emitted: list[tuple[str, bytes]] = []

    # -- partitions --------------------------------------------------------------------------
    def _mine(self, partitions: list[TopicPartition]) -> set[int]:
        topics = (self.telemetry_topic, self.alerts_topic)
        return {tp.partition for tp in partitions if tp.topic in topics}

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        fresh = self._mine(partitions) - set(self.partitions)
        if not fresh:
            return
        started = time.monotonic()
        restored = self.store.load(fresh)
        now = self._clock()
        for p in fresh:
            self.partitions[p] = PartitionWindows(self.spec, PartitionProgress(p, quiet_since=now))
        for mark in restored.partitions:
            self.partitions[mark.partition].progress = progress_from(
                mark, topic=self.telemetry_topic, now=now
            )
        for held in restored.vehicles:
            self.partitions[held.partition].vehicles[held.vehicle_id] = vehicle_from(held)
        elapsed = time.monotonic() - started
        self.metrics.restore_seconds.observe(elapsed)
        self._count_vehicles()
        log.info(
            "restored %d vehicles and %d partition marks for partitions %s in %.2fs",
            len(restored.vehicles),
            len(restored.partitions),
            sorted(fresh),
            elapsed,
        )

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        # Both topics' partition p leave together (co-partitioned, range assignment): its
        # state goes, and is read again from the changelog if it comes back.
        for p in self._mine(partitions):
            self.partitions.pop(p, None)
            with contextlib.suppress(KeyError):
                self.metrics.watermark_lag.remove(str(p))
        # Nothing is pending between commits (the loop commits before partitions go); after a
        # commit given up (the loop rewinds through here) what its batches had made is void.
        self._emitted = []
        self._gone_vehicles = set()
        self._dirty_vehicles = {(p, v) for p, v in self._dirty_vehicles if p in self.partitions}
        self._dirty_partitions &= set(self.partitions)
        self._count_vehicles()

    # -- records -----------------------------------------------------------------------------
    def handle(self, records: list[Record[Any]], out: Output) -> None:
        now = self._clock()
        for record in records:
            windows = self.partitions.get(record.partition)
            if windows is None:
                continue  # a partition revoked mid-batch: its next owner reads it
            if record.topic == self.alerts_topic:
                self._alert(windows, record, out)
            else:
                self._telemetry(windows, record, out, now)
        if self.max_batch and len(records) >= self.max_batch:
            # A full batch: the stage is reading a backlog, in which a partition may wait
            # behind the others. Its silence proves nothing, so it is not quiet time.
            for windows in self.partitions.values():
                windows.progress.quiet_since = now
        self._ship(out)

    def _telemetry(
        self, windows: PartitionWindows, record: Record[Any], out: Output, now: float
    ) -> None:
        event: enriched_pb2.EnrichedTelemetry = record.value
        t = event.telemetry
        if windows.too_late(t.event_time_us):
            self._too_late(record, out, t.event_time_us, windows)
        else:
            info = event.vehicle
            vehicle = windows.vehicle(t.vehicle_id, t.fleet_id or info.fleet_id)
            if event.known:
                vehicle.model = info.model
                vehicle.vehicle_type = info.vehicle_type
            vehicle.pane(self.spec.pane_of(t.event_time_us)).add_sample(
                t.motion.speed_kmh, t.odometer_km
            )
            self._dirty_vehicles.add((windows.progress.partition, t.vehicle_id))
        windows.observe_time(t.event_time_us, t.ingest_time_us, now)
        self._dirty_partitions.add(windows.progress.partition)
        # After every event, not every batch: what closes when depends on the input alone.
        if windows.due(now):
            self._emit(windows, now)

    def _alert(self, windows: PartitionWindows, record: Record[Any], out: Output) -> None:
        alert: alert_pb2.Alert = record.value
        if alert.state != OPEN:
            return  # an episode counts once, when it opens
        if windows.too_late(alert.event_time_us):
            self._too_late(record, out, alert.event_time_us, windows)
            return
        vehicle = windows.vehicle(alert.vehicle_id, alert.fleet_id)
        pane = vehicle.pane(self.spec.pane_of(alert.event_time_us))
        pane.alerts[alert.rule] = pane.alerts.get(alert.rule, 0) + 1
        self._dirty_vehicles.add((windows.progress.partition, alert.vehicle_id))

    def _too_late(
        self, record: Record[Any], out: Output, t_us: int, windows: PartitionWindows
    ) -> None:
        emitted_to = windows.progress.next_end_us
        out.dead_letter(
            record,
            reason="too_late",
            error=(
                f"event time {t_us} µs is in a window already emitted (windows ending before "
                f"{emitted_to} µs are, on partition {record.partition})"
            ),
        )
        self.metrics.too_late.labels(record.topic).inc()

    def _emit(self, windows: PartitionWindows, now: float) -> None:
        figures, changed, gone = windows.emit_due(now)
        partition = windows.progress.partition
        self._emitted.extend((f.fleet_id, encode_figures(f)) for f in figures)
        self._dirty_vehicles.update((partition, vid) for vid in changed)
        self._gone_vehicles.update(gone)
        self._dirty_partitions.add(partition)

    def on_tick(self, now: float, out: Output) -> None:
        # Quiet partitions: event time goes on with the clock, so their last windows close.
        mono = self._clock()
        for p, windows in self.partitions.items():
            if windows.due(mono):
                self._emit(windows, mono)
            if windows.progress.next_end_us:
                lag = now - windows.progress.watermark(self.spec, mono) / 1e6
                self.metrics.watermark_lag.labels(str(p)).set(lag)
        self._ship(out)

    def _ship(self, out: Output) -> None:
        if self._emitted:
            out.send_many(self.kpis_topic, self._emitted)  # type: ignore[arg-type]
            self.metrics.windows.inc(len(self._emitted))
            self._emitted = []
        self._count_vehicles()

    def before_commit(self, out: Output) -> None:
        """The changed vehicles' panes and partitions' progress, once per commit however many
        batches changed them, in the transaction of those batches' windows and offsets."""
        states: list[tuple[bytes | str | None, bytes | None]] = []
        for p, vid in sorted(self._dirty_vehicles):
            windows = self.partitions.get(p)
            vehicle = windows.vehicles.get(vid) if windows is not None else None
            if vehicle is not None:
                states.append((vid, encode_vehicle(vehicle)))
            elif vid in self._gone_vehicles:
                states.append((vid, None))
        for vid in sorted(self._gone_vehicles - {v for _, v in self._dirty_vehicles}):
            states.append((vid, None))
        for p in sorted(self._dirty_partitions):
            windows = self.partitions.get(p)
            if windows is not None:
                states.append(
                    (
                        partition_key(p),
                        encode_progress(windows.progress, topic=self.telemetry_topic),
                    )
                )
        if states:
            out.send_many(self.state_topic, states)
            if self.hold_s:
                # Everything is produced but nothing committed yet: the window crash drills
                # aim at.
                out.poll()
                log.info("holding a commit of %d states open for %.2fs", len(states), self.hold_s)
                time.sleep(self.hold_s)
        self._dirty_vehicles = set()
        self._gone_vehicles = set()
        self._dirty_partitions = set()
        self._count_vehicles()

    def _count_vehicles(self) -> None:
        self.metrics.vehicles.set(sum(len(w.vehicles) for w in self.partitions.values()))
