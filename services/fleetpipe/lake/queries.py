"""The compaction's SQL (DuckDB), over bronze telemetry as the storage writer files it.

Silver keeps one row per vehicle and seq: a record repeated in bronze (an instance handover,
a replay, an at-least-once producer upstream) is the same event, and the copy kept is the one
with the lowest Kafka coordinates, so the choice never depends on the order files are read in.
A row whose values no real vehicle reports is not kept: it goes to ``silver/rejected`` with the
first check it failed. Every output is sorted on its key, so the same input gives the same
bytes.
"""

# The statements are put together from this module's constants only, never from input.
# ruff: noqa: S608

from __future__ import annotations

from fleetpipe.lake.layout import PACK_INDEX

US_PER_SECOND = 1_000_000
US_PER_HOUR = 3_600_000_000
US_PER_DAY = 86_400_000_000

# What silver refuses, in order: the first that holds is the row's reason. NaN compares
# greater than every number in DuckDB, so a NaN fails its BETWEEN.
RANGE_CHECKS: tuple[tuple[str, str], ...] = (
    ("vehicle_id is empty", "coalesce(telemetry.vehicle_id, '') = ''"),
    ("seq is not positive", "coalesce(telemetry.seq, 0) = 0"),
    ("event time is not positive", "coalesce(telemetry.event_time_us, 0) <= 0"),
    (
        "location out of range",
        "NOT (coalesce(telemetry.location.lat, 0) BETWEEN -90 AND 90"
        " AND coalesce(telemetry.location.lon, 0) BETWEEN -180 AND 180)",
    ),
    ("speed out of range", "NOT (coalesce(telemetry.motion.speed_kmh, 0) BETWEEN 0 AND 400)"),
    ("battery out of range", "NOT (coalesce(telemetry.battery.pct, 0) BETWEEN 0 AND 100)"),
    ("fuel out of range", "NOT (coalesce(telemetry.engine.fuel_pct, 0) BETWEEN 0 AND 100)"),
    (
        "event time more than an hour after ingest",
        "telemetry.ingest_time_us > 0"
        f" AND telemetry.event_time_us > telemetry.ingest_time_us + {US_PER_HOUR}",
    ),
)


# A bronze row's Kafka coordinates, its position in a pack last (the events of a pack share
# its offset): an order that never depends on the order files are read in.
_COORDINATES = f"_kafka_topic, _kafka_partition, _kafka_offset, {PACK_INDEX}"


def _reason() -> str:
    cases = " ".join(f"WHEN {test} THEN '{why}'" for why, test in RANGE_CHECKS)
    return f"CASE {cases} END"


_CHECKED = f"""
    SELECT
        telemetry.vehicle_id AS vehicle_id,
        CAST(telemetry.seq AS BIGINT) AS seq,
        telemetry.fleet_id AS fleet_id,
        telemetry.event_time_us AS event_time_us,
        nullif(telemetry.ingest_time_us, 0) AS ingest_time_us,
        {_reason()} AS reason,
        * EXCLUDE (event_time)
    FROM bronze
"""

SILVER = f"""
WITH checked AS ({_CHECKED}),
ranked AS (
    SELECT *, row_number() OVER (
        PARTITION BY vehicle_id, seq ORDER BY {_COORDINATES}
    ) AS copy
    FROM checked
    WHERE reason IS NULL
)
SELECT * EXCLUDE (reason, copy)
FROM ranked
WHERE copy = 1
ORDER BY vehicle_id, seq
"""

REJECTED = f"""
WITH checked AS ({_CHECKED})
SELECT reason, * EXCLUDE (reason)
FROM checked
WHERE reason IS NOT NULL
ORDER BY {_COORDINATES}
"""

# Averages are summed in a fixed order (ORDER BY inside the aggregate): a parallel sum's order,
# and so its last bits, would differ from run to run, and a re-run must give the same bytes.
# "Seconds in use": the distinct whole seconds in which the vehicle reported its ignition on.
# "Distinct locations": the distinct zones (geohash precision 6, about 1.2 x 0.6 km) it was in.
VEHICLE_HOUR = f"""
SELECT
    fleet_id,
    vehicle_id,
    event_time_us // {US_PER_HOUR} * {US_PER_HOUR} AS hour_us,
    count(*) AS events,
    avg(telemetry.battery.pct ORDER BY seq) AS battery_avg_pct,
    min(telemetry.battery.pct) AS battery_min_pct,
    max(telemetry.motion.speed_kmh) AS speed_max_kmh,
    count(DISTINCT event_time_us // {US_PER_SECOND})
        FILTER (WHERE telemetry.engine.ignition) AS seconds_in_use,
    count(DISTINCT nullif(geohash6, '')) AS distinct_locations
FROM silver
GROUP BY ALL
ORDER BY fleet_id, vehicle_id, hour_us
"""

FLEET_DAY = f"""
SELECT
    fleet_id,
    event_time_us // {US_PER_DAY} * {US_PER_DAY} AS day_us,
    count(*) AS events,
    count(DISTINCT vehicle_id) AS vehicles,
    avg(telemetry.battery.pct ORDER BY vehicle_id, seq) AS battery_avg_pct,
    min(telemetry.battery.pct) AS battery_min_pct,
    max(telemetry.motion.speed_kmh) AS speed_max_kmh,
    count(DISTINCT (vehicle_id, event_time_us // {US_PER_SECOND}))
        FILTER (WHERE telemetry.engine.ignition) AS seconds_in_use,
    count(DISTINCT nullif(geohash6, '')) AS distinct_locations
FROM silver
GROUP BY ALL
ORDER BY fleet_id, day_us
"""
