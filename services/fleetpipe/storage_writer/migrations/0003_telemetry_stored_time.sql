-- When each telemetry row was written, for the ingest -> stored latency (stored_time -
-- ingest_time). The default is the writing transaction's start (now(), one value per batch); the
-- row becomes visible at the commit, a few milliseconds later. A stable default keeps COPY's
-- multi-row insert path, which a volatile one such as clock_timestamp() would turn off. Rows
-- written before this migration have none (adding the column without a default rewrites
-- nothing).
ALTER TABLE telemetry ADD COLUMN stored_time timestamptz;
ALTER TABLE telemetry ALTER COLUMN stored_time SET DEFAULT now();
