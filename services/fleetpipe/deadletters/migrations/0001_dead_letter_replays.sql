-- What `fleetpipe deadletters replay` sent back, one row per dead letter (its position in the
-- dead-letter topic): a second replay of the same dead letters sends nothing and says so.
CREATE TABLE dead_letter_replays (
    dead_letter_topic      text        NOT NULL,
    dead_letter_partition  integer     NOT NULL,
    dead_letter_offset     bigint      NOT NULL,
    target_topic           text        NOT NULL,
    reason                 text        NOT NULL,
    replayed_by            text        NOT NULL DEFAULT '',
    replayed_at            timestamptz NOT NULL DEFAULT now(),
    replays                integer     NOT NULL DEFAULT 1,
    PRIMARY KEY (dead_letter_topic, dead_letter_partition, dead_letter_offset)
);
