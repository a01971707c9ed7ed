"""Feeds batches to the detector and ships its outputs; restores state on assignment.

Alerts, trips and scores leave with the batch that made them. A vehicle's state goes to the
changelog once per commit (``before_commit``), the latest of however many batches of the
commit changed it, in the same transaction as the offsets of those batches: a restore after a
crash or an abort reads the state of the last commit and the input is read again from there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from fleetpipe.core.kafka import Headers, TopicPartition
from fleetpipe.core.loop import BaseHandler
from fleetpipe.core.metrics import Instruments, Metrics
from fleetpipe.core.records import Output, Record, set_aside_undecodable
from fleetpipe.core.settings import Topics
from fleetpipe.core.watch import WatchedFile
from fleetpipe.detection.changelog import StateSource, Unreadable
from fleetpipe.detection.config import Rules
from fleetpipe.detection.engine import Detector, Outputs
from fleetpipe.detection.ownership import Ownership
from fleetpipe.detection.state import VehicleState
from fleetpipe.detection.wire import encode_state
from fleetpipe.pb.v1 import alert_pb2, enriched_pb2

log = logging.getLogger(__name__)


class DetectionMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        m = Instruments(registry, "fleetpipe_detection")
        self.alerts = m.counter("alerts", "Alerts by rule and state", ["rule", "state"])
        self.duplicates = m.counter(
            "duplicate_events",
            "Events dropped because their seq was not newer than the vehicle's last",
        )
        self.state_writes = m.counter("state_records", "Vehicle states written to the changelog")
        self.vehicles = m.gauge("vehicles", "Vehicles whose state this process holds")
        self.restore_seconds = m.histogram(
            "restore_seconds",
            "Time to read the state changelog on assignment",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.refreshes = m.counter(
            "state_refreshes", "Changelog re-reads for vehicles arriving on a new partition"
        )
        self.rules_reloads = m.counter(
            "rules_reloads", "Rules file reloads by outcome", ["outcome"]
        )


class DetectionHandler(BaseHandler):
    def __init__(
        self,
        detector: Detector,
        store: StateSource,
        *,
        input_topic: str,
        topics: Topics,
        metrics: DetectionMetrics,
        max_batch: int,
        clock: Callable[[], float] = time.time,
        shared: Metrics | None = None,
        hold_s: float = 0.0,
        rules: WatchedFile[Rules] | None = None,
    ) -> None:
        self.rules = rules
        self.shared = shared
        self.hold_s = hold_s
        self.detector = detector
        self.store = store
        self.input_topic = input_topic
        self.topics = topics
        self.metrics = metrics
        self.max_batch = max_batch
        self._clock = clock
        self._batches_since_tick = 0
        self._behind = False
        # Unparseable changelog records of this process's vehicles, dead-lettered (and
        # tombstoned) in the next transaction; coordinates already dealt with since the last
        # assignment, whose committed tombstones a fresh restore would not see yet.
        self._unreadable: list[Unreadable] = []
        self._dead_lettered: set[tuple[int, int]] = set()
        # Vehicles whose state changed since the last commit, written by before_commit.
        self._dirty: dict[str, VehicleState] = {}

    # -- partitions --------------------------------------------------------------------------
    def on_assign(self, partitions: list[TopicPartition]) -> None:
        mine = frozenset(tp.partition for tp in partitions if tp.topic == self.input_topic)
        started = time.monotonic()
        count = self.store.partition_count()
        home = self.detector.ownership.groups.partition

        def keep(vid: str, st: VehicleState) -> bool:
            return Ownership.keeps(st, home=home(vid, count), assigned=mine)

        states = self.store.load(keep) if mine else {}
        # The loop commits before an assignment; changes left here were given up.
        self._dirty.clear()
        self.detector.ownership.assign(count, mine, states)
        self._unreadable.clear()
        self._dead_lettered.clear()
        self._collect_unreadable()
        elapsed = time.monotonic() - started
        self.metrics.restore_seconds.observe(elapsed)
        self.metrics.vehicles.set(len(states))
        log.info(
            "restored %d vehicle states for partitions %s of %d in %.2fs (%d in transition)",
            len(states),
            sorted(mine),
            count,
            elapsed,
            self.detector.ownership.in_transition,
        )

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        # The loop commits before partitions go (before_commit wrote the changes), or gave the
        # commit up: then these changes are of batches that will be processed again.
        self._dirty.clear()
        self.detector.ownership.revoke(
            tp.partition for tp in partitions if tp.topic == self.input_topic
        )
        self.metrics.vehicles.set(len(self.detector.states))

    # -- rules -------------------------------------------------------------------------------
    def _maybe_reload(self, out: Output) -> None:
        watcher = self.rules
        if watcher is None:
            return
        failed = watcher.failed_reloads
        if watcher.maybe_reload():
            # Between batches: every event of a batch is judged by one set of rules. Episodes
            # of rules the change switched off are resolved in this batch's transaction.
            now_us = int(self._clock() * 1e6)
            self._ship(self.detector.use_rules(watcher.current, now_us=now_us), out)
            self.metrics.rules_reloads.labels("ok").inc()
        elif watcher.failed_reloads != failed:
            self.metrics.rules_reloads.labels("failed").inc()

    # -- records -----------------------------------------------------------------------------
    def handle(self, records: list[Record[bytes]], out: Output) -> None:
        self._maybe_reload(out)
        detector = self.detector
        try:
            batch = detector.decode([r.value for r in records])
        except ValueError:
            records = set_aside_undecodable(records, out, enriched_pb2.EnrichedTelemetry)
            if not records:
                return
            batch = detector.decode([r.value for r in records])
        partitions = [r.partition for r in records]
        ownership = detector.ownership
        if ownership.in_transition:
            stale = ownership.stale_arrivals(batch.vehicle_ids, partitions)
            if stale:
                wanted = stale | ownership.transition_vehicles()
                loaded = self.store.load(lambda vid, _st: vid in wanted)
                # The changelog holds the last commit's states; one changed since is newer, and
                # its record (written at the commit) will follow the loaded one.
                for vid in wanted & self._dirty.keys():
                    held = detector.states.get(vid)
                    if held is not None:
                        loaded[vid] = held
                ownership.refresh(wanted, loaded)
                self.metrics.refreshes.inc()
                log.info("re-read %d moved vehicles from the changelog", len(wanted))
                self._collect_unreadable()
        now = self._clock()
        result = detector.process_batch(batch, partitions, now_us=int(now * 1e6))
        self._ship(result, out)
        if self.shared is not None:
            # The newest event of the batch, and every event that raised an alert.
            for source in {len(records) - 1, *result.alert_sources}:
                if source >= 0:
                    self.shared.observe_end_to_end(batch.ingest_times[source], now)
        self._batches_since_tick += 1
        # A full batch means more is waiting: the input is behind.
        self._behind = len(records) >= self.max_batch

    def on_tick(self, now: float, out: Output) -> None:
        self._maybe_reload(out)  # a quiet input still picks up a rules change
        # While catching up (after a restart, under a backlog), silence proves nothing: the
        # vehicles' newer records are still queued.
        caught_up = self._batches_since_tick == 0 or not self._behind
        self._batches_since_tick = 0
        if caught_up:
            self._ship(self.detector.tick(int(now * 1e6)), out)

    # -- the changelog -----------------------------------------------------------------------
    def before_commit(self, out: Output) -> None:
        """Write the changelog's part of the commit: unreadable records set aside, then each
        changed vehicle's latest state. Only here, so no transaction of this process is open on
        the changelog while it reads the changelog (a refresh), which would wait for it."""
        self._set_aside_unreadable(out)
        if not self._dirty:
            return
        held = self.detector.states
        records = [(vid, encode_state(held.get(vid, st))) for vid, st in self._dirty.items()]
        self._dirty.clear()
        out.send_many(self.topics.detection_state, records)  # type: ignore[arg-type]
        self.metrics.state_writes.inc(len(records))
        if self.hold_s:
            # Everything is produced but nothing committed yet: the window crash drills aim at.
            out.poll()
            log.info("holding a commit of %d states open for %.2fs", len(records), self.hold_s)
            time.sleep(self.hold_s)

    # -- unreadable state --------------------------------------------------------------------
    def _collect_unreadable(self) -> None:
        """Keep the unparseable records of the vehicles whose home partition is assigned here:
        exactly one replica dead-letters each."""
        ownership = self.detector.ownership
        for found in self.store.take_unreadable():
            where = (found.partition, found.offset)
            if (
                ownership.home_of(found.vehicle_id) in ownership.assigned
                and where not in self._dead_lettered
            ):
                self._dead_lettered.add(where)
                self._unreadable.append(found)

    def _set_aside_unreadable(self, out: Output) -> None:
        """Dead-letter each unparseable state record with its coordinates and tombstone its key,
        in the open transaction and before any newer state of the vehicle, so it is reported
        once and the next restore does not meet it again."""
        for found in self._unreadable:
            out.dead_letter_at(
                key=found.key,
                payload=found.value,
                topic=self.topics.detection_state,
                partition=found.partition,
                offset=found.offset,
                reason="undecodable",
                error=found.error,
            )
            out.send(self.topics.detection_state, None, found.key)
        self._unreadable.clear()

    def _ship(self, result: Outputs, out: Output) -> None:
        topics = self.topics
        if result.alerts:
            headers = _alert_traces(result, out)
            out.send_many(topics.alerts, result.alerts, headers)  # type: ignore[arg-type]
            for rule, state in result.transitions:
                self.metrics.alerts.labels(rule, state).inc()
        if result.trips:
            out.send_many(topics.trips, result.trips)  # type: ignore[arg-type]
        if result.scores:
            out.send_many(topics.scores, result.scores)  # type: ignore[arg-type]
        if result.changed:
            dirty = self._dirty
            for st in result.changed:
                dirty[st.vehicle_id] = st
            self.metrics.vehicles.set(len(self.detector.states))
        if result.duplicates:
            self.metrics.duplicates.inc(result.duplicates)


def _alert_traces(result: Outputs, out: Output) -> dict[int, Headers] | None:
    """Every alert is traced, whether or not its event was sampled at ingest.

    An alert gets a span of its own: a child of its event's span when that event is traced
    (one trace from ingest to the driver's phone), else the root of a new trace, so the
    notification of every alert can be followed even at a tiny sampling ratio. The span names
    the alert's id, which is how the console finds an alert's traces in Jaeger.
    """
    if not out.tracing.enabled:
        return None
    headers = {}
    for position, source in enumerate(result.alert_sources):
        rule, state = result.transitions[position]
        # Decoded again only when tracing: alerts are few, and this keeps the hot path as is.
        alert_id = alert_pb2.Alert.FromString(result.alerts[position][1]).alert_id
        found = out.start_trace(
            f"alert {rule}",
            {
                "fleetpipe.alert.id": alert_id,
                "fleetpipe.alert.rule": rule,
                "fleetpipe.alert.state": state,
                "fleetpipe.vehicle_id": result.alerts[position][0],
                "fleetpipe.alert.event_traced": source in out.traced,
            },
            parent=source,
        )
        if found is not None:
            headers[position] = found
    return headers
