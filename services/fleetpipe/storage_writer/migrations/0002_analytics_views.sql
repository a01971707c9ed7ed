-- The analytics the reference dashboards show, as views (`fleetpipe query` reads them).
-- Telemetry windows also bound event_day so that only the partitions involved are scanned.

-- Every vehicle's trace over the last hour; filter by vehicle_id.
CREATE VIEW vehicle_trace_last_hour AS
SELECT vehicle_id, seq, event_time, lat, lon, speed_kmh, heading_deg, geohash6, ignition
FROM telemetry
WHERE event_day >= ((now() AT TIME ZONE 'UTC') - interval '1 hour')::date
  AND event_time > now() - interval '1 hour';

-- Alert episodes opened per hour, by rule and severity.
CREATE VIEW alerts_hourly AS
SELECT date_trunc('hour', episode_start) AS hour, rule, severity, count(*) AS alerts,
       count(DISTINCT vehicle_id) AS vehicles
FROM alerts
GROUP BY 1, 2, 3;

-- Each driver's latest score, with the week's totals and alert count.
CREATE VIEW driver_scorecards AS
WITH latest AS (
    SELECT DISTINCT ON (driver_id) driver_id, vehicle_id, fleet_id, score, window_start,
           window_end
    FROM driver_scores
    ORDER BY driver_id, window_end DESC
), week AS (
    SELECT driver_id, avg(score) AS avg_score_7d, sum(harsh_brakes) AS harsh_brakes_7d,
           sum(harsh_accels) AS harsh_accels_7d, sum(speeding_s) AS speeding_s_7d
    FROM driver_scores
    WHERE window_end > now() - interval '7 days'
    GROUP BY driver_id
), alerted AS (
    SELECT driver_id, count(*) AS alerts_7d
    FROM alerts
    WHERE episode_start > now() - interval '7 days' AND driver_id IS NOT NULL
    GROUP BY driver_id
)
SELECT l.driver_id, l.fleet_id, l.vehicle_id, round(l.score::numeric, 1) AS score,
       round(w.avg_score_7d::numeric, 1) AS avg_score_7d, coalesce(w.harsh_brakes_7d, 0)
       AS harsh_brakes_7d, coalesce(w.harsh_accels_7d, 0) AS harsh_accels_7d,
       round(coalesce(w.speeding_s_7d, 0)::numeric / 60, 1) AS speeding_min_7d,
       coalesce(a.alerts_7d, 0) AS alerts_7d, l.window_end AS scored_at
FROM latest l
LEFT JOIN week w USING (driver_id)
LEFT JOIN alerted a USING (driver_id);

-- Trips per vehicle: how many, how far, how long, how much of it idle.
CREATE VIEW trips_per_vehicle AS
SELECT vehicle_id, fleet_id, count(*) AS trips,
       round(sum(distance_km)::numeric, 1) AS distance_km,
       round(sum(duration_s)::numeric / 3600, 2) AS driving_h,
       round(sum(idle_s)::numeric / 3600, 2) AS idle_h,
       round(max(max_speed_kmh)::numeric, 0) AS max_speed_kmh,
       sum(harsh_brakes) AS harsh_brakes, max(end_time) AS last_trip_end
FROM trips
WHERE state = 'ENDED'
GROUP BY vehicle_id, fleet_id;

-- Fleet utilisation now: moving, idling (ignition on, stationary), parked, offline (silent for
-- 10 minutes, the offline rule's threshold).
CREATE VIEW fleet_utilisation AS
WITH status AS (
    SELECT fleet_id,
           CASE
               WHEN event_time < now() - interval '10 minutes' THEN 'offline'
               WHEN speed_kmh > 2 THEN 'active'
               WHEN ignition THEN 'idle'
               ELSE 'parked'
           END AS status
    FROM vehicle_latest
)
SELECT fleet_id, count(*) AS vehicles,
       count(*) FILTER (WHERE status = 'active') AS active,
       count(*) FILTER (WHERE status = 'idle') AS idle,
       count(*) FILTER (WHERE status = 'parked') AS parked,
       count(*) FILTER (WHERE status = 'offline') AS offline,
       round(100.0 * count(*) FILTER (WHERE status = 'active') / count(*), 1) AS utilisation_pct
FROM status
GROUP BY fleet_id;

-- Self-driving metrics over the last 24 hours: interventions, disengagements, distance and
-- km per intervention (distance from the odometer).
CREATE VIEW self_driving_metrics AS
SELECT vehicle_id, fleet_id, sum(interventions) AS interventions,
       sum(disengagements) AS disengagements,
       round((max(odometer_km) - min(odometer_km))::numeric, 2) AS distance_km,
       round(((max(odometer_km) - min(odometer_km)) / nullif(sum(interventions), 0))::numeric, 2)
           AS km_per_intervention,
       count(*) FILTER (WHERE object_distance_m IS NOT NULL) AS perception_events
FROM telemetry
WHERE event_day >= ((now() AT TIME ZONE 'UTC') - interval '24 hours')::date
  AND event_time > now() - interval '24 hours'
GROUP BY vehicle_id, fleet_id;
