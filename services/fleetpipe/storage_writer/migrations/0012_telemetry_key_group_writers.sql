-- Which storage writer last stored telemetry of each key group (fleetpipe.core.keygroups).
-- A writer claims the key groups of its batch here, first in the batch's transaction and in
-- key-group order: the claim locks the rows until the batch commits, so a second writer of a
-- vehicle (the old and the new owner of its partition during a handover) waits for the first,
-- and a writer that finds another writer's name forgets what it remembered of those vehicles
-- (fleetpipe.storage_writer.duplicates). writer is the name a writer process takes when it
-- starts; generation counts the changes of writer; claimed_at is when the last one happened.
CREATE TABLE telemetry_key_group_writers (
    key_group  integer     PRIMARY KEY CHECK (key_group >= 0),
    writer     text        NOT NULL,
    generation bigint      NOT NULL DEFAULT 1,
    claimed_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE telemetry_key_group_writers IS
    'The storage writer that last stored telemetry of each key group; locked per batch.';
