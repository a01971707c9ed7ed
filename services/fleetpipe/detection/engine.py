"""The detector: per-vehicle state, rules, episodes, trips and driver scores. No I/O.

The handler feeds it batches of serialized enriched telemetry, decoded a batch at a time into
columns (:mod:`fleetpipe.detection.batch`), with each event's input partition, and ships what
comes back — alerts, trips, scores and the serialized state of every vehicle the batch changed —
in one Kafka transaction. Which vehicles this replica holds is :mod:`~.ownership`'s to say; the
alerts themselves are built by :mod:`~.alerts`.

Per vehicle, events are taken in ``seq`` order: one whose seq is not above the newest seen is a
duplicate or a straggler and is dropped before any rule sees it, so replays, retries and
reordering never flip an episode. Durations use the vehicle's event time, kept monotonic.

Offline: a vehicle is offline when nothing arrived from it for ``offline.after_s`` of
*processing* time. :meth:`Detector.tick` opens those episodes (its ``last_seen`` is stored with
the state, so a restart neither forgets nor re-announces it); the vehicle's next event resolves
it. A gap of that length in the event stream itself (seen on replay, or while the service was
catching up and not ticking) is announced when the next event shows it, with the same alert id.
Vehicles in transition between partitions are not checked: their silence here proves nothing.
A device clock further than ``offline.max_clock_skew_s`` from the event's ingest time is not
believed — the event is timed by ingest's clock — so a broken clock cannot open that gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fleetpipe.core.geodesy import haversine_km
from fleetpipe.core.keygroups import KeyGroups
from fleetpipe.detection.alerts import (
    OFFLINE,
    STATE_NAME,
    OfflineAlerts,
    rule_alert,
    switched_off_alert,
)
from fleetpipe.detection.batch import Batch, BatchDecoder
from fleetpipe.detection.config import Rules
from fleetpipe.detection.episodes import OPENED, RESOLVED, advance
from fleetpipe.detection.geo import FenceIndex
from fleetpipe.detection.ownership import Ownership
from fleetpipe.detection.readings import Reading
from fleetpipe.detection.rules import SEVERITY, Rule
from fleetpipe.detection.ruleset import build_rules
from fleetpipe.detection.speeding import Speeding
from fleetpipe.detection.state import OPEN, PENDING, Episode, VehicleState
from fleetpipe.detection.trips import ScoreKeeper, TripTracker
from fleetpipe.detection.wire import encode_state
from fleetpipe.pb.v1 import alert_pb2, enriched_pb2

Keyed = list[tuple[str, bytes]]


@dataclass(slots=True)
class Outputs:
    """What one batch (or tick) produced, as (key, serialized value) pairs per topic."""

    alerts: Keyed = field(default_factory=list)
    trips: Keyed = field(default_factory=list)
    scores: Keyed = field(default_factory=list)
    # The vehicles whose state changed, as held (serialized by whoever writes them: the handler
    # writes each once per commit, however many batches changed it).
    changed: list[VehicleState] = field(default_factory=list)
    # (rule, "open" | "update" | "resolved") per alert, for metrics.
    transitions: list[tuple[str, str]] = field(default_factory=list)
    # Per alert, the index in the batch of the event that triggered it (-1: the clock did), so
    # the alert can carry that event's trace.
    alert_sources: list[int] = field(default_factory=list)
    duplicates: int = 0

    @property
    def states(self) -> Keyed:
        """The changed states as changelog records (key vehicle id), serialized now."""
        return [(st.vehicle_id, encode_state(st)) for st in self.changed]

    def add_alert(self, alert: alert_pb2.Alert, what: int, source: int) -> None:
        """``alert`` for transition ``what``, triggered by event ``source`` of the batch."""
        self.alerts.append((alert.vehicle_id, alert.SerializeToString()))
        self.transitions.append((alert.rule, STATE_NAME[what]))
        self.alert_sources.append(source)


class Detector:
    def __init__(self, rules: Rules, *, groups: KeyGroups | None = None) -> None:
        self.ownership = Ownership(groups if groups is not None else KeyGroups())
        self._reading = Reading()
        self.use_rules(rules)

    def use_rules(self, rules: Rules, *, now_us: int = 0) -> Outputs:
        """Apply a new rules file; every vehicle's state and open episodes are kept.

        An open episode is judged by the new thresholds from the next event on: it resolves
        (once, through its clearing time) when the condition no longer holds, and carries on
        under the same alert id when it still does, so a change neither loses nor repeats one.
        An episode of a rule the new file switches off (or of a fence it removes) can never
        resolve that way: it is resolved now, in the returned outputs, and a pending one that
        was never announced is dropped.
        """
        old = {rule.key: rule for rule in getattr(self, "rules", [])}
        self.config = rules
        self.rules: list[Rule] = build_rules(rules)
        out = self._switch_off(
            [r for key, r in old.items() if key not in {rule.key for rule in self.rules}], now_us
        )
        self._rule_index = {rule.key: j for j, rule in enumerate(self.rules)}
        self._harsh_brake_key = "harsh_braking" if rules.harsh_braking.enabled else ""
        self._harsh_accel_key = "harsh_acceleration" if rules.harsh_acceleration.enabled else ""
        # Speeding time in trips and scores follows the speeding rule's limit even when its
        # alerts are switched off.
        self._limit = Speeding(rules.speeding)
        self.fences = FenceIndex(rules.geofence.fences if rules.geofence.enabled else [])
        self.trips = TripTracker(rules.trips) if rules.trips.enabled else None
        self.scores = (
            ScoreKeeper(rules.driver_score, stop_speed_kmh=rules.trips.stop_speed_kmh)
            if rules.driver_score.enabled
            else None
        )
        t = rules.trips
        self._max_gap_us = int(t.max_gap_s * 1e6)
        self._max_km_per_us = t.max_plausible_kmh / 3.6e9
        off = rules.offline
        self._offline_us = int(off.after_s * 1e6) if off.enabled else 0
        self._offline = OfflineAlerts(after_us=self._offline_us, severity=SEVERITY[off.severity])
        self._offline_every_us = int(off.check_interval_s * 1e6)
        self._max_skew_us = int(off.max_clock_skew_s * 1e6)
        self._next_offline_check_us = 0
        self.decoder = BatchDecoder(self.fences)
        return out

    def _switch_off(self, gone: list[Rule], now_us: int) -> Outputs:
        out = Outputs()
        if not gone:
            return out
        assigned = self.ownership.assigned
        dirty = []
        for st in self.ownership.states.values():
            if st.input_partition != st.home_partition or st.home_partition not in assigned:
                continue  # another replica owns the vehicle's episodes
            changed = False
            for rule in gone:
                ep = st.episodes.pop(rule.key, None)
                if ep is None:
                    continue
                changed = True
                if ep.phase != PENDING:
                    out.add_alert(switched_off_alert(st, rule, ep, now_us), RESOLVED, -1)
            if changed:
                dirty.append(st)
        out.changed = dirty
        return out

    @property
    def states(self) -> dict[str, VehicleState]:
        """The held state of every vehicle of the assigned partitions."""
        return self.ownership.states

    def decode(self, payloads: Sequence[bytes]) -> Batch:
        """A batch of serialized ``EnrichedTelemetry`` (see :meth:`BatchDecoder.decode`)."""
        return self.decoder.decode(payloads)

    def process(
        self,
        events: Sequence[tuple[enriched_pb2.EnrichedTelemetry, int]],
        *,
        now_us: int,
    ) -> Outputs:
        """Decoded messages with their input partitions (see :meth:`process_batch`)."""
        if not events:
            return Outputs()
        batch = self.decoder.read([e for e, _ in events])
        return self.process_batch(batch, [p for _, p in events], now_us=now_us)

    def process_batch(self, batch: Batch, partitions: Sequence[int], *, now_us: int) -> Outputs:
        """One batch of events (``partitions[i]``: the input partition of event ``i``)."""
        out = Outputs()
        if not batch.size:
            return out
        cols = batch.columns
        rules = self.rules
        # Every rule over the whole batch at once; per event, only the rules that fire or whose
        # episode is under way need Python code.
        entering: dict[str, list[float]] = {}
        fired_at: dict[int, list[int]] = {}  # event index -> indexes of the rules that fire
        for j, rule in enumerate(rules):
            values = rule.check(cols, False)
            fired = np.flatnonzero(~np.isnan(values))
            if fired.size:
                entering[rule.key] = values.tolist()
                for i in fired.tolist():
                    fired_at.setdefault(i, []).append(j)
        holding: dict[str, list[float]] = {}
        rule_index = self._rule_index
        speeding_at = (cols.speed > self._limit.limits(cols)).tolist()

        ownership = self.ownership
        home_of = ownership.home_of
        states = ownership.states
        dirty: dict[str, VehicleState] = {}
        trips = self.trips
        trip_start_speed = trips.start_speed if trips is not None else 0.0
        scores = self.scores
        max_gap = self._max_gap_us
        max_km_per_us = self._max_km_per_us
        offline_us = self._offline_us
        max_skew = self._max_skew_us
        ingest_times = batch.ingest_times
        brake_key = self._harsh_brake_key
        accel_key = self._harsh_accel_key
        r = self._reading
        for i, vid in enumerate(batch.vehicle_ids):
            seq = batch.seqs[i]
            st = states.get(vid)
            if st is None:
                st = states[vid] = VehicleState(vid, home_partition=home_of(vid))
            elif seq <= st.last_seq:
                out.duplicates += 1
                continue
            partition = partitions[i]
            if partition != st.input_partition:
                ownership.arrived(st, partition)
            if vid not in dirty:
                # The registry may have changed the driver; once per vehicle per batch is enough.
                st.fleet_id = batch.fleet_ids[i]
                st.driver_id = batch.driver_ids[i]
            prev_t = st.last_event_us
            ev_t = batch.times[i]
            ingest_t = ingest_times[i]
            if ingest_t and not -max_skew <= ev_t - ingest_t <= max_skew:
                ev_t = ingest_t  # a broken device clock: ingest's is the better guess
            if ev_t < prev_t:  # noqa: PLR1730 - a branch is cheaper than max() per event
                ev_t = prev_t  # the device clock went back: keep durations non-negative
            lat = batch.lats[i]
            lon = batch.lons[i]
            speed = batch.speeds[i]
            ignition = batch.ignitions[i]
            r.seq = seq
            r.t_us = ev_t
            r.lat = lat
            r.lon = lon
            r.speed = speed
            r.ignition = ignition
            r.has_engine = batch.has_engine[i]

            episodes = st.episodes
            # An offline episode ends at the vehicle's next event, even one opened before a
            # rules change switched the rule off.
            off = episodes.get(OFFLINE) if episodes else None
            if off is not None:
                del episodes[OFFLINE]
                off.since_us = ev_t
                alert = self._offline.alert(st, off, RESOLVED, batch.message(i), r, now_us)
                out.add_alert(alert, RESOLVED, i)
            elif offline_us and prev_t and ev_t - prev_t >= offline_us:
                # The silence is in the data itself: announce and close it together.
                off = Episode(OPEN, prev_t, prev_t, (ev_t - prev_t) / 1e6, st.last_seq, prev_t)
                e = batch.message(i)
                out.add_alert(self._offline.alert(st, off, OPENED, e, r, now_us), OPENED, i)
                off.since_us = ev_t
                out.add_alert(self._offline.alert(st, off, RESOLVED, e, r, now_us), RESOLVED, i)

            dt_s = 0.0
            d_km = 0.0
            if prev_t and ev_t - prev_t <= max_gap:
                dt_us = ev_t - prev_t
                dt_s = dt_us / 1e6
                if lat != st.lat or lon != st.lon:
                    d = haversine_km(st.lat, st.lon, lat, lon)
                    # Farther than the vehicle could have gone: a GPS jump, not distance.
                    if d <= max_km_per_us * dt_us + 0.05:
                        d_km = d

            brakes = accels = 0
            todo = fired_at.get(i)
            if episodes:
                ongoing = [rule_index[k] for k in episodes if k in rule_index]
                todo = sorted({*todo, *ongoing}) if todo else sorted(ongoing)
            if todo:
                for j in todo:
                    rule = rules[j]
                    key = rule.key
                    ep = episodes.get(key)
                    if ep is None or ep.phase == PENDING:
                        column = entering.get(key)
                    else:
                        column = holding.get(key)
                        if column is None:
                            column = holding[key] = rule.check(cols, True).tolist()
                    value = None if column is None else column[i]
                    # NaN (not equal to itself): the condition is off. Cheaper than isnan().
                    if value is not None and value != value:  # noqa: PLR0124
                        value = None
                    if value is None and ep is None:
                        continue
                    ep2, what = advance(
                        ep,
                        value,
                        ev_t,
                        seq,
                        min_us=rule.min_us,
                        clear_us=rule.clear_us,
                        update_us=rule.update_us,
                        lower_is_worse=rule.lower_is_worse,
                    )
                    if ep2 is None or what == RESOLVED:
                        episodes.pop(key, None)
                    elif ep is None:
                        episodes[key] = ep2
                    if what and ep2 is not None:
                        e = batch.message(i)
                        alert = rule_alert(st, rule, ep2, what, e, cols, i, r, now_us)
                        out.add_alert(alert, what, i)
                        if what == OPENED:
                            if key == brake_key:
                                brakes += 1
                            elif key == accel_key:
                                accels += 1

            speeding = speeding_at[i]
            # A parked vehicle without a trip cannot start one below the start speed: skip the
            # call (most of a fleet's events, most of the time).
            if trips is not None and (st.trip is not None or speed >= trip_start_speed):
                # Positional arguments: measurably cheaper per event than keywords.
                for trip in trips.advance(
                    st, r, batch.hints[i], dt_s, d_km, speeding, brakes, accels
                ):
                    out.trips.append((vid, trip.SerializeToString()))
            if scores is not None:
                score = scores.advance(st, r, dt_s, d_km, speeding, brakes, accels, now_us)
                if score is not None:
                    out.scores.append((vid, score.SerializeToString()))

            st.last_seq = seq
            st.last_event_us = ev_t
            st.last_seen_us = now_us
            st.lat = lat
            st.lon = lon
            st.speed_kmh = speed
            st.ignition = ignition
            dirty[vid] = st
        out.changed = list(dirty.values())
        return out

    # -- processing time ---------------------------------------------------------------------
    def tick(self, now_us: int) -> Outputs:
        """Open offline episodes for vehicles silent for too long (processing time)."""
        out = Outputs()
        if not self._offline_us or now_us < self._next_offline_check_us:
            return out
        self._next_offline_check_us = now_us + self._offline_every_us
        silent_before = now_us - self._offline_us
        assigned = self.ownership.assigned
        dirty = []
        for st in self.ownership.states.values():
            if (
                st.last_seen_us == 0
                or st.last_seen_us > silent_before
                or OFFLINE in st.episodes
                or st.input_partition != st.home_partition
                or st.home_partition not in assigned
            ):
                continue
            silent_s = (now_us - st.last_seen_us) / 1e6
            ep = Episode(
                OPEN, st.last_event_us, st.last_event_us, silent_s, st.last_seq, st.last_event_us
            )
            st.episodes[OFFLINE] = ep
            out.add_alert(self._offline.alert(st, ep, OPENED, None, None, now_us), OPENED, -1)
            dirty.append(st)
        out.changed = dirty
        return out
