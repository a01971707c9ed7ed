-- The audit log of erasures: who or what was erased, why, when, and what it took (rows per
-- table, lake files rewritten). It names the subject, so that an erasure can be shown to have
-- happened; it holds none of the subject's data.
CREATE TABLE erasure_audit (
    erasure_id    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_kind  text        NOT NULL CHECK (subject_kind IN ('vehicle', 'driver')),
    subject_id    text        NOT NULL,
    reason        text        NOT NULL CHECK (length(btrim(reason)) > 0),
    requested_by  text        NOT NULL DEFAULT '',
    erased_at     timestamptz NOT NULL DEFAULT now(),
    rows_deleted  jsonb       NOT NULL,
    lake_files    jsonb       NOT NULL
);
CREATE INDEX erasure_audit_subject ON erasure_audit (subject_kind, subject_id);
