-- What the console and `fleetpipe query alert ID` explain an alert with: every state an episode
-- went through (the alerts table keeps only the newest), and the dead letters by reason.

-- One row per state an episode was in (OPEN, each UPDATE, RESOLVED), as detection produced it;
-- a replay inserts nothing new (the key is the alert, its state and when it was detected).
CREATE TABLE alert_transitions (
    alert_id       text        NOT NULL,
    state          text        NOT NULL,
    state_rank     smallint    NOT NULL,
    detected_time  timestamptz NOT NULL,
    event_time     timestamptz NOT NULL,
    severity       text        NOT NULL,
    seq            bigint      NOT NULL,
    message        text,
    trigger_values jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (alert_id, state_rank, detected_time)
);

-- Records that a service set aside, one row per dead-letter record (its own partition and
-- offset in the dead-letter topic make a replay a no-op). The payload stays in Kafka and the
-- lake; what a person needs to triage is here.
CREATE TABLE dead_letters (
    dl_partition     integer     NOT NULL,
    dl_offset        bigint      NOT NULL,
    reason           text        NOT NULL,
    error            text        NOT NULL,
    service          text        NOT NULL,
    source_topic     text        NOT NULL,
    source_partition integer     NOT NULL,
    source_offset    bigint      NOT NULL,
    record_key       text,
    payload_bytes    integer     NOT NULL,
    time             timestamptz NOT NULL,
    stored_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dl_partition, dl_offset)
);
CREATE INDEX dead_letters_time ON dead_letters (time);
