"""The analytics, as SQL with parameters (pure: nothing here touches a connection).

Every statement reads the storage writer's tables directly, bounded by the caller's window and
fleets (the views of migration 0002 have fixed windows, which is why they are not read here).
Telemetry reads also bound ``event_day`` so that only the day partitions involved are scanned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fleetpipe.query.errors import BadQuery, Forbidden
from fleetpipe.query.scope import BBox, Scope
from fleetpipe.query.window import Window

# A vehicle silent this long is offline: the offline rule's default threshold.
OFFLINE_AFTER = "10 minutes"
MAX_LIMIT = 200_000


class Geometry(StrEnum):
    """How rows become GeoJSON: each row a point, or the rows one line (a trace)."""

    NONE = "none"
    POINTS = "points"
    LINE = "line"


class Status(StrEnum):
    ACTIVE = "active"
    IDLE = "idle"
    PARKED = "parked"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Statement:
    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    geometry: Geometry = Geometry.NONE


def _fleet_sql(column: str = "fleet_id") -> str:
    return f"(%(fleets)s::text[] IS NULL OR {column} = ANY(%(fleets)s::text[]))"


def _common(window: Window, scope: Scope, limit: int) -> dict[str, Any]:
    if not 1 <= limit <= MAX_LIMIT:
        raise BadQuery("limit", f"must lie in [1, {MAX_LIMIT}], got {limit}")
    return {"since": window.since, "until": window.until, "fleets": scope.param(), "limit": limit}


_SINCE = "(%(since)s::timestamptz IS NULL OR {col} >= %(since)s::timestamptz)"
_DAYS = (
    "event_day BETWEEN ((coalesce(%(since)s::timestamptz, %(until)s::timestamptz - interval "
    "'3650 days')) AT TIME ZONE 'UTC')::date AND (%(until)s::timestamptz AT TIME ZONE 'UTC')::date"
)


def _within(column: str) -> str:
    return f"{_SINCE.format(col=column)} AND {column} <= %(until)s::timestamptz"


_STATUS = f"""CASE
    WHEN event_time < %(until)s::timestamptz - interval '{OFFLINE_AFTER}' THEN 'offline'
    WHEN speed_kmh > 2 THEN 'active'
    WHEN ignition THEN 'idle'
    ELSE 'parked'
END"""


def latest(
    window: Window,
    scope: Scope,
    *,
    statuses: Sequence[Status] = (),
    bbox: BBox | None = None,
    limit: int = 1000,
) -> Statement:
    """Every vehicle's latest position and status, last heard from within the window."""
    params = _common(window, scope, limit)
    params["statuses"] = [s.value for s in statuses] or None
    params.update(
        west=bbox.west if bbox else None,
        south=bbox.south if bbox else None,
        east=bbox.east if bbox else None,
        north=bbox.north if bbox else None,
    )
    sql = f"""
SELECT * FROM (
    SELECT vehicle_id, fleet_id, driver_id, {_STATUS} AS status, event_time, lat, lon,
           speed_kmh, heading_deg, ignition, fuel_pct, battery_pct, odometer_km, geohash6
    FROM vehicle_latest
    WHERE {_fleet_sql()} AND {_within("event_time")}
      AND (%(west)s::float8 IS NULL OR (lon BETWEEN %(west)s::float8 AND %(east)s::float8
           AND lat BETWEEN %(south)s::float8 AND %(north)s::float8))
) v
WHERE %(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[])
ORDER BY vehicle_id
LIMIT %(limit)s"""  # noqa: S608 (fragments are constants; values are parameters)
    return Statement(sql, params, Geometry.POINTS)


def trace(vehicle: str, window: Window, scope: Scope, *, limit: int = 3600) -> Statement:
    """One vehicle's positions in the window, oldest first."""
    if not vehicle:
        raise BadQuery("vehicle", "a vehicle id is needed")
    params = {**_common(window, scope, limit), "vehicle": vehicle}
    sql = f"""
SELECT * FROM (
    SELECT vehicle_id, seq, event_time, lat, lon, speed_kmh, heading_deg, geohash6, ignition
    FROM telemetry
    WHERE vehicle_id = %(vehicle)s AND {_fleet_sql()} AND {_DAYS} AND {_within("event_time")}
    ORDER BY event_time DESC, seq DESC
    LIMIT %(limit)s
) newest
ORDER BY event_time, seq"""  # noqa: S608 (fragments are constants; values are parameters)
    return Statement(sql, params, Geometry.LINE)


def alerts(
    window: Window,
    scope: Scope,
    *,
    open_only: bool = False,
    rule: str | None = None,
    severity: str | None = None,
    vehicle: str | None = None,
    limit: int = 100,
) -> Statement:
    """Alert episodes that started in the window, newest first (open ones only if asked)."""
    params = {
        **_common(window, scope, limit),
        "open_only": open_only,
        "rule": rule or None,
        "severity": severity or None,
        "vehicle": vehicle or None,
    }
    sql = f"""
SELECT alert_id, vehicle_id, fleet_id, driver_id, rule, severity, state, episode_start,
       episode_end, detected_time, lat, lon, message, trigger_values
FROM alerts
WHERE {_fleet_sql()} AND {_within("episode_start")}
  AND (NOT %(open_only)s OR state <> 'RESOLVED')
  AND (%(rule)s::text IS NULL OR rule = %(rule)s::text)
  AND (%(severity)s::text IS NULL OR severity = %(severity)s::text)
  AND (%(vehicle)s::text IS NULL OR vehicle_id = %(vehicle)s::text)
ORDER BY episode_start DESC, alert_id
LIMIT %(limit)s"""  # noqa: S608 (fragments are constants; values are parameters)
    return Statement(sql, params, Geometry.POINTS)


def alerts_per_hour(window: Window, scope: Scope, *, limit: int = 50) -> Statement:
    """Alert episodes opened per hour, by rule and severity."""
    sql = f"""
SELECT date_trunc('hour', episode_start) AS hour, rule, severity, count(*) AS alerts,
       count(DISTINCT vehicle_id) AS vehicles
FROM alerts
WHERE {_fleet_sql()} AND {_within("episode_start")}
GROUP BY 1, 2, 3
ORDER BY hour DESC, alerts DESC, rule
LIMIT %(limit)s"""  # noqa: S608 (fragments are constants; values are parameters)
    return Statement(sql, _common(window, scope, limit))


def trips(window: Window, scope: Scope, *, limit: int = 50) -> Statement:
    """Trips that ended in the window, per vehicle: count, distance, driving and idle hours."""
    sql = f"""
SELECT vehicle_id, fleet_id, count(*) AS trips,
       round(sum(distance_km)::numeric, 1) AS distance_km,
       round(sum(duration_s)::numeric / 3600, 2) AS driving_h,
       round(sum(idle_s)::numeric / 3600, 2) AS idle_h,
       round(max(max_speed_kmh)::numeric, 0) AS max_speed_kmh,
       sum(harsh_brakes) AS harsh_brakes, max(end_time) AS last_trip_end
FROM trips
WHERE state = 'ENDED' AND {_fleet_sql()} AND {_within("end_time")}
GROUP BY vehicle_id, fleet_id
ORDER BY trips DESC, distance_km DESC, vehicle_id
LIMIT %(limit)s"""  # noqa: S608 (fragments are constants; values are parameters)
    return Statement(sql, _common(window, scope, limit))


def scorecards(window: Window, scope: Scope, *, limit: int = 50) -> Statement:
    """Each driver's latest score in the window, with the window's totals; worst first."""
    sql = f"""
WITH scores AS (
    SELECT * FROM driver_scores WHERE {_fleet_sql()} AND {_within("window_end")}
), latest AS (
    SELECT DISTINCT ON (driver_id) driver_id, vehicle_id, fleet_id, score, window_end
    FROM scores ORDER BY driver_id, window_end DESC
), totals AS (
    SELECT driver_id, avg(score) AS avg_score, sum(harsh_brakes) AS harsh_brakes,
           sum(harsh_accels) AS harsh_accels, sum(speeding_s) AS speeding_s,
           sum(distance_km) AS distance_km
    FROM scores GROUP BY driver_id
), alerted AS (
    SELECT driver_id, count(*) AS alerts FROM alerts
    WHERE driver_id IS NOT NULL AND {_fleet_sql()} AND {_within("episode_start")}
    GROUP BY driver_id
)
SELECT l.driver_id, l.fleet_id, l.vehicle_id, round(l.score::numeric, 1) AS score,
       round(t.avg_score::numeric, 1) AS avg_score, t.harsh_brakes, t.harsh_accels,
       round(t.speeding_s::numeric / 60, 1) AS speeding_min,
       round(t.distance_km::numeric, 1) AS distance_km, coalesce(a.alerts, 0) AS alerts,
       l.window_end AS scored_at
FROM latest l JOIN totals t USING (driver_id) LEFT JOIN alerted a USING (driver_id)
ORDER BY l.score, l.driver_id
LIMIT %(limit)s"""  # noqa: S608 (fragments are constants; values are parameters)
    return Statement(sql, _common(window, scope, limit))


def utilisation(window: Window, scope: Scope, *, limit: int = 50) -> Statement:
    """Per fleet, the vehicles last heard from in the window, by their status at its end."""
    sql = f"""
WITH status AS (
    SELECT fleet_id, {_STATUS} AS status FROM vehicle_latest
    WHERE {_fleet_sql()} AND {_within("event_time")}
)
SELECT fleet_id, count(*) AS vehicles,
       count(*) FILTER (WHERE status = 'active') AS active,
       count(*) FILTER (WHERE status = 'idle') AS idle,
       count(*) FILTER (WHERE status = 'parked') AS parked,
       count(*) FILTER (WHERE status = 'offline') AS offline,
       round(100.0 * count(*) FILTER (WHERE status = 'active') / count(*), 1) AS utilisation_pct
FROM status
GROUP BY fleet_id
ORDER BY fleet_id
LIMIT %(limit)s"""  # noqa: S608 (fragments are constants; values are parameters)
    return Statement(sql, _common(window, scope, limit))


def self_driving(window: Window, scope: Scope, *, limit: int = 50) -> Statement:
    """Interventions, disengagements and km per intervention in the window, per vehicle."""
    sql = f"""
SELECT vehicle_id, fleet_id, sum(interventions) AS interventions,
       sum(disengagements) AS disengagements,
       round((max(odometer_km) - min(odometer_km))::numeric, 2) AS distance_km,
       round(((max(odometer_km) - min(odometer_km)) / nullif(sum(interventions), 0))::numeric, 2)
           AS km_per_intervention,
       count(*) FILTER (WHERE object_distance_m IS NOT NULL) AS perception_events
FROM telemetry
WHERE {_fleet_sql()} AND {_DAYS} AND {_within("event_time")}
GROUP BY vehicle_id, fleet_id
ORDER BY interventions DESC, distance_km DESC, vehicle_id
LIMIT %(limit)s"""  # noqa: S608 (fragments are constants; values are parameters)
    return Statement(sql, _common(window, scope, limit))


def kpis(window: Window, scope: Scope, *, limit: int = 50) -> Statement:
    """Per fleet: vehicles and how many move now, open alerts, and the window's alerts, trips,
    distance and average driver score."""
    sql = f"""
WITH fleets AS (
    SELECT fleet_id, count(*) AS vehicles,
           count(*) FILTER (WHERE {_STATUS} = 'active') AS active_now,
           count(*) FILTER (WHERE {_STATUS} = 'offline') AS offline_now
    FROM vehicle_latest WHERE {_fleet_sql()} GROUP BY fleet_id
), open_alerts AS (
    SELECT fleet_id, count(*) AS open_alerts FROM alerts
    WHERE state <> 'RESOLVED' AND {_fleet_sql()} GROUP BY fleet_id
), window_alerts AS (
    SELECT fleet_id, count(*) AS alerts,
           count(*) FILTER (WHERE severity = 'critical') AS critical_alerts
    FROM alerts WHERE {_fleet_sql()} AND {_within("episode_start")} GROUP BY fleet_id
), window_trips AS (
    SELECT fleet_id, count(*) AS trips, sum(distance_km) AS distance_km FROM trips
    WHERE state = 'ENDED' AND {_fleet_sql()} AND {_within("end_time")} GROUP BY fleet_id
), window_scores AS (
    SELECT fleet_id, avg(score) AS avg_score FROM driver_scores
    WHERE {_fleet_sql()} AND {_within("window_end")} GROUP BY fleet_id
)
SELECT fleet_id, coalesce(f.vehicles, 0) AS vehicles, coalesce(f.active_now, 0) AS active_now,
       coalesce(f.offline_now, 0) AS offline_now, coalesce(o.open_alerts, 0) AS open_alerts,
       coalesce(a.alerts, 0) AS alerts, coalesce(a.critical_alerts, 0) AS critical_alerts,
       coalesce(t.trips, 0) AS trips, round(coalesce(t.distance_km, 0)::numeric, 1) AS distance_km,
       round(s.avg_score::numeric, 1) AS avg_score
FROM fleets f
FULL JOIN open_alerts o USING (fleet_id)
FULL JOIN window_alerts a USING (fleet_id)
FULL JOIN window_trips t USING (fleet_id)
FULL JOIN window_scores s USING (fleet_id)
ORDER BY fleet_id
LIMIT %(limit)s"""  # noqa: S608 (fragments are constants; values are parameters)
    return Statement(sql, _common(window, scope, limit))


# The groups the KPI stage counts a window in (fleetpipe.kpis.windows).
KPI_DIMENSIONS = ("fleet", "model", "vehicle_type")


def kpi_windows(
    window: Window, scope: Scope, *, dimension: str | None = "fleet", limit: int = 50
) -> Statement:
    """The KPI stage's windows that ended in the window, newest first: vehicles reporting,
    distance, speeds and alert episodes opened, per fleet (or model, or vehicle type)."""
    if dimension is not None and dimension not in KPI_DIMENSIONS:
        raise BadQuery("dimension", f"must be one of {', '.join(KPI_DIMENSIONS)}, got {dimension}")
    params = {**_common(window, scope, limit), "dimension": dimension}
    sql = f"""
WITH alerted AS (
    SELECT window_end, fleet_id, dimension, dimension_value, sum(alerts) AS alerts
    FROM kpi_window_alerts
    WHERE {_fleet_sql()} AND {_within("window_end")}
    GROUP BY window_end, fleet_id, dimension, dimension_value
)
SELECT k.window_start, k.window_end, k.fleet_id, k.dimension, k.dimension_value,
       k.active_vehicles, round(k.distance_km::numeric, 2) AS distance_km,
       round(k.max_speed_kmh::numeric, 1) AS max_speed_kmh,
       round(k.avg_speed_kmh::numeric, 1) AS avg_speed_kmh,
       coalesce(a.alerts, 0) AS alerts
FROM kpi_windows k
LEFT JOIN alerted a USING (window_end, fleet_id, dimension, dimension_value)
WHERE {_fleet_sql("k.fleet_id")} AND {_within("k.window_end")}
  AND (%(dimension)s::text IS NULL OR k.dimension = %(dimension)s::text)
ORDER BY k.window_end DESC, k.fleet_id, k.dimension, k.dimension_value
LIMIT %(limit)s"""  # noqa: S608 (fragments are constants; values are parameters)
    return Statement(sql, params)


def dead_letters(window: Window, scope: Scope, *, limit: int = 50) -> Statement:
    """Dead letters in the window by reason and service, with the latest error of each.

    A dead letter is a record no service could read: it carries no fleet, so only a caller who
    may see every fleet may see them.
    """
    if not scope.unrestricted:
        raise Forbidden("dead letters belong to no fleet: only an all-fleets token reads them")
    sql = f"""
SELECT reason, service, count(*) AS records, min(time) AS first_time, max(time) AS last_time,
       (array_agg(error ORDER BY time DESC))[1] AS latest_error,
       (array_agg(source_topic ORDER BY time DESC))[1] AS latest_source_topic
FROM dead_letters
WHERE {_within("time")}
GROUP BY reason, service
ORDER BY records DESC, reason, service
LIMIT %(limit)s"""  # noqa: S608 (fragments are constants; values are parameters)
    return Statement(sql, _common(window, scope, limit))


# The ledger's recipient is "driver", "ops:<name>" or "webhook:<name>" (notification's
# recipients module); the report names the kind (in that order, alphabetically too).
_RECIPIENT_KIND = """CASE WHEN n.recipient = 'driver' THEN 'driver'
            WHEN starts_with(n.recipient, 'ops:') THEN 'operations'
            WHEN starts_with(n.recipient, 'webhook:') THEN 'webhook'
            ELSE n.recipient END"""


def notifications(window: Window, scope: Scope, *, limit: int = 50) -> Statement:
    """Notification outcomes for alerts of the window, by recipient kind (the drivers,
    operations recipients, webhook sinks), channel and status: an operations desk's SMS are
    not the drivers'."""
    sql = f"""
SELECT {_RECIPIENT_KIND} AS recipient_kind, n.channel, n.status, count(*) AS deliveries,
       count(DISTINCT n.alert_id) AS alerts, count(DISTINCT n.recipient) AS recipients,
       sum(n.attempts) AS attempts, max(coalesce(n.decided_at, n.created_at)) AS last_decided,
       (array_agg(nullif(n.error_code, '') ORDER BY n.created_at DESC)
           FILTER (WHERE n.error_code <> ''))[1] AS latest_error_code
FROM notification_ledger n
LEFT JOIN alerts a USING (alert_id)
WHERE {_fleet_sql("a.fleet_id")} AND {_within("n.alert_time")}
GROUP BY 1, n.channel, n.status
ORDER BY recipient_kind, n.channel, n.status
LIMIT %(limit)s"""  # noqa: S608 (fragments are constants; values are parameters)
    return Statement(sql, _common(window, scope, limit))
