"""Trips and driver scores: pure functions of the vehicle's state and its newest reading.

A trip starts at the first reading that moves (``start_speed_kmh``) with the engine on, and ends
when the ignition goes off, after a stop longer than ``end_after_stop_s`` (the trip then ends
where the stop began, and the stop's idling is not the trip's), when the device's trip counter
changes, or when the vehicle was silent for longer than ``max_gap_s`` (the trip ends at its last
fix). Distance is the haversine sum over consecutive fixes, leaving out GPS jumps.

The driver score is computed per vehicle (with the vehicle's current driver) over a rolling
window of ``window_s`` in buckets of ``bucket_s`` of event time, each time a bucket closes::

    score = 100 − speeding_weight × speeding_s / driving_s
                − harsh_event_weight × harsh events per hour of driving
                − idle_weight × idle_s / (driving_s + idle_s)          (clamped to 0..100)

Windows with less than ``min_driving_s`` of driving get no score.
"""

from __future__ import annotations

from fleetpipe.detection.config import DriverScoreConfig, TripConfig
from fleetpipe.detection.episodes import trip_id
from fleetpipe.detection.readings import Reading
from fleetpipe.detection.state import ScoreBucket, TripProgress, VehicleState
from fleetpipe.pb.v1 import telemetry_pb2, trip_pb2


class TripTracker:
    def __init__(self, c: TripConfig) -> None:
        self.start_speed = c.start_speed_kmh
        self.stop_speed = c.stop_speed_kmh
        self.end_after_stop_us = int(c.end_after_stop_s * 1e6)
        self.end_on_ignition_off = c.end_on_ignition_off
        self.max_gap_us = int(c.max_gap_s * 1e6)

    def advance(
        self,
        st: VehicleState,
        r: Reading,
        hint: str,
        dt_s: float,
        d_km: float,
        speeding: bool,
        brakes: int,
        accels: int,
    ) -> list[trip_pb2.Trip]:
        """Fold one reading into the trip; returns the STARTED/ENDED records it causes.

        ``st`` still holds the previous fix (lat, lon, last_event_us, last_seq); ``dt_s`` and
        ``d_km`` are the interval since it (0 across a gap).
        """
        out: list[trip_pb2.Trip] = []
        trip = st.trip
        t = r.t_us
        if trip is not None and st.last_event_us:
            gap = t - st.last_event_us > self.max_gap_us
            if gap or (hint and trip.hint and hint != trip.hint):
                out.append(self._ended(st, trip, st.last_event_us, st.last_seq, st.lat, st.lon))
                trip = st.trip = None
        engine_on = r.ignition or not r.has_engine
        if trip is not None:
            speed = r.speed
            trip.distance_km += d_km
            if speed > trip.max_speed_kmh:  # noqa: PLR1730 - cheaper than max() per event
                trip.max_speed_kmh = speed
            if speeding:
                trip.speeding_s += dt_s
            trip.harsh_brakes += brakes
            trip.harsh_accels += accels
            if speed < self.stop_speed:
                if not trip.stopped_since_us:
                    trip.stopped_since_us = t
                if engine_on:
                    trip.idle_s += dt_s
                    trip.stop_idle_s += dt_s
            else:
                trip.stopped_since_us = 0
                trip.stop_idle_s = 0.0
            if self.end_on_ignition_off and r.has_engine and not r.ignition:
                out.append(self._ended(st, trip, t, r.seq, r.lat, r.lon))
                st.trip = None
            elif trip.stopped_since_us and t - trip.stopped_since_us >= self.end_after_stop_us:
                trip.idle_s -= trip.stop_idle_s
                out.append(self._ended(st, trip, trip.stopped_since_us, r.seq, r.lat, r.lon))
                st.trip = None
            return out
        if engine_on and r.speed >= self.start_speed:
            st.trip = TripProgress(t, r.seq, r.lat, r.lon, hint)
            out.append(
                trip_pb2.Trip(
                    trip_id=trip_id(st.vehicle_id, t),
                    vehicle_id=st.vehicle_id,
                    fleet_id=st.fleet_id,
                    driver_id=st.driver_id,
                    state=trip_pb2.TRIP_STATE_STARTED,
                    start_time_us=t,
                    start_location=telemetry_pb2.Location(lat=r.lat, lon=r.lon),
                    start_seq=r.seq,
                )
            )
            st.trip.max_speed_kmh = r.speed
        return out

    @staticmethod
    def _ended(
        st: VehicleState,
        trip: TripProgress,
        end_us: int,
        end_seq: int,
        lat: float,
        lon: float,
    ) -> trip_pb2.Trip:
        duration_s = max(0.0, (end_us - trip.start_us) / 1e6)
        return trip_pb2.Trip(
            trip_id=trip_id(st.vehicle_id, trip.start_us),
            vehicle_id=st.vehicle_id,
            fleet_id=st.fleet_id,
            driver_id=st.driver_id,
            state=trip_pb2.TRIP_STATE_ENDED,
            start_time_us=trip.start_us,
            end_time_us=end_us,
            start_location=telemetry_pb2.Location(lat=trip.start_lat, lon=trip.start_lon),
            end_location=telemetry_pb2.Location(lat=lat, lon=lon),
            distance_km=trip.distance_km,
            duration_s=duration_s,
            idle_s=max(0.0, trip.idle_s),
            max_speed_kmh=trip.max_speed_kmh,
            avg_speed_kmh=trip.distance_km / (duration_s / 3600) if duration_s > 0 else 0.0,
            harsh_brakes=trip.harsh_brakes,
            harsh_accels=trip.harsh_accels,
            speeding_s=trip.speeding_s,
            start_seq=trip.start_seq,
            end_seq=end_seq,
        )


class ScoreKeeper:
    def __init__(self, c: DriverScoreConfig, *, stop_speed_kmh: float) -> None:
        self.window_us = int(c.window_s * 1e6)
        self.bucket_us = int(c.bucket_s * 1e6)
        self.min_driving_s = c.min_driving_s
        self.speeding_weight = c.speeding_weight
        self.harsh_weight = c.harsh_event_weight
        self.idle_weight = c.idle_weight
        self.stop_speed = stop_speed_kmh

    def advance(
        self,
        st: VehicleState,
        r: Reading,
        dt_s: float,
        d_km: float,
        speeding: bool,
        brakes: int,
        accels: int,
        now_us: int,
    ) -> trip_pb2.DriverScore | None:
        """Add the interval to the current bucket; returns a score when a bucket just closed."""
        t = r.t_us
        start = t - t % self.bucket_us
        buckets = st.buckets
        score = None
        if not buckets or buckets[-1].start_us != start:
            if buckets:
                score = self.score(st, window_end_us=start, now_us=now_us)
                oldest = start - self.window_us + self.bucket_us
                if buckets[0].start_us < oldest:
                    st.buckets = buckets = [b for b in buckets if b.start_us >= oldest]
            buckets.append(ScoreBucket(start))
        b = buckets[-1]
        b.distance_km += d_km
        if r.speed >= self.stop_speed:
            b.driving_s += dt_s
        elif r.ignition:
            b.idle_s += dt_s
        if speeding:
            b.speeding_s += dt_s
        b.harsh_brakes += brakes
        b.harsh_accels += accels
        return score

    def score(
        self, st: VehicleState, *, window_end_us: int, now_us: int
    ) -> trip_pb2.DriverScore | None:
        begin = window_end_us - self.window_us
        window = [b for b in st.buckets if begin <= b.start_us < window_end_us]
        driving = sum(b.driving_s for b in window)
        if not window or driving < self.min_driving_s or driving <= 0:
            return None
        speeding = sum(b.speeding_s for b in window)
        idle = sum(b.idle_s for b in window)
        brakes = sum(b.harsh_brakes for b in window)
        accels = sum(b.harsh_accels for b in window)
        value = (
            100.0
            - self.speeding_weight * min(1.0, speeding / driving)
            - self.harsh_weight * (brakes + accels) / (driving / 3600.0)
            - self.idle_weight * idle / (driving + idle)
        )
        return trip_pb2.DriverScore(
            driver_id=st.driver_id,
            vehicle_id=st.vehicle_id,
            fleet_id=st.fleet_id,
            window_start_us=begin,
            window_end_us=window_end_us,
            score=max(0.0, min(100.0, value)),
            distance_km=sum(b.distance_km for b in window),
            driving_s=driving,
            speeding_s=speeding,
            harsh_brakes=brakes,
            harsh_accels=accels,
            idle_s=idle,
            computed_time_us=now_us,
        )
