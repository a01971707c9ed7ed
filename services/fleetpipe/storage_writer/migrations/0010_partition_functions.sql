-- Partition upkeep for a writer that owns no table. Creating and dropping a partition of
-- telemetry needs its owner's rights; these two functions run with them (SECURITY DEFINER),
-- so the storage writer's own role (see fleetpipe.core.dbroles) is granted EXECUTE on them
-- and nothing more: it cannot drop or alter any table itself. The search path is the one the
-- migration runs with (this schema), and every name is qualified with it, so a session's own
-- temporary tables cannot stand in for the schema's.

-- A day's partition only ever receives inserts and is dropped after the retention period.
-- Autovacuum's insert-triggered vacuum (PostgreSQL 13+) rescanned the whole growing partition
-- about once a minute under load, competing with the writer for CPU and disk, for nothing an
-- append-only table needs. Statistics (autoanalyze) and anti-wraparound vacuums still run.
CREATE FUNCTION telemetry_partition_create(day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I.%I PARTITION OF %I.telemetry FOR VALUES FROM (%L) TO (%L)'
        ' WITH (autovacuum_vacuum_insert_threshold = -1)',
        current_schema(), 'telemetry_p' || to_char(day, 'YYYYMMDD'), current_schema(),
        to_char(day, 'YYYY-MM-DD'), to_char(day + 1, 'YYYY-MM-DD'));
END
$$;

-- Only a day before today (UTC) goes: the day being written and those ahead stay.
CREATE FUNCTION telemetry_partition_drop(day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF day >= (now() AT TIME ZONE 'UTC')::date THEN
        RAISE EXCEPTION 'the telemetry partition of % is not in the past', day;
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS %I.%I',
                   current_schema(), 'telemetry_p' || to_char(day, 'YYYYMMDD'));
END
$$;

REVOKE ALL ON FUNCTION telemetry_partition_create(date) FROM PUBLIC;
REVOKE ALL ON FUNCTION telemetry_partition_drop(date) FROM PUBLIC;
