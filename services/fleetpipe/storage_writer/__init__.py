"""Storage writer: enriched telemetry, alerts, trips and driver scores → PostgreSQL and Parquet.

At-least-once input with idempotent writes: telemetry keyed by (vehicle_id, seq, event_day),
alert episodes by alert_id, trips by trip_id; offsets are committed only after the database
commit and the Parquet spool append.
"""
