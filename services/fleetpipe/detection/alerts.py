"""Alert messages for episode transitions: a rule's, or a vehicle gone offline. No I/O.

An alert carries the event that triggered it (its times, seq and place). An offline episode
opened by the clock (:meth:`~fleetpipe.detection.engine.Detector.tick`) has no such event: it
carries the vehicle's last known state instead, and the time the silence was noticed.
"""

from __future__ import annotations

import geohash

from fleetpipe.detection.episodes import OPENED, RESOLVED, UPDATED, alert_id
from fleetpipe.detection.readings import Columns, Reading
from fleetpipe.detection.rules import Rule
from fleetpipe.detection.state import CLEARING, Episode, VehicleState
from fleetpipe.pb.v1 import alert_pb2, enriched_pb2, telemetry_pb2

OFFLINE = "offline"
ALERT_STATE = {
    OPENED: alert_pb2.ALERT_STATE_OPEN,
    UPDATED: alert_pb2.ALERT_STATE_UPDATE,
    RESOLVED: alert_pb2.ALERT_STATE_RESOLVED,
}
# The transition's name in metrics.
STATE_NAME = {OPENED: "open", UPDATED: "update", RESOLVED: "resolved"}


def rule_alert(
    st: VehicleState,
    rule: Rule,
    ep: Episode,
    what: int,
    e: enriched_pb2.EnrichedTelemetry,
    cols: Columns,
    index: int,
    now: Reading,
    now_us: int,
) -> alert_pb2.Alert:
    """``rule``'s episode ``ep`` went through ``what`` at event ``index`` of the batch ``e``."""
    r = cols.reading(index)
    r.t_us, r.seq = now.t_us, now.seq
    values = rule.values(r)
    end_us = ep.since_us if what == RESOLVED else r.t_us
    values["duration_s"] = (end_us - ep.start_us) / 1e6
    values["peak"] = ep.peak
    t = e.telemetry
    return alert_pb2.Alert(
        alert_id=alert_id(st.vehicle_id, rule.key, ep.start_us),
        vehicle_id=st.vehicle_id,
        fleet_id=st.fleet_id,
        driver_id=st.driver_id,
        rule=rule.name,
        severity=rule.severity,
        state=ALERT_STATE[what],
        episode_start_us=ep.start_us,
        episode_end_us=ep.since_us if what == RESOLVED else 0,
        values=values,
        event_time_us=t.event_time_us,
        ingest_time_us=t.ingest_time_us,
        detected_time_us=now_us,
        seq=t.seq,
        location=t.location,
        message=_message(st.vehicle_id, _described(rule, values, e), what),
        geohash6=e.geohash6,
    )


def switched_off_alert(st: VehicleState, rule: Rule, ep: Episode, now_us: int) -> alert_pb2.Alert:
    """``rule`` was switched off (or its fence removed) by a rules change while ``ep`` was
    announced: the episode is resolved at the vehicle's last known state, so no alert stays
    open forever. Its end is when the condition was last seen gone (a clearing episode) or the
    vehicle's last event."""
    end_us = ep.since_us if ep.phase == CLEARING else max(st.last_event_us, ep.start_us)
    values = {
        "duration_s": (end_us - ep.start_us) / 1e6,
        "peak": ep.peak,
        "switched_off": 1.0,
    }
    return alert_pb2.Alert(
        alert_id=alert_id(st.vehicle_id, rule.key, ep.start_us),
        vehicle_id=st.vehicle_id,
        fleet_id=st.fleet_id,
        driver_id=st.driver_id,
        rule=rule.name,
        severity=rule.severity,
        state=alert_pb2.ALERT_STATE_RESOLVED,
        episode_start_us=ep.start_us,
        episode_end_us=end_us,
        values=values,
        event_time_us=st.last_event_us,
        ingest_time_us=0,
        detected_time_us=now_us,
        seq=st.last_seq,
        location=telemetry_pb2.Location(lat=st.lat, lon=st.lon),
        message=_message(st.vehicle_id, f"{rule.name} no longer checked (rules changed)", RESOLVED),
        geohash6=_cell(st.lat, st.lon),
    )


class OfflineAlerts:
    """Alerts for offline episodes, with the configured threshold and severity."""

    def __init__(self, *, after_us: int, severity: alert_pb2.Severity) -> None:
        self.after_us = after_us
        self.severity = severity

    def alert(
        self,
        st: VehicleState,
        ep: Episode,
        what: int,
        e: enriched_pb2.EnrichedTelemetry | None,
        r: Reading | None,
        now_us: int,
    ) -> alert_pb2.Alert:
        """The offline episode ``ep`` went through ``what``: at event ``e``, or by the clock."""
        if e is not None and r is not None:
            silent_s = (r.t_us - ep.start_us) / 1e6
            t = e.telemetry
            event_us, ingest_us, seq = t.event_time_us, t.ingest_time_us, r.seq
            location = t.location
            cell = e.geohash6
        else:
            silent_s = ep.peak
            # No event triggered it: the silence did, noticed at now_us.
            event_us, ingest_us, seq = st.last_event_us, 0, st.last_seq
            location = telemetry_pb2.Location(lat=st.lat, lon=st.lon)
            cell = _cell(st.lat, st.lon)
        values = {"silent_s": silent_s, "after_s": self.after_us / 1e6}
        text = f"offline: no telemetry for {silent_s / 60:.0f} min"
        return alert_pb2.Alert(
            alert_id=alert_id(st.vehicle_id, OFFLINE, ep.start_us),
            vehicle_id=st.vehicle_id,
            fleet_id=st.fleet_id,
            driver_id=st.driver_id,
            rule=OFFLINE,
            severity=self.severity,
            state=ALERT_STATE[what],
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


def _described(rule: Rule, values: dict[str, float], e: enriched_pb2.EnrichedTelemetry) -> str:
    extra = rule.annotate(e)
    text = rule.describe(values)
    return f"{text}: {extra}" if extra else text


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
