"""The detector: per-vehicle state, rules, episodes, trips and driver scores. No I/O.

The handler feeds it batches of serialized enriched telemetry, decoded a batch at a time into
columns (:class:`Batch`), with each event's input partition, and ships what comes back —
alerts, trips, scores and the serialized state of every vehicle the batch changed — in one
Kafka transaction.

Per vehicle, events are taken in ``seq`` order: one whose seq is not above the newest seen is a
duplicate or a straggler and is dropped before any rule sees it, so replays, retries and
reordering never flip an episode. Durations use the vehicle's event time, kept monotonic.

Offline: a vehicle is offline when nothing arrived from it for ``offline.after_s`` of
*processing* time. :meth:`Detector.tick` opens those episodes (its ``last_seen`` is stored with
the state, so a restart neither forgets nor re-announces it); the vehicle's next event resolves
it. A gap of that length in the event stream itself (seen on replay, or while the service was
catching up and not ticking) is announced when the next event shows it, with the same alert id.

Ownership after partitions grow (DESIGN §3): the detector knows each vehicle's *home*
partition, where the producers' partitioner now sends it. A vehicle whose records still arrive
on its old partition (producers that have not refreshed their metadata) is *in transition*.
When its records first arrive on a different partition than its held state says, the copy
here may be older than what the other replica wrote since; :meth:`Detector.stale_arrivals`
names such vehicles so the handler can re-read them from the changelog first. Offline checks
skip vehicles in transition: their silence here proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import geohash
import numpy as np
import pyarrow as pa
from google.protobuf.message import DecodeError
from ptars import HandlerPool

from fleetpipe.core.geodesy import haversine_km
from fleetpipe.core.partitioner import partition_for
from fleetpipe.detection.config import Rules
from fleetpipe.detection.episodes import OPENED, RESOLVED, UPDATED, advance, alert_id
from fleetpipe.detection.geo import FenceIndex
from fleetpipe.detection.rules import SEVERITY, Columns, Reading, Rule, Speeding, build_rules
from fleetpipe.detection.state import OPEN, PENDING, Episode, VehicleState
from fleetpipe.detection.trips import ScoreKeeper, TripTracker
from fleetpipe.pb.v1 import alert_pb2, enriched_pb2, telemetry_pb2

OFFLINE = "offline"
# Batches of at least this many records are decoded by ptars (see Detector.decode).
COLUMNAR_FROM = 128
_ALERT_STATE = {
    OPENED: alert_pb2.ALERT_STATE_OPEN,
    UPDATED: alert_pb2.ALERT_STATE_UPDATE,
    RESOLVED: alert_pb2.ALERT_STATE_RESOLVED,
}
_STATE_NAME = {OPENED: "open", UPDATED: "update", RESOLVED: "resolved"}

Keyed = list[tuple[str, bytes]]


@dataclass(slots=True)
class Outputs:
    """What one batch (or tick) produced, as (key, serialized value) pairs per topic."""

    alerts: Keyed = field(default_factory=list)
    trips: Keyed = field(default_factory=list)
    scores: Keyed = field(default_factory=list)
    states: Keyed = field(default_factory=list)
    # (rule, "open" | "update" | "resolved") per alert, for metrics.
    transitions: list[tuple[str, str]] = field(default_factory=list)
    # Per alert, the index in the batch of the event that triggered it (-1: the clock did), so
    # the alert can carry that event's trace.
    alert_sources: list[int] = field(default_factory=list)
    duplicates: int = 0


class Detector:
    def __init__(self, rules: Rules) -> None:
        self.config = rules
        self.rules: list[Rule] = build_rules(rules)
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
        self._offline_severity = SEVERITY[off.severity]
        self._offline_every_us = int(off.check_interval_s * 1e6)
        self._next_offline_check_us = 0
        self.states: dict[str, VehicleState] = {}
        self.partitions = 0  # of the input topic; 0 while unknown
        self.assigned: frozenset[int] = frozenset()
        self._transition: set[str] = set()
        self._reading = Reading()
        self._wire = HandlerPool([enriched_pb2.DESCRIPTOR]).get_for_message(
            enriched_pb2.EnrichedTelemetry.DESCRIPTOR
        )

    # -- ownership ---------------------------------------------------------------------------
    def home_of(self, vehicle_id: str) -> int:
        return partition_for(vehicle_id, self.partitions) if self.partitions else -1

    def assign(
        self, partitions: int, assigned: Iterable[int], states: dict[str, VehicleState]
    ) -> None:
        """Take over ``states`` (restored from the changelog) for the assigned partitions."""
        self.partitions = partitions
        self.assigned = frozenset(assigned)
        self.states = states
        self._transition = set()
        for vid, st in states.items():
            st.home_partition = self.home_of(vid)
            st.refreshed = False
            if st.input_partition != st.home_partition:
                self._transition.add(vid)

    def revoke(self, partitions: Iterable[int]) -> None:
        """Forget the vehicles of partitions leaving this process."""
        gone = set(partitions)
        self.assigned = self.assigned - gone
        if not self.assigned:
            self.states = {}
            self._transition = set()
            return
        assigned = self.assigned
        for vid in [
            vid
            for vid, st in self.states.items()
            if not self.keeps(st, home=st.home_partition, assigned=assigned)
        ]:
            del self.states[vid]
            self._transition.discard(vid)

    @staticmethod
    def keeps(state: VehicleState, *, home: int, assigned: frozenset[int] | set[int]) -> bool:
        """Whether a replica owning ``assigned`` must hold this vehicle's state."""
        return home in assigned or state.input_partition in assigned

    @property
    def in_transition(self) -> int:
        return len(self._transition)

    def stale_arrivals(self, vehicle_ids: Sequence[str], partitions: Sequence[int]) -> set[str]:
        """Vehicles whose events arrive on another partition than their held state says."""
        if not self._transition:
            return set()
        states = self.states
        stale = set()
        for vid, partition in zip(vehicle_ids, partitions, strict=True):
            st = states.get(vid)
            if st is not None and not st.refreshed and st.input_partition != partition:
                stale.add(vid)
        return stale

    def transition_vehicles(self) -> set[str]:
        """Vehicles in transition whose new home is here: worth re-reading with the stale ones."""
        return {
            vid
            for vid in self._transition
            if (st := self.states.get(vid)) is not None
            and st.home_partition in self.assigned
            and not st.refreshed
        }

    def refresh(self, wanted: Iterable[str], loaded: dict[str, VehicleState]) -> None:
        """Replace held copies with the changelog's newer ones."""
        for vid in wanted:
            st = loaded.get(vid) or self.states.get(vid)
            if st is None:
                continue
            st.home_partition = self.home_of(vid)
            st.refreshed = True
            self.states[vid] = st
            if st.input_partition != st.home_partition:
                self._transition.add(vid)

    # -- events ------------------------------------------------------------------------------
    def decode(self, payloads: Sequence[bytes]) -> Batch:
        """A batch of serialized ``EnrichedTelemetry``, decoded into columns.

        A large batch is decoded at once by ptars, whose fixed cost per call (~0.3 ms) a small
        one would not repay: below ``COLUMNAR_FROM`` records the protobuf runtime reads each.
        Raises ValueError when any payload is not a valid message: the caller finds it and
        sets it aside.
        """
        if len(payloads) >= COLUMNAR_FROM:
            return Batch.decode(payloads, self._wire, fences=self.fences)
        parse = enriched_pb2.EnrichedTelemetry.FromString
        try:
            messages = [parse(p) for p in payloads]
        except DecodeError as exc:
            raise ValueError(str(exc) or "undecodable EnrichedTelemetry") from exc
        return Batch.read(messages, fences=self.fences)

    def process(
        self,
        events: Sequence[tuple[enriched_pb2.EnrichedTelemetry, int]],
        *,
        now_us: int,
    ) -> Outputs:
        """Decoded messages with their input partitions (see :meth:`process_batch`)."""
        if not events:
            return Outputs()
        batch = Batch.read([e for e, _ in events], fences=self.fences)
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

        states = self.states
        dirty: dict[str, VehicleState] = {}
        trips = self.trips
        trip_start_speed = trips.start_speed if trips is not None else 0.0
        scores = self.scores
        max_gap = self._max_gap_us
        max_km_per_us = self._max_km_per_us
        offline_us = self._offline_us
        brake_key = self._harsh_brake_key
        accel_key = self._harsh_accel_key
        r = self._reading
        for i, vid in enumerate(batch.vehicle_ids):
            seq = batch.seqs[i]
            st = states.get(vid)
            if st is None:
                st = states[vid] = VehicleState(vid, home_partition=self.home_of(vid))
            elif seq <= st.last_seq:
                out.duplicates += 1
                continue
            partition = partitions[i]
            if partition != st.input_partition:
                self._moved(st, partition)
            if vid not in dirty:
                # The registry may have changed the driver; once per vehicle per batch is enough.
                st.fleet_id = batch.fleet_ids[i]
                st.driver_id = batch.driver_ids[i]
            prev_t = st.last_event_us
            ev_t = batch.times[i]
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
            if offline_us:
                off = episodes.get(OFFLINE)
                if off is not None:
                    del episodes[OFFLINE]
                    off.since_us = ev_t
                    self._offline_alert(out, st, off, RESOLVED, batch.message(i), r, now_us, i)
                elif prev_t and ev_t - prev_t >= offline_us:
                    # The silence is in the data itself: announce and close it together.
                    off = Episode(OPEN, prev_t, prev_t, (ev_t - prev_t) / 1e6, st.last_seq, prev_t)
                    e = batch.message(i)
                    self._offline_alert(out, st, off, OPENED, e, r, now_us, i)
                    off.since_us = ev_t
                    self._offline_alert(out, st, off, RESOLVED, e, r, now_us, i)

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
                        self._rule_alert(out, st, rule, ep2, what, e, cols, i, r, now_us)
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
        out.states = [(vid, st.to_bytes()) for vid, st in dirty.items()]
        return out

    def _moved(self, st: VehicleState, partition: int) -> None:
        st.input_partition = partition
        if partition == st.home_partition:
            self._transition.discard(st.vehicle_id)
        else:
            self._transition.add(st.vehicle_id)

    # -- processing time ---------------------------------------------------------------------
    def tick(self, now_us: int) -> Outputs:
        """Open offline episodes for vehicles silent for too long (processing time)."""
        out = Outputs()
        if not self._offline_us or now_us < self._next_offline_check_us:
            return out
        self._next_offline_check_us = now_us + self._offline_every_us
        silent_before = now_us - self._offline_us
        assigned = self.assigned
        dirty = []
        for st in self.states.values():
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
            self._offline_alert(out, st, ep, OPENED, None, None, now_us)
            dirty.append(st)
        out.states = [(st.vehicle_id, st.to_bytes()) for st in dirty]
        return out

    # -- alerts ------------------------------------------------------------------------------
    def _rule_alert(
        self,
        out: Outputs,
        st: VehicleState,
        rule: Rule,
        ep: Episode,
        what: int,
        e: enriched_pb2.EnrichedTelemetry,
        cols: Columns,
        index: int,
        now: Reading,
        now_us: int,
    ) -> None:
        r = cols.reading(index)
        r.t_us, r.seq = now.t_us, now.seq
        values = rule.values(r)
        end_us = ep.since_us if what == RESOLVED else r.t_us
        values["duration_s"] = (end_us - ep.start_us) / 1e6
        values["peak"] = ep.peak
        t = e.telemetry
        alert = alert_pb2.Alert(
            alert_id=alert_id(st.vehicle_id, rule.key, ep.start_us),
            vehicle_id=st.vehicle_id,
            fleet_id=st.fleet_id,
            driver_id=st.driver_id,
            rule=rule.name,
            severity=rule.severity,
            state=_ALERT_STATE[what],
            episode_start_us=ep.start_us,
            episode_end_us=ep.since_us if what == RESOLVED else 0,
            values=values,
            event_time_us=t.event_time_us,
            ingest_time_us=t.ingest_time_us,
            detected_time_us=now_us,
            seq=t.seq,
            location=t.location,
            message=_message(st.vehicle_id, rule.describe(values), what),
            geohash6=e.geohash6,
        )
        out.alerts.append((st.vehicle_id, alert.SerializeToString()))
        out.transitions.append((rule.name, _STATE_NAME[what]))
        out.alert_sources.append(index)

    def _offline_alert(
        self,
        out: Outputs,
        st: VehicleState,
        ep: Episode,
        what: int,
        e: enriched_pb2.EnrichedTelemetry | None,
        r: Reading | None,
        now_us: int,
        index: int = -1,
    ) -> None:
        if e is not None and r is not None:
            silent_s = (r.t_us - ep.start_us) / 1e6
            event_us, ingest_us, seq = e.telemetry.event_time_us, e.telemetry.ingest_time_us, r.seq
            location = e.telemetry.location
            cell = e.geohash6
        else:
            silent_s = ep.peak
            # No event triggered it: the silence did, noticed at now_us.
            event_us, ingest_us, seq = st.last_event_us, 0, st.last_seq
            location = telemetry_pb2.Location(lat=st.lat, lon=st.lon)
            cell = _cell(st.lat, st.lon)
        values = {"silent_s": silent_s, "after_s": self._offline_us / 1e6}
        text = f"offline: no telemetry for {silent_s / 60:.0f} min"
        alert = alert_pb2.Alert(
            alert_id=alert_id(st.vehicle_id, OFFLINE, ep.start_us),
            vehicle_id=st.vehicle_id,
            fleet_id=st.fleet_id,
            driver_id=st.driver_id,
            rule=OFFLINE,
            severity=self._offline_severity,
            state=_ALERT_STATE[what],
            episode_start_us=ep.start_us,
            episode_end_us=ep.since_us if what == RESOLVED else 0,
            values=values,
            event_time_us=event_us,
            ingest_time_us=ingest_us,
            detected_time_us=now_us,
            seq=seq,
            location=location,
            message=_message(st.vehicle_id, text, what),
            geohash6=cell,
        )
        out.alerts.append((st.vehicle_id, alert.SerializeToString()))
        out.transitions.append((OFFLINE, _STATE_NAME[what]))
        out.alert_sources.append(index)


def _message(vehicle_id: str, text: str, what: int) -> str:
    if what == RESOLVED:
        return f"{vehicle_id}: resolved — {text}"
    if what == UPDATED:
        return f"{vehicle_id}: still {text}"
    return f"{vehicle_id}: {text}"


def _cell(lat: float, lon: float) -> str:
    if -90.0 <= lat < 90.0 and -180.0 <= lon <= 180.0:
        return str(geohash.encode(lat, lon, 6))
    return ""


class Batch:
    """A batch's events as columns: every field the detector needs, read once.

    From serialized records (:meth:`decode`: ptars, protobuf → Arrow in Rust, no Python per
    event) or from decoded messages (:meth:`read`: the protobuf runtime). The per-event loop
    takes Python lists; the rules take numpy columns (:class:`Columns`). The few events that
    raise an alert are decoded again, on their own, by :meth:`message`.
    """

    __slots__ = (
        "_messages",
        "_payloads",
        "columns",
        "driver_ids",
        "fleet_ids",
        "has_engine",
        "hints",
        "ignitions",
        "ingest_times",
        "lats",
        "lons",
        "seqs",
        "size",
        "speeds",
        "times",
        "vehicle_ids",
    )
    columns: Columns
    driver_ids: list[str]
    fleet_ids: list[str]
    has_engine: list[bool]
    hints: list[str]
    ignitions: list[bool]
    ingest_times: list[int]
    lats: list[float]
    lons: list[float]
    seqs: list[int]
    size: int
    speeds: list[float]
    times: list[int]
    vehicle_ids: list[str]

    def __init__(
        self,
        payloads: Sequence[bytes] = (),
        messages: Sequence[enriched_pb2.EnrichedTelemetry] = (),
    ) -> None:
        self._payloads = payloads
        self._messages = messages

    def message(self, i: int) -> enriched_pb2.EnrichedTelemetry:
        """Event ``i`` as a message (for the alerts it raises)."""
        if self._messages:
            return self._messages[i]
        return enriched_pb2.EnrichedTelemetry.FromString(self._payloads[i])

    @classmethod
    def decode(cls, payloads: Sequence[bytes], wire: Any, *, fences: FenceIndex) -> Batch:
        payloads = list(payloads)
        rb: pa.RecordBatch = wire.list_to_record_batch(payloads)
        tel = rb.column("telemetry")
        loc = tel.field("location")
        mo = tel.field("motion")
        en = tel.field("engine")
        ba = tel.field("battery")
        al = tel.field("alarms")
        pe = tel.field("perception")
        veh = rb.column("vehicle")

        def np_(a: pa.Array) -> Any:
            return a.to_numpy(zero_copy_only=False)

        # An absent sub-message is a null struct whose children hold the defaults, as the
        # protobuf runtime reads them; .field() ignores the struct's own validity.
        lats, lons = np_(loc.field("lat")), np_(loc.field("lon"))
        speed = np_(mo.field("speed_kmh"))
        ignition = np_(en.field("ignition"))
        has_engine = np_(en.is_valid())
        batch = cls(payloads=payloads)
        batch.size = len(payloads)
        batch.vehicle_ids = tel.field("vehicle_id").to_pylist()
        batch.seqs = np_(tel.field("seq")).tolist()
        batch.times = np_(tel.field("event_time_us")).tolist()
        batch.ingest_times = np_(tel.field("ingest_time_us")).tolist()
        batch.hints = tel.field("trip_hint").to_pylist()
        batch.lats = lats.tolist()
        batch.lons = lons.tolist()
        batch.speeds = speed.astype(np.float64).tolist()
        batch.ignitions = ignition.tolist()
        batch.has_engine = has_engine.tolist()
        batch.fleet_ids = veh.field("fleet_id").to_pylist()
        batch.driver_ids = veh.field("driver_id").to_pylist()
        batch.columns = Columns(
            {
                "speed": speed,
                "accel_x": np_(mo.field("accel_x_ms2")),
                "accel_y": np_(mo.field("accel_y_ms2")),
                "rpm": np_(en.field("rpm")),
                "gear": np_(en.field("gear")),
                "fuel": np_(en.field("fuel_pct")),
                "coolant": np_(en.field("coolant_temp_c")),
                "battery": np_(ba.field("pct")),
                "object_distance": np_(pe.field("nearest_object_distance_m")),
                "closing_speed": np_(pe.field("closing_speed_ms")),
                "limit": np_(rb.column("speed_limit_kmh")),
                "expected_gear": np_(rb.column("expected_gear")),
                "lat": lats,
                "lon": lons,
            },
            {
                "ignition": ignition,
                "charging": np_(ba.field("charging")),
                "has_engine": has_engine,
                "has_battery": np_(ba.is_valid()),
                "sos": np_(al.field("sos")),
                "crash_alarm": np_(al.field("crash")),
                "has_perception": np_(pe.is_valid()),
                "electric": np_(veh.field("electric")),
            },
            fleet_ids=batch.fleet_ids,
            inside=fences.inside(batch.lats, batch.lons) if fences else (),
        )
        return batch

    @classmethod
    def read(cls, events: Sequence[enriched_pb2.EnrichedTelemetry], *, fences: FenceIndex) -> Batch:
        n = len(events)
        vids: list[str] = [""] * n
        seqs = [0] * n
        times = [0] * n
        ingest_times = [0] * n
        hints = [""] * n
        lats = [0.0] * n
        lons = [0.0] * n
        speed = [0.0] * n
        accel_x = [0.0] * n
        accel_y = [0.0] * n
        rpm = [0.0] * n
        gear = [0.0] * n
        fuel = [0.0] * n
        coolant = [0.0] * n
        battery = [0.0] * n
        distance = [0.0] * n
        closing = [0.0] * n
        limit = [0.0] * n
        expected = [0.0] * n
        ignition = [False] * n
        charging = [False] * n
        has_engine = [False] * n
        has_battery = [False] * n
        sos = [False] * n
        crash = [False] * n
        has_perception = [False] * n
        electric = [False] * n
        fleets = [""] * n
        drivers = [""] * n
        for i, e in enumerate(events):
            t = e.telemetry
            vids[i] = t.vehicle_id
            seqs[i] = t.seq
            times[i] = t.event_time_us
            ingest_times[i] = t.ingest_time_us
            hints[i] = t.trip_hint
            loc = t.location
            lats[i] = loc.lat
            lons[i] = loc.lon
            mo = t.motion
            speed[i] = mo.speed_kmh
            accel_x[i] = mo.accel_x_ms2
            accel_y[i] = mo.accel_y_ms2
            if t.HasField("engine"):
                en = t.engine
                has_engine[i] = True
                rpm[i] = en.rpm
                gear[i] = en.gear
                fuel[i] = en.fuel_pct
                coolant[i] = en.coolant_temp_c
                ignition[i] = en.ignition
            if t.HasField("battery"):
                ba = t.battery
                has_battery[i] = True
                battery[i] = ba.pct
                charging[i] = ba.charging
            if t.HasField("alarms"):
                al = t.alarms
                sos[i] = al.sos
                crash[i] = al.crash
            if t.HasField("perception"):
                pe = t.perception
                has_perception[i] = True
                distance[i] = pe.nearest_object_distance_m
                closing[i] = pe.closing_speed_ms
            limit[i] = e.speed_limit_kmh
            expected[i] = e.expected_gear
            v = e.vehicle
            electric[i] = v.electric
            fleets[i] = v.fleet_id
            drivers[i] = v.driver_id
        batch = cls(messages=events)
        batch.size = n
        batch.vehicle_ids = vids
        batch.seqs = seqs
        batch.times = times
        batch.ingest_times = ingest_times
        batch.hints = hints
        batch.lats = lats
        batch.lons = lons
        batch.speeds = speed
        batch.ignitions = ignition
        batch.has_engine = has_engine
        batch.fleet_ids = fleets
        batch.driver_ids = drivers
        batch.columns = Columns(
            {
                "speed": speed,
                "accel_x": accel_x,
                "accel_y": accel_y,
                "rpm": rpm,
                "gear": gear,
                "fuel": fuel,
                "coolant": coolant,
                "battery": battery,
                "object_distance": distance,
                "closing_speed": closing,
                "limit": limit,
                "expected_gear": expected,
                "lat": lats,
                "lon": lons,
            },
            {
                "ignition": ignition,
                "charging": charging,
                "has_engine": has_engine,
                "has_battery": has_battery,
                "sos": sos,
                "crash_alarm": crash,
                "has_perception": has_perception,
                "electric": electric,
            },
            fleet_ids=fleets,
            inside=fences.inside(lats, lons) if fences else (),
        )
        return batch
