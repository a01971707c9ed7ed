-- One telemetry row per (vehicle_id, seq), whatever the event day. The primary key includes
-- event_day (a partitioned table's unique keys must hold its partition key), so it alone let
-- the same seq re-sent with a clock on another day be stored twice; from this version the
-- writer leaves such a row out before its COPY (fleetpipe.storage_writer.duplicates). Copies
-- stored before it are resolved here the same way: the first stored is kept (the earliest
-- stored_time, rows from before stored_time existed first; then the earliest day).
DELETE FROM telemetry AS later
USING telemetry AS earlier
WHERE earlier.vehicle_id = later.vehicle_id
  AND earlier.seq = later.seq
  AND earlier.event_day <> later.event_day
  AND (coalesce(earlier.stored_time, '-infinity'), earlier.event_day)
      < (coalesce(later.stored_time, '-infinity'), later.event_day);

COMMENT ON TABLE telemetry IS
    'Enriched telemetry, one row per (vehicle_id, seq) over every day partition; the first stored wins.';
