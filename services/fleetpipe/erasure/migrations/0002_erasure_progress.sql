-- An erasure is recorded when it starts, before any data is touched, and completed when every
-- store is done: the storage writer reads the erasures started since its spools' oldest row and
-- keeps the subject's spooled rows out of the lake, even while the erasure is still running.
ALTER TABLE erasure_audit ADD COLUMN completed_at timestamptz;
UPDATE erasure_audit SET completed_at = erased_at;
CREATE INDEX erasure_audit_erased_at ON erasure_audit (erased_at);
